/**
 * Reads a log's tiles and bundles back from its tiles directory, for proofs, reads, recovery
 * and verification. Every read is against a tree size the caller knows to be committed.
 *
 * A partial tile or bundle of a committed size is read from its own file or, once that was
 * collected (partials.ts), as the prefix of the narrowest wider partial on disk, else of the
 * full tile: c2sp.org/tlog-tiles partials of width W are the first W hashes (entries) of every
 * wider one. Readers (this process, the HTTP routes) so see every partial a committed size
 * implies for as long as the log lives, while the disk holds only a few per tile.
 *
 * Safe to use concurrently with the writer: files are only ever created by rename, a file of a
 * given width only ever holds one content, and the partial collector only deletes a file once
 * a wider one of the same tile, or the full tile, is in place.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { TlogError, ErrorCode, ioError } from '../errors.js';
import { HASH_SIZE } from '../merkle/hash.js';
import { parseEntryBundle } from '../tiles/bundle.js';
import { prefixOf, widerWidths } from '../tiles/prefix.js';
import { ENTRIES_LEVEL, TILE_WIDTH, formatTilePath, tileWidthInTree } from '../tiles/layout.js';
import { ExpandedTile } from '../tiles/tree.js';

/** A small LRU of expanded tiles: proofs for nearby entries share their tiles. */
class TileCache {
  private readonly map = new Map<string, ExpandedTile>();
  constructor(private readonly capacity: number) {}
  get(level: number, index: number): ExpandedTile | undefined {
    const key = `${level}/${index}`;
    const t = this.map.get(key);
    if (t) {
      this.map.delete(key);
      this.map.set(key, t);
    }
    return t;
  }
  put(t: ExpandedTile): void {
    const key = `${t.level}/${t.index}`;
    this.map.delete(key);
    this.map.set(key, t);
    if (this.map.size > this.capacity) this.map.delete(this.map.keys().next().value!);
  }
}

export class TileReader {
  readonly cache: TileCache;
  constructor(
    readonly tilesDir: string,
    cacheTiles = 512,
  ) {
    this.cache = new TileCache(cacheTiles);
  }

  tilePath(level: number, index: number, width: number): string {
    return path.join(this.tilesDir, formatTilePath({ level, index, width }));
  }

  private widthAt(level: number, index: number, treeSize: number): number {
    const width = tileWidthInTree(level, index, treeSize);
    if (width === 0) throw new TlogError(ErrorCode.notFound, `tile ${level}/${index} is beyond tree size ${treeSize}`);
    return width;
  }

