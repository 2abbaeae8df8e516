/**
 * A log's tile storage: the one object the engine reads and writes its served files through
 * (tiles, bundles, partials, checkpoints), with the newest tiles kept in memory for readers.
 * Files are local for now, written with atomic renames (storage/durable.ts); this is the seam a
 * storage driver (storage/object-store.ts) replaces.
 *
 * Writes of a batch's tiles are deferred: renamed into place at once, fsynced by the engine's
 * next flush (files.flush()); until then the batch's journal record can redo them.
 */
import { ErrorCode, type TlogError, isTlogError } from '../errors.js';
import type { Logger } from '../logger.js';
import { DurableWriter, type DurableOptions } from '../storage/durable.js';
import { sharedFileWorker, sharedSyncWorker } from '../storage/file-worker.js';
import { TILE_WIDTH, formatTilePath, tileWidthInTree, type TileCoord } from '../tiles/layout.js';
import type { ExpandedTile } from '../tiles/tree.js';
import { discardBeyond } from './discard-beyond.js';
import type { PartialsIO } from './partials.js';
import type { LogPaths } from './paths.js';
import { TileReader } from './tile-reader.js';

/** A tile or bundle file's bytes (c2sp.org/tlog-tiles), full or partial. */
export interface TileFile {
  readonly coord: TileCoord;
  readonly data: Uint8Array;
}

/** Tiles and bundles kept in memory (the least recently written leave first). */
const HOT_FILES = 1024;

export class TileStore {
  readonly reader: TileReader;
  /**
   * The writer of the served files, and of the private note each flush writes: what it writes
   * deferred becomes durable at its next flush().
   */
  readonly files: DurableWriter;
  /** The newest tiles and bundles written, by path relative to the tiles directory. */
  private readonly hot = new Map<string, Uint8Array>();

  constructor(
    readonly paths: LogPaths,
    /** Test hooks for the writer (a disk that fails). */
    durable?: DurableOptions,
  ) {
    this.reader = new TileReader(paths.tilesDir);
    // Deferred writes go through the file worker, so the sequencer never blocks on file creation.
    this.files = new DurableWriter({ mode: 0o644, fileWorker: sharedFileWorker(), syncWorker: sharedSyncWorker(), ...durable });
  }

  /**
   * Puts a batch's tiles and bundles in place, deferred. Immutable: a file already there with
   * other bytes fails the write (immutable_conflict).
   */
  writeTiles(files: readonly TileFile[]): Promise<void> {
    return this.files.writeDeferred(
      files.map((f) => ({ path: this.reader.tilePath(f.coord.level, f.coord.index, f.coord.width), data: f.data, kind: 'immutable' })),
    );
  }

  /**
   * After a batch committed: its files become the newest in memory (the narrower copies of the
   * tiles it widened leave: reads of them are served from the disk, or from the prefix of the
   * wider one), and the tiles it filled join the reader's cache.
   */
  committed(start: number, files: readonly TileFile[], completed: Iterable<ExpandedTile>): void {
    for (const f of files) {
      const before = tileWidthInTree(f.coord.level, f.coord.index, start);
      if (before > 0 && before < TILE_WIDTH) this.hot.delete(formatTilePath({ ...f.coord, width: before }));
      this.rememberHot(formatTilePath(f.coord), f.data);
    }
    for (const t of completed) this.reader.cache.put(t);
  }

  private rememberHot(rel: string, data: Uint8Array): void {
    this.hot.delete(rel);
    this.hot.set(rel, data);
    if (this.hot.size > HOT_FILES) this.hot.delete(this.hot.keys().next().value!);
  }

  /**
   * A tile or bundle written recently (the newest partials and upper levels that readers ask
   * for most), from memory; undefined when it is not cached. Paths as in c2sp.org/tlog-tiles.
   */
  hotFile(rel: string): Uint8Array | undefined {
    return this.hot.get(rel);
  }

  /**
   * The bytes of a tile or bundle: its file, or for a collected partial the prefix of a wider
   * one (TileReader.readAt). Null when there is none.
   */
  async readTileFile(t: TileCoord): Promise<Uint8Array | null> {
    try {
      return await this.reader.readAt(t.level, t.index, t.width);
    } catch (e) {
      if (isTlogError(e, ErrorCode.io) && ((e as TlogError).cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') return null;
      throw e;
    }
  }

  /**
   * Deletes the tiles and bundles batches beyond `treeSize` can have written (discard-beyond.ts),
   * and forgets the directories the writer knew. Returns the paths removed.
   */
  async discardBeyond(treeSize: number, span: number): Promise<string[]> {
    const removed = await discardBeyond(this.paths.tilesDir, treeSize, span);
    this.files.forgetDirs();
    return removed;
  }

  /** What the partial-tile collector (partials.ts) needs from the store. */
  partialsIO(logger: Logger): PartialsIO {
    return {
      reader: this.reader,
      write: (files) => this.files.writeDeferred(files),
      remove: (removes) => this.files.removeDeferred(removes),
      syncDirs: (dirs) => this.files.syncDirs(dirs),
      onDelete: (rel) => this.hot.delete(rel),
      onDirRemoved: () => this.files.forgetDirs(),
      logger,
      tenant: this.paths.tenant,
    };
  }
}
