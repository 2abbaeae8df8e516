/**
 * The right edge of a log in memory: the tree as expanded edge tiles, and the entries of the
 * bundle that is not full yet. Extending it by a batch gives every tile and bundle file the new
 * tree size implies (c2sp.org/tlog-tiles), which the sequencer writes and recovery re-writes
 * from the journal; both go through here, so both produce the same bytes.
 */
import { TlogError, ErrorCode } from '../errors.js';
import { equalHashes, leafHash } from '../merkle/hash.js';
import { formatEntryBundle } from '../tiles/bundle.js';
import { ENTRIES_LEVEL, TILE_WIDTH, changedTiles, type TileCoord } from '../tiles/layout.js';
import { type ExpandedTile, TileTree, type TileLookup } from '../tiles/tree.js';
import type { TileReader } from '../tile-store/tile-reader.js';

export interface Extension {
  readonly start: number;
  readonly end: number;
  readonly rootHash: Uint8Array;
  /** Every tile and bundle (full or partial) that changed, with its bytes. */
  readonly files: readonly { readonly coord: TileCoord; readonly data: Uint8Array }[];
  /** Tiles filled by the batch, by "level/index". */
  readonly completed: Map<string, ExpandedTile>;
  /** The tiles proofs in the tree of size `end` need: the edge as of `end` and the filled ones. */
  readonly lookup: TileLookup;
}

export class Edge {
  private constructor(
    private tree: TileTree,
    /** Entries of the bundle at the right edge that is not full yet. */
    private bundle: Uint8Array[],
  ) {}

  static empty(): Edge {
    return new Edge(new TileTree(), []);
  }

  /**
   * Loads the edge of the tree of `size` from the files, checking that the partial bundle
   * matches the level-0 tile. `checkRoot` sees the tiles' root first (and throws to refuse it).
   */
  static load(reader: TileReader, size: number, checkRoot?: (root: Uint8Array) => void): Edge {
    const tree = TileTree.load(size, (level, index) => reader.readTileSync(level, index, size));
    checkRoot?.(tree.root());
    const inEdge = size % TILE_WIDTH;
    let bundle: Uint8Array[] = [];
    if (inEdge > 0) {
      const bundleIndex = Math.floor(size / TILE_WIDTH);
      const entries = reader.readBundleSync(bundleIndex, size);
      const tile = tree.edgeTile(0)!;
      entries.forEach((e, i) => {
        if (!equalHashes(leafHash(e), tile.node(0, i)!)) {
          throw new TlogError(ErrorCode.corrupt, `bundle ${bundleIndex} entry ${i} does not match its level-0 tile hash`);
        }
      });
      bundle = entries.map((e) => Uint8Array.from(e));
    }
    return new Edge(tree, bundle);
  }

  /**
   * Loads the edge of the committed tree of `size`, refusing tiles that do not hash to its
   * root `rootHash` (on open, and after a failed batch).
   */
  static loadCommitted(reader: TileReader, size: number, rootHash: Uint8Array, tenant: string): Edge {
    return Edge.load(reader, size, (root) => {
      if (!equalHashes(root, rootHash)) {
        throw new TlogError(ErrorCode.corrupt, `tiles of ${tenant} do not hash to the committed root at size ${size}: refusing to start`);
      }
    });
  }

  get size(): number {
    return this.tree.size;
  }

  /** Bytes of the partial bundle (entries with their length prefixes), rewritten by the next batch. */
  get bundleBytes(): number {
    let n = 0;
    for (const e of this.bundle) n += 2 + e.length;
    return n;
  }

  root(): Uint8Array {
    return this.tree.root();
  }

  /** The tree's own lookup of the newest nodes (the edge tiles). */
  lookup(level: number, index: number): ExpandedTile | null {
    return this.tree.lookup(level, index);
  }

  /**
   * Appends entries (with their leaf hashes) and returns the files the new size implies.
   * Synchronous: hashing a batch into the tree is CPU work only.
   */
  extend(entries: readonly Uint8Array[], leafHashes: readonly Uint8Array[]): Extension {
    const start = this.tree.size;
    const completed = new Map<string, ExpandedTile>();
    const fullBundles = new Map<number, Uint8Array>();
    this.tree.onFull = (t) => completed.set(`${t.level}/${t.index}`, t);
    try {
      for (let i = 0; i < entries.length; i++) {
        this.tree.append(leafHashes[i]!);
        this.bundle.push(entries[i]!);
        if (this.bundle.length === TILE_WIDTH) {
          fullBundles.set(Math.floor((start + i) / TILE_WIDTH), formatEntryBundle(this.bundle));
          this.bundle = [];
        }
      }
    } finally {
      this.tree.onFull = () => {};
    }
    const end = this.tree.size;
    // Holding the tile objects is enough for later proofs: later appends only add nodes beyond `end`.
    const edge: ExpandedTile[] = [];
    for (let level = 0; this.tree.edgeTile(level); level++) edge.push(this.tree.edgeTile(level)!);
    const lookup: TileLookup = (level, index) => {
      const t = edge[level];
      return t && t.index === index ? t : (completed.get(`${level}/${index}`) ?? null);
    };
    const files = changedTiles(start, end).map((coord) => {
      let data: Uint8Array;
      if (coord.level === ENTRIES_LEVEL) data = coord.width === TILE_WIDTH ? fullBundles.get(coord.index)! : formatEntryBundle(this.bundle);
      else data = lookup(coord.level, coord.index)!.bytes(coord.width);
      return { coord, data };
    });
    return { start, end, rootHash: this.tree.root(), files, completed, lookup };
  }
}