  /**
   * The bytes of tile (level, index) at `width` (ENTRIES_LEVEL: a bundle): its own file, or for
   * a partial one that is gone, the prefix of a wider file (see above). Throws the read error of
   * its own path when no file can give it.
   */
  async readAt(level: number, index: number, width: number): Promise<Uint8Array> {
    const p = this.tilePath(level, index, width);
    try {
      return await fsp.readFile(p);
    } catch (e) {
      if (width === TILE_WIDTH || (e as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(level === ENTRIES_LEVEL ? 'read bundle' : 'read tile', p, e);
      for (const w of await this.widerThan(level, index, width)) {
        const wider = await fsp.readFile(this.tilePath(level, index, w)).catch(() => null);
        if (wider) return prefixOf(this.tilePath(level, index, w), level, wider, w, width);
      }
      throw ioError(level === ENTRIES_LEVEL ? 'read bundle' : 'read tile', p, e);
    }
  }

  /** readAt(), synchronously (start-up and recovery paths). */
  readAtSync(level: number, index: number, width: number): Uint8Array {
    const p = this.tilePath(level, index, width);
    try {
      return readFileSync(p);
    } catch (e) {
      if (width === TILE_WIDTH || (e as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(level === ENTRIES_LEVEL ? 'read bundle' : 'read tile', p, e);
      for (const w of this.widerThanSync(level, index, width)) {
        let wider: Buffer;
        try {
          wider = readFileSync(this.tilePath(level, index, w));
        } catch {
          continue;
        }
        return prefixOf(this.tilePath(level, index, w), level, wider, w, width);
      }
      throw ioError(level === ENTRIES_LEVEL ? 'read bundle' : 'read tile', p, e);
    }
  }

  /**
   * Widths on disk wider than `width` for (level, index), narrowest first, then 256 (the full
   * tile): the narrower a file, the older, and the likelier flushed long ago.
   */
  private async widerThan(level: number, index: number, width: number): Promise<number[]> {
    const names = await fsp.readdir(`${this.tilePath(level, index, TILE_WIDTH)}.p`).catch(() => [] as string[]);
    return widerWidths(names, width);
  }

  private widerThanSync(level: number, index: number, width: number): number[] {
    let names: string[] = [];
    try {
      names = readdirSync(`${this.tilePath(level, index, TILE_WIDTH)}.p`);
    } catch {
      // No partial directory: only the full tile can give it.
    }
    return widerWidths(names, width);
  }

  /** The hashes of tile (level, index) as of treeSize, read synchronously (start-up paths). */
  readTileSync(level: number, index: number, treeSize: number): Uint8Array {
    const width = this.widthAt(level, index, treeSize);
    return checkTileLength(this.tilePath(level, index, width), this.readAtSync(level, index, width), width);
  }

  /** The hashes of tile (level, index) as of treeSize. */
  async readTile(level: number, index: number, treeSize: number): Promise<Uint8Array> {
    const width = this.widthAt(level, index, treeSize);
    return checkTileLength(this.tilePath(level, index, width), await this.readAt(level, index, width), width);
  }

  /** Loads (level, index) as of treeSize into the cache, expanded. */
  async loadExpanded(level: number, index: number, treeSize: number): Promise<ExpandedTile> {
    const cached = this.cache.get(level, index);
    const width = this.widthAt(level, index, treeSize);
    if (cached && cached.width >= width) return cached;
    const t = ExpandedTile.fromHashes(level, index, await this.readTile(level, index, treeSize));
    this.cache.put(t);
    return t;
  }

  /** The entries of bundle `index` as of treeSize. */
  async readBundle(index: number, treeSize: number): Promise<Uint8Array[]> {
    const width = this.widthAt(ENTRIES_LEVEL, index, treeSize);
    return checkedBundle(this.tilePath(ENTRIES_LEVEL, index, width), await this.readAt(ENTRIES_LEVEL, index, width), width);
  }

  readBundleSync(index: number, treeSize: number): Uint8Array[] {
    const width = this.widthAt(ENTRIES_LEVEL, index, treeSize);
    return checkedBundle(this.tilePath(ENTRIES_LEVEL, index, width), this.readAtSync(ENTRIES_LEVEL, index, width), width);
  }
}

/** Yields the level-0 hashes of leaves [from, to) of the committed tree, a tile at a time. */
export async function* leafHashesFromTiles(reader: TileReader, from: number, to: number): AsyncGenerator<Uint8Array> {
  for (let t = Math.floor(from / TILE_WIDTH); t * TILE_WIDTH < to; t++) {
    const tile = await reader.readTile(0, t, to);
    const lo = Math.max(from - t * TILE_WIDTH, 0);
    const hi = Math.min(to - t * TILE_WIDTH, tile.length / 32);
    yield tile.subarray(lo * 32, hi * 32);
  }
}

function checkedBundle(p: string, data: Uint8Array, width: number): Uint8Array[] {
  try {
    return parseEntryBundle(data, width);
  } catch (e) {
    throw new TlogError(ErrorCode.corrupt, `bundle ${p}: ${(e as Error).message}`);
  }
}

function checkTileLength(p: string, data: Uint8Array, width: number): Uint8Array {
  if (data.length !== width * HASH_SIZE) {
    throw new TlogError(ErrorCode.corrupt, `tile ${p} is ${data.length} bytes, want ${width * HASH_SIZE}`);
  }
  return data;
}
