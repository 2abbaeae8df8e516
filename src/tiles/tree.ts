/**
 * The Merkle tree as tiles, in memory: the right edge of the tree kept as one "expanded" tile
 * per level, so that appending a leaf costs O(1) amortised hashes (the compact range of RFC
 * 6962 trees, stored in tile form) and every node a new entry's inclusion proof needs is at
 * hand. Pure: no I/O; tiles are handed in and out as bytes.
 */
import { HASH_SIZE, nodeHashInto } from '../merkle/hash.js';
import { treeHash, type NodeReader } from '../merkle/proof.js';
import { TILE_HEIGHT, TILE_WIDTH, hashesAtLevel } from './layout.js';

/** Offset, in hashes, of sub-height s inside an expanded tile: 0, 256, 384, ..., 510. */
const SUB_OFFSET: readonly number[] = Array.from({ length: TILE_HEIGHT + 1 }, (_, s) => 2 * TILE_WIDTH - (2 * TILE_WIDTH) / 2 ** s);
const EXPANDED_HASHES = 2 * TILE_WIDTH - 1;

/**
 * One tile with every complete node inside it: sub-height 0 are the tile's own hashes (level
 * L nodes), sub-height s holds the nodes 8L+s high, sub-height 8 the tile's root once full.
 * Owns its buffer; a node, once complete, never changes, so views of it stay valid.
 */
export class ExpandedTile {
  readonly level: number;
  readonly index: number;
  private w = 0;
  private readonly data = new Uint8Array(EXPANDED_HASHES * HASH_SIZE);

  constructor(level: number, index: number) {
    this.level = level;
    this.index = index;
  }

  static fromHashes(level: number, index: number, hashes: Uint8Array): ExpandedTile {
    if (hashes.length % HASH_SIZE !== 0 || hashes.length > TILE_WIDTH * HASH_SIZE) {
      throw new Error(`tile ${level}/${index}: ${hashes.length} bytes is not a tile`);
    }
    const t = new ExpandedTile(level, index);
    for (let off = 0; off < hashes.length; off += HASH_SIZE) t.append(hashes.subarray(off, off + HASH_SIZE));
    return t;
  }

  get width(): number {
    return this.w;
  }

  get full(): boolean {
    return this.w === TILE_WIDTH;
  }

  /** Appends one hash at sub-height 0 and completes every node it closes. */
  append(hash: Uint8Array): void {
    if (this.w === TILE_WIDTH) throw new Error(`tile ${this.level}/${this.index} is full`);
    let pos = this.w++;
    this.data.set(hash, pos * HASH_SIZE);
    // A node at sub-height s completes when its right child (an odd position) does.
    for (let s = 0; s < TILE_HEIGHT && pos % 2 === 1; s++) {
      const left = (SUB_OFFSET[s]! + pos - 1) * HASH_SIZE;
      pos = (pos - 1) / 2;
      nodeHashInto(this.data, left, left + HASH_SIZE, this.data, (SUB_OFFSET[s + 1]! + pos) * HASH_SIZE);
    }
  }

  /** The node at sub-height s, position p; null if not complete yet. */
  node(s: number, p: number): Uint8Array | null {
    if ((p + 1) * 2 ** s > this.w) return null;
    const off = (SUB_OFFSET[s]! + p) * HASH_SIZE;
    return this.data.subarray(off, off + HASH_SIZE);
  }

  /** The tile's hashes as served: the first `width` level-L hashes. */
  bytes(width = this.w): Uint8Array {
    if (width > this.w) throw new Error(`tile ${this.level}/${this.index}: width ${width} > ${this.w}`);
    return this.data.subarray(0, width * HASH_SIZE);
  }

  /** The root of a full tile: the hash this tile contributes to the level above. */
  root(): Uint8Array {
    const r = this.node(TILE_HEIGHT, 0);
    if (!r) throw new Error(`tile ${this.level}/${this.index} is not full`);
    return r;
  }
}

/** Where a node of height h, index i, lives: tile level, tile index, sub-height, position. */
export function nodeLocation(height: number, index: number): { level: number; tile: number; s: number; p: number } {
  const level = Math.floor(height / TILE_HEIGHT);
  const s = height - level * TILE_HEIGHT;
  const perTile = TILE_WIDTH / 2 ** s;
  return { level, tile: Math.floor(index / perTile), s, p: index % perTile };
}

/** Reads the expanded tile (level, index) of the current tree, or null when it is not at hand. */
export type TileLookup = (level: number, index: number) => ExpandedTile | null;

/** Builds a NodeReader over a tile lookup; throws MissingTileError for a tile not at hand. */
export function nodeReaderOver(lookup: TileLookup): NodeReader {
  return (height, index) => {
    const loc = nodeLocation(height, index);
    const t = lookup(loc.level, loc.tile);
    const n = t?.node(loc.s, loc.p);
    if (!n) throw new MissingTileError(loc.level, loc.tile);
    return n;
  };
}

/** Thrown by a NodeReader when the tile holding a node must be loaded first. */
export class MissingTileError extends Error {
  constructor(
    readonly level: number,
    readonly tile: number,
  ) {
    super(`tile ${level}/${tile} is not loaded`);
  }
}

/**
 * The right edge of a tree: for every level, the last tile (partial, or full if the level's
 * count is a multiple of 256). Appending fills them; a tile that fills up is handed to
 * `onFull` before the next one starts, so the caller can write and cache it.
 */
export class TileTree {
  private n = 0;
  private readonly edge: ExpandedTile[] = [];
  onFull: (t: ExpandedTile) => void = () => {};

  get size(): number {
    return this.n;
  }

  /** Rebuilds the right edge of a tree of `size` from its tiles (each at its width in that tree). */
  static load(size: number, readTile: (level: number, index: number, width: number) => Uint8Array): TileTree {
    const t = new TileTree();
    t.n = size;
    for (let level = 0; hashesAtLevel(level, size) > 0; level++) {
      const count = hashesAtLevel(level, size);
      const index = Math.floor((count - 1) / TILE_WIDTH);
      const width = count - index * TILE_WIDTH;
      const hashes = readTile(level, index, width);
      // c2sp.org/tlog-tiles: the tile (L, N) of a tree of `size` holds exactly `width` hashes. A
      // short or long read must not become the right edge: the next append would land at the
      // wrong position and the tree would compute (and the log sign) a wrong root.
      if (hashes.length !== width * HASH_SIZE) {
        throw new Error(`tile ${level}/${index}: ${hashes.length} bytes, want ${width * HASH_SIZE} for tree size ${size}`);
      }
      t.edge[level] = ExpandedTile.fromHashes(level, index, hashes);
    }
    return t;
  }

  /** Appends a leaf hash; costs one node hash amortised. */
  append(leafHash: Uint8Array): void {
    this.n++;
    let h = leafHash;
    for (let level = 0; ; level++) {
      let t = this.edge[level];
      if (!t) t = this.edge[level] = new ExpandedTile(level, 0);
      else if (t.full) t = this.edge[level] = new ExpandedTile(level, t.index + 1);
      t.append(h);
      if (!t.full) return;
      this.onFull(t);
      h = t.root();
    }
  }

  /** The right-edge tile of a level, if any. */
  edgeTile(level: number): ExpandedTile | undefined {
    return this.edge[level];
  }

  /** A lookup over the right edge only. */
  readonly lookup: TileLookup = (level, index) => {
    const t = this.edge[level];
    return t && t.index === index ? t : null;
  };

  /** MTH of the whole tree: the right edge holds every node it needs. */
  root(): Uint8Array {
    return treeHash(this.n, nodeReaderOver(this.lookup));
  }
}
