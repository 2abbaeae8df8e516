/**
 * Reads of a log's committed tree: which tiles it implies, proofs, leaf hashes and entries.
 * Nodes come from the right edge kept in memory, then a cache of expanded tiles, then the disk.
 * Safe to run while the sequencer writes: every read is against a committed size, whose files
 * exist and never change, and nodes inside it are the same in the right edge as on disk.
 */
import { TlogError, ErrorCode } from '../errors.js';
import { consistencyProof as buildConsistencyProof, inclusionProof as buildInclusionProof, type NodeReader } from '../merkle/proof.js';
import { TILE_WIDTH, tileWidthInTree, type TileCoord } from '../tiles/layout.js';
import { MissingTileError, nodeReaderOver, type TileLookup } from '../tiles/tree.js';
import type { TileReader } from '../tile-store/tile-reader.js';

export class TreeReads {
  constructor(
    private readonly reader: TileReader,
    /** The tiles of the right edge in memory. */
    private readonly edge: TileLookup,
    /** The committed tree size. */
    private readonly size: () => number,
  ) {}

  /**
   * Whether the committed tree can imply this tile: a full tile it contains, or a partial one
   * no wider than the tile is now (narrower ones belong to earlier checkpoints). Lets a server
   * answer 404 for anything else without touching the disk.
   */
  servesTile(t: TileCoord): boolean {
    const w = tileWidthInTree(t.level, t.index, this.size());
    return t.width === TILE_WIDTH ? w === TILE_WIDTH : w >= t.width;
  }

  private checkSize(size: number, what: string): void {
    if (!Number.isSafeInteger(size) || size < 0) throw new TlogError(ErrorCode.badInput, `${what} must be a non-negative integer`);
    if (size > this.size()) throw new TlogError(ErrorCode.badInput, `${what} ${size} is beyond the tree size ${this.size()}`);
  }

  /** Runs a proof builder, loading tiles from disk as it finds them missing. */
  private async withNodes<T>(build: (node: NodeReader) => T): Promise<T> {
    const size = this.size();
    const lookup: TileLookup = (level, index) => this.edge(level, index) ?? this.reader.cache.get(level, index) ?? null;
    const node = nodeReaderOver(lookup);
    for (let attempt = 0; attempt < 256; attempt++) {
      try {
        return build(node);
      } catch (e) {
        if (!(e instanceof MissingTileError)) throw e;
        await this.reader.loadExpanded(e.level, e.tile, size);
      }
    }
    throw new Error('proof needed more than 256 tile loads');
  }

  async inclusionProof(index: number, treeSize: number): Promise<Uint8Array[]> {
    this.checkSize(treeSize, 'tree size');
    if (!Number.isSafeInteger(index) || index < 0 || index >= treeSize) {
      throw new TlogError(ErrorCode.badInput, `index ${index} is not in a tree of size ${treeSize}`);
    }
    return this.withNodes((node) => buildInclusionProof(index, treeSize, node));
  }

  async consistencyProof(oldSize: number, newSize: number): Promise<Uint8Array[]> {
    this.checkSize(newSize, 'new size');
    this.checkSize(oldSize, 'old size');
    if (oldSize > newSize) throw new TlogError(ErrorCode.badInput, `old size ${oldSize} is larger than new size ${newSize}`);
    return this.withNodes((node) => buildConsistencyProof(oldSize, newSize, node));
  }

  /** The level-0 hash of entry `index`. */
  async leafHashAt(index: number): Promise<Uint8Array> {
    this.checkSize(index + 1, 'index + 1');
    return this.withNodes((node) => Uint8Array.from(node(0, index)));
  }

  /**
   * Entries from `start`, at most `limit`, within the committed tree. `next` is the index to
   * ask for next (equal to the tree size when caught up).
   */
  async readEntries(start: number, limit: number): Promise<{ entries: Uint8Array[]; next: number }> {
    const size = this.size();
    if (!Number.isSafeInteger(start) || start < 0) throw new TlogError(ErrorCode.badInput, 'start must be a non-negative integer');
    if (!Number.isSafeInteger(limit) || limit < 1) throw new TlogError(ErrorCode.badInput, 'limit must be a positive integer');
    if (start > size) throw new TlogError(ErrorCode.badInput, `start ${start} is beyond the tree size ${size}`);
    const end = Math.min(size, start + limit);
    const entries: Uint8Array[] = [];
    for (let b = Math.floor(start / TILE_WIDTH); b * TILE_WIDTH < end; b++) {
      const bundle = await this.reader.readBundle(b, size);
      const from = Math.max(start - b * TILE_WIDTH, 0);
      const to = Math.min(end - b * TILE_WIDTH, bundle.length);
      for (let i = from; i < to; i++) entries.push(bundle[i]!);
    }
    return { entries, next: end };
  }
}
