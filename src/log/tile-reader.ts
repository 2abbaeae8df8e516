/**
 * Reads a log's tiles and bundles back from its tiles directory, for proofs, reads, recovery
 * and verification. Every read is against a tree size the caller knows to be committed: the
 * files it implies exist (c2sp.org/tlog-tiles: every published checkpoint is servable).
 *
 * Safe to use concurrently with the writer: files are only ever created by rename, and the
 * ones a committed size implies are immutable.
 */
import { readFileSync } from 'node:fs';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { TlogError, ErrorCode, ioError } from '../errors.js';
import { HASH_SIZE } from '../merkle/hash.js';
import { parseEntryBundle } from '../tiles/bundle.js';
import { ENTRIES_LEVEL, formatTilePath, tileWidthInTree } from '../tiles/layout.js';
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

  /** The path and width of (level, index) in a tree of treeSize. */
  private at(level: number, index: number, treeSize: number): { p: string; width: number } {
    const width = this.widthAt(level, index, treeSize);
    return { p: this.tilePath(level, index, width), width };
  }

  /** The hashes of tile (level, index) as of treeSize, read synchronously (start-up paths). */
  readTileSync(level: number, index: number, treeSize: number): Uint8Array {
    const { p, width } = this.at(level, index, treeSize);
    return checkTileLength(p, readSync(p, 'read tile'), width);
  }

  /** The hashes of tile (level, index) as of treeSize. */
  async readTile(level: number, index: number, treeSize: number): Promise<Uint8Array> {
    const { p, width } = this.at(level, index, treeSize);
    return checkTileLength(p, await read(p, 'read tile'), width);
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
    const { p, width } = this.at(ENTRIES_LEVEL, index, treeSize);
    return checkedBundle(p, await read(p, 'read bundle'), width);
  }

  readBundleSync(index: number, treeSize: number): Uint8Array[] {
    const { p, width } = this.at(ENTRIES_LEVEL, index, treeSize);
    return checkedBundle(p, readSync(p, 'read bundle'), width);
  }
}

async function read(p: string, op: string): Promise<Buffer> {
  try {
    return await fsp.readFile(p);
  } catch (e) {
    throw ioError(op, p, e);
  }
}

function readSync(p: string, op: string): Buffer {
  try {
    return readFileSync(p);
  } catch (e) {
    throw ioError(op, p, e);
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

