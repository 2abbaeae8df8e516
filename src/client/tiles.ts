/**
 * Tiles and entry bundles of any tlog-tiles log, fetched on demand through a TlogSource, with a
 * cache, for building proofs against a verified checkpoint.
 *
 * Contract: the fetcher only ever requests what a tree size it is handed implies, and it is
 * handed only sizes of verified checkpoints (c2sp.org/tlog-tiles: "clients MUST NOT request
 * partial tiles unless a verified checkpoint implies them"). When a partial tile is gone (a log
 * MAY delete it once the full tile exists), it falls back to the full tile and uses its prefix
 * (c2sp.org/tlog-tiles: clients MAY fall back to the full tile; tessera#672).
 *
 * Nothing fetched here is trusted: tiles are hashes that a proof built from them must verify
 * against a signed root, and a bad tile only makes that verification fail. Safe to use from
 * concurrent async callers (a tile being fetched is shared, not fetched twice).
 */
import { TlogError, ErrorCode } from '../errors.js';
import { HASH_SIZE } from '../merkle/hash.js';
import type { NodeReader } from '../merkle/proof.js';
import { ENTRIES_LEVEL, FULL_TILE_BYTES, TILE_WIDTH, formatTilePath, tileWidthInTree } from '../tiles/layout.js';
import { ExpandedTile, MissingTileError, nodeReaderOver } from '../tiles/tree.js';
import type { TlogSource } from './source.js';

export interface TileFetcherOptions {
  /** Hash tiles kept in memory (least recently used evicted). Default 4096 (about 64 MiB). */
  readonly cacheTiles?: number;
}

/** Counters, for tests and for people wondering where the requests went. */
export interface TileFetcherStats {
  /** Requests for full tiles and bundles. */
  full: number;
  /** Requests for partial tiles and bundles. */
  partial: number;
  /** Partial tiles or bundles that were gone and answered from the full one. */
  fallbacks: number;
  /** Hash tiles served from the cache. */
  cacheHits: number;
}

function fail(why: string): never {
  throw new TlogError(ErrorCode.verification, why);
}

/** A tile or bundle the tree implies is not served (not_found): the log is not serving that tree. */
function missing(why: string): never {
  throw new TlogError(ErrorCode.notFound, why);
}

/**
 * Decodes an entry bundle: (u16 big-endian length || entry)*. Unlike the engine's parser this
 * accepts empty entries, which tlog-tiles allows and another log may hold.
 */
export function decodeEntryBundle(data: Uint8Array, where: string): Uint8Array[] {
  const out: Uint8Array[] = [];
  let off = 0;
  while (off < data.length) {
    if (off + 2 > data.length) fail(`${where}: truncated in a length prefix at byte ${off}`);
    const len = (data[off]! << 8) | data[off + 1]!;
    if (off + 2 + len > data.length) fail(`${where}: truncated in entry ${out.length} at byte ${off}`);
    out.push(data.subarray(off + 2, off + 2 + len));
    off += 2 + len;
    if (out.length > TILE_WIDTH) fail(`${where}: more than ${TILE_WIDTH} entries`);
  }
  return out;
}

export class TileFetcher {
  readonly src: TlogSource;
  readonly stats: TileFetcherStats = { full: 0, partial: 0, fallbacks: 0, cacheHits: 0 };
  private readonly cacheTiles: number;
  /** "level/index" -> the widest copy of that tile seen; Map order is the LRU order. */
  private readonly cache = new Map<string, ExpandedTile>();
  private readonly inflight = new Map<string, Promise<ExpandedTile>>();

  constructor(src: TlogSource, opts: TileFetcherOptions = {}) {
    this.src = src;
    this.cacheTiles = Math.max(16, opts.cacheTiles ?? 4096);
  }

  /**
   * The bytes of tile (level, index) (ENTRIES_LEVEL for a bundle) at `width` (1..256): the
   * partial tile when width < 256, else the full one; a gone partial falls back to the full
   * tile, returned whole (the caller takes its prefix). Null when neither exists.
   */
  private async fetchRaw(level: number, index: number, width: number): Promise<{ data: Uint8Array; rel: string; full: boolean } | null> {
    const fullRel = formatTilePath({ level, index, width: TILE_WIDTH });
    if (width < TILE_WIDTH) {
      const rel = formatTilePath({ level, index, width });
      this.stats.partial++;
      const data = await this.src.get(rel);
      if (data) return { data, rel, full: false };
      // c2sp.org/tlog-tiles: a log MAY delete a partial tile once the full one exists, and a
      // client MAY fall back to the full tile (tessera#672): its first `width` hashes or
      // entries are those of the partial tile.
      this.stats.fallbacks++;
    }
    this.stats.full++;
    const data = await this.src.get(fullRel);
    return data ? { data, rel: fullRel, full: true } : null;
  }

  /** Tile (level, index) as it is in a tree of `treeSize` (at least the width that tree implies). */
  async hashTile(level: number, index: number, treeSize: number): Promise<ExpandedTile> {
    const width = tileWidthInTree(level, index, treeSize);
    if (width === 0) throw new Error(`hashTile: tile ${level}/${index} is not in a tree of size ${treeSize}`);
    const key = `${level}/${index}`;
    const cached = this.cache.get(key);
    if (cached && cached.width >= width) {
      this.cache.delete(key);
      this.cache.set(key, cached);
      this.stats.cacheHits++;
      return cached;
    }
    const flight = this.inflight.get(key);
    if (flight) {
      const t = await flight;
      if (t.width >= width) return t;
    }
    const p = this.loadHashTile(level, index, width);
    this.inflight.set(key, p);
    try {
      const t = await p;
      const now = this.cache.get(key);
      if (!now || now.width < t.width) {
        this.cache.delete(key);
        this.cache.set(key, t);
        while (this.cache.size > this.cacheTiles) this.cache.delete(this.cache.keys().next().value!);
      }
      return t;
    } finally {
      if (this.inflight.get(key) === p) this.inflight.delete(key);
    }
  }

  private async loadHashTile(level: number, index: number, width: number): Promise<ExpandedTile> {
    const got = await this.fetchRaw(level, index, width);
    const partialRel = formatTilePath({ level, index, width });
    if (!got) missing(`${this.src.where}/${partialRel} is missing${width < TILE_WIDTH ? ' (and so is the full tile)' : ''}`);
    const want = got.full ? FULL_TILE_BYTES : width * HASH_SIZE;
    if (got.data.length !== want) fail(`${this.src.where}/${got.rel} is ${got.data.length} bytes, want ${want}`);
    return ExpandedTile.fromHashes(level, index, got.data);
  }

  /**
   * The entries of bundle `index` in a tree of `treeSize`: exactly the entries that tree has in
   * it (a full bundle fetched for a gone partial one is cut to that count). Not cached.
   */
  async entryBundle(index: number, treeSize: number): Promise<Uint8Array[]> {
    const width = tileWidthInTree(ENTRIES_LEVEL, index, treeSize);
    if (width === 0) throw new Error(`entryBundle: bundle ${index} is not in a tree of size ${treeSize}`);
    const got = await this.fetchRaw(ENTRIES_LEVEL, index, width);
    if (!got)
      missing(
        `${this.src.where}/${formatTilePath({ level: ENTRIES_LEVEL, index, width })} is missing${width < TILE_WIDTH ? ' (and so is the full bundle)' : ''}`,
      );
    const entries = decodeEntryBundle(got.data, `${this.src.where}/${got.rel}`);
    const want = got.full ? TILE_WIDTH : width;
    if (entries.length !== want) fail(`${this.src.where}/${got.rel} has ${entries.length} entries, want ${want}`);
    return entries.slice(0, width);
  }

  /**
   * Runs `build` with a NodeReader over the tiles of a tree of `treeSize`, fetching every tile it
   * turns out to need: `build` is re-run after each fetch, so it must be pure (proof builders
   * are). It must only ask for nodes inside that tree (the NodeReader contract).
   */
  async withNodes<T>(treeSize: number, build: (node: NodeReader) => T): Promise<T> {
    const local = new Map<string, ExpandedTile>();
    const node = nodeReaderOver((level, index) => local.get(`${level}/${index}`) ?? null);
    for (;;) {
      try {
        return build(node);
      } catch (e) {
        if (!(e instanceof MissingTileError)) throw e;
        const key = `${e.level}/${e.tile}`;
        // The tile was loaded at its width in this tree and still lacks the node: the node is
        // outside the tree, which is a bug in the caller, not a property of the log.
        if (local.has(key)) throw new Error(`withNodes: a node of tile ${key} is outside the tree of size ${treeSize}`);
        local.set(key, await this.hashTile(e.level, e.tile, treeSize));
      }
    }
  }

  /** Forgets every cached tile (after a log was found to serve bad ones, say). */
  clear(): void {
    this.cache.clear();
  }
}

/** A TileFetcher for a source, or the fetcher itself (so callers can share one cache). */
export function tileFetcher(src: TlogSource | TileFetcher): TileFetcher {
  return src instanceof TileFetcher ? src : new TileFetcher(src);
}
