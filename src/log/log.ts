/**
 * The per-tenant log engine, as its callers see it: one Log object per tenant per process; the
 * engine is the log's only writer. Behind it:
 *   create.ts     creating a log, all or nothing (Log.create, Log.init)
 *   open.ts       opening a log, recovery on open (replay.ts, open-index.ts)
 *   sequencer.ts  appends, batches and the pipeline that commits them (batch.ts, stop-rule.ts,
 *                 disk-space.ts)
 *   flush.ts      the files of committed batches made durable in bulk, the journal let go
 *   reads.ts      proofs and entries, against the committed tree
 *   publisher.ts  the published checkpoint and its history
 *   ../tile-store the files themselves
 * The three checkpoints a log keeps (committed, answered, published) are defined in
 * commit-point.ts.
 */
import { TlogError, ErrorCode } from '../errors.js';
import type { HotIndex } from '../hot-index/index.js';
import { silentLogger } from '../logger.js';
import { DiskSpace } from '../storage/space.js';
import type { Journal } from '../storage/journal.js';
import type { PartialTiles } from '../tile-store/partials.js';
import type { LogPaths } from '../tile-store/paths.js';
import type { TileStore } from '../tile-store/tile-store.js';
import { checkEntrySize } from '../tiles/bundle.js';
import type { TileCoord } from '../tiles/layout.js';
import type { BatchSink } from './batch-sink.js';
import type { AppendResult } from './batch.js';
import { commitPointOf, type CommitPoint } from './commit-point.js';
import type { LogConfig } from './config-file.js';
import { Flusher } from './flush.js';
import type { LogKeys } from './keys.js';
import { offloadOf, openLog, verifiersOf, type LogParts } from './open.js';
import { checkIndex, indexPath, rebuildIndex } from './open-index.js';
import type { Publisher, PublishMode } from './publisher.js';
import { TreeReads } from './reads.js';
import { Sequencer } from './sequencer.js';
import { createLogState, type CreateOptions, type CreateOutcome } from './create.js';
import type { LogOptions, LogSettings } from './settings.js';

export { historyPath } from '../tile-store/paths.js';
export { silentLogger, type Logger } from '../logger.js';
export { readLogConfig, type LogConfig } from './config-file.js';
export type { AppendResult, BatchStats } from './batch.js';
export type { LogOptions } from './settings.js';

export class Log {
  readonly origin: string;
  readonly paths: LogPaths;
  readonly config: LogConfig;
  readonly readOnly: boolean;
  private readonly keys: LogKeys;
  private readonly index: HotIndex;
  private readonly store: TileStore;
  private readonly publisher: Publisher;
  private readonly partials: PartialTiles | null;
  private readonly settings: LogSettings;
  private readonly sequencer: Sequencer;
  /** The flush of a writer (null for a read-only log, which writes nothing). */
  private readonly flusher: Flusher | null;
  private readonly reads: TreeReads;
  /** The write-ahead journal (null for a read-only log) and the filesystems it checks for room (null: no checks). */
  private readonly journal: Journal | null;
  private readonly space: DiskSpace | null;
  private readonly batchSink: BatchSink | null;
  private indexClosed = false;

  private constructor(parts: LogParts, opts: LogOptions) {
    this.batchSink = opts.batchSink ?? null;
    this.paths = parts.paths;
    this.config = parts.config;
    this.origin = parts.config.origin;
    this.keys = parts.keys;
    this.index = parts.index;
    this.store = parts.store;
    this.publisher = parts.publisher;
    this.partials = parts.partials;
    this.settings = parts.settings;
    this.readOnly = opts.readOnly ?? false;
    const logger = opts.logger ?? silentLogger;
    const { paths, store, journal, partials } = parts;
    this.journal = journal;
    this.space =
      !this.readOnly && opts.checkFreeSpace !== false ? new DiskSpace({ tiles: paths.tilesDir, checkpoints: paths.historyDir, state: paths.stateDir }) : null;
    this.flusher =
      journal && partials
        ? new Flusher(
            store,
            journal,
            partials,
            paths.stateDir,
            parts.settings.flushIntervalMs,
            () => this.sequencer.answered,
            logger,
            paths.tenant,
            parts.index,
          )
        : null;
    this.sequencer = new Sequencer({
      ...parts,
      origin: this.origin,
      logger,
      allowDuplicates: opts.allowDuplicates ?? false,
      disk: this.space,
      onBatch: opts.onBatch,
      sink: opts.batchSink ?? null,
      tracer: opts.tracer,
      prove: (index, treeSize) => this.inclusionProof(index, treeSize),
      flushSoon: () => this.flusher?.schedule(),
    });
    // Reads see the committed tree; the right edge in memory serves the newest nodes.
    this.reads = new TreeReads(
      this.store.reader,
      (level, index) => this.sequencer.edgeTile(level, index),
      () => this.sequencer.committed.treeSize,
    );
  }

  /**
   * Creates a new log, all or nothing (create.ts): its private state, its keys (0600 in 0700
   * directories), its configuration; then opens it, which publishes the signed checkpoint of the
   * empty tree. Fails if a log exists there already (an implicit, empty one with another origin
   * is replaced; see create.ts).
   */
  static async init(paths: LogPaths, origin: string, opts: LogOptions = {}, create: CreateOptions = {}): Promise<Log> {
    const { log, outcome } = await Log.create(paths, origin, opts, create);
    if (outcome.result === 'exists') {
      await log.close();
      throw new TlogError(ErrorCode.conflict, `a log already exists at ${paths.stateDir}`);
    }
    return log;
  }

  /** Log.init that also accepts an implicit log of this origin (outcome 'exists') and says what it did. */
  static async create(paths: LogPaths, origin: string, opts: LogOptions = {}, create: CreateOptions = {}): Promise<{ log: Log; outcome: CreateOutcome }> {
    const outcome = await createLogState(paths, origin, { ...opts, offload: offloadOf(opts) }, create);
    return { log: await Log.open(paths, opts), outcome };
  }

  /**
   * Opens an existing log. A writer takes the log's lock (a second writer fails at once), brings
   * the index up to date (rebuilding it if damaged) and recovers the files to the commit point.
   * A reader (opts.readOnly) takes no lock and changes nothing.
   */
  static async open(paths: LogPaths, opts: LogOptions = {}): Promise<Log> {
    return new Log(await openLog(paths, opts), opts);
  }

  /** Rebuilds a log's hot index from its tiles (`tlog index rebuild`); fails while a writer runs. */
  static async rebuildIndex(paths: LogPaths, opts: LogOptions = {}): Promise<{ treeSize: number; path: string }> {
    const log = await Log.open(paths, { ...opts, readOnly: true });
    try {
      await rebuildIndex(paths, log.store.reader, log.committed, {
        readOnly: false,
        logger: opts.logger ?? silentLogger,
        onRebuildProgress: opts.onRebuildProgress,
        backend: opts.indexBackend,
      });
      return { treeSize: log.committed.treeSize, path: indexPath(paths) };
    } finally {
      await log.close();
    }
  }

  /**
   * Checks the hot index against the log: the table's own structure, then every committed leaf
   * looked up by its hash must give its own index or an earlier one holding the same hash.
   * Returns the problems found (empty when the index is sound). O(tree size).
   */
  checkIndex(onProgress?: (done: number, total: number) => void): Promise<string[]> {
    return checkIndex(this.index, this.store.reader, this.committed.treeSize, (i) => this.leafHashAt(i), onProgress);
  }

  /** The verifier keys of the log, as vkey strings (Ed25519 first). */
  verifierKeys(): string[] {
    return [this.keys.ed25519.vkey, this.keys.mldsa44.vkey];
  }

  get verifiers() {
    return verifiersOf(this.keys);
  }

  /**
   * The commit point: the newest checkpoint whose batch is journaled and recorded in the hot
   * index; the log's tree ends there, and reads are served against it. A read-only log keeps
   * the one it opened at.
   */
  get committed(): CommitPoint {
    return this.sequencer.committed;
  }

  /** The committed tree size. */
  get treeSize(): number {
    return this.committed.treeSize;
  }

  /**
   * The published checkpoint: the checkpoint served at tiles/<tenant>/checkpoint: in 'each' mode
   * the answered one, in 'cosigned' mode the cosigner's latest.
   */
  get published(): CommitPoint {
    return this.publisher.published;
  }

  /** Entries accepted but not yet committed: queued, or in a batch being written. */
  get pendingCount(): number {
    return this.sequencer.pendingCount;
  }

  /** When the last batch committed (ms since the epoch), for health checks. */
  get lastIntegrationAt(): number {
    return this.sequencer.lastIntegrationAt;
  }

  /** Bytes of write-ahead journal segments on disk (metrics; 0 for a read-only log). */
  get journalBytes(): number {
    return this.journal?.bytes ?? 0;
  }

  /** Free bytes on the tightest of the log's filesystems now (one statfs each), or null when it does not check space. */
  get freeBytes(): number | null {
    return this.space ? this.space.read().free : null;
  }

  /**
   * Why this log cannot take appends now, or null when it can: it stopped, or it has no room
   * (with the reason). A shortage is read again from the disk, so this clears by itself once
   * space is back.
   */
  get cannotWrite(): string | null {
    return this.sequencer.cannotWrite;
  }

  /** Why the log stopped (every append fails with it; a reopen recovers), or null while it runs. */
  get stopped(): TlogError | null {
    return this.sequencer.stopped;
  }

  /** How far beyond the commit point this run's batches can have written tiles (settings.ts). */
  get recoverySpan(): number {
    return this.settings.recoverySpan;
  }

  /**
   * Appends one entry. Resolves once the entry is integrated, committed and published, with
   * its index and an inclusion proof in the checkpoint that first included it.
   */
  append(entry: Uint8Array): Promise<AppendResult> {
    try {
      return this.appendMany([entry])[0]!;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Appends entries, in order; each promise settles like append()'s. Unless the log allows
   * duplicates, an entry already in the log answers at once with the first copy's index, and
   * repeats of an entry still in flight (even in the same call) share its answer.
   */
  appendMany(entries: readonly Uint8Array[]): Promise<AppendResult>[] {
    // Validate everything first: a bad entry refuses the whole call and queues nothing.
    for (const e of entries) checkEntrySize(e);
    if (this.readOnly) throw new TlogError(ErrorCode.badInput, `log ${this.paths.tenant} is open read-only`);
    return this.sequencer.appendMany(entries);
  }

  /**
   * appendMany() answered with one promise for all the entries, in order (rejecting with the
   * first failure): what a bulk caller wants, without a promise per entry.
   */
  appendAll(entries: readonly Uint8Array[]): Promise<AppendResult[]> {
    for (const e of entries) checkEntrySize(e);
    if (this.readOnly) throw new TlogError(ErrorCode.badInput, `log ${this.paths.tenant} is open read-only`);
    return this.sequencer.appendAll(entries);
  }

  /**
   * Looks an entry up by its leaf hash: its index and an inclusion proof in the answered
   * checkpoint (the newest one appends were answered with), or null when the log does not hold
   * it.
   */
  async findByLeafHash(h: Uint8Array): Promise<{ index: number; treeSize: number; checkpoint: string; proof: Uint8Array[] } | null> {
    if (h.length !== 32) throw new TlogError(ErrorCode.badInput, 'a leaf hash is 32 bytes');
    if (this.readOnly) this.index.refresh();
    const index = this.index.lookup(h);
    const cp = this.sequencer.answered;
    if (index < 0 || index >= cp.treeSize) return null;
    return { index, treeSize: cp.treeSize, checkpoint: cp.note, proof: await this.inclusionProof(index, cp.treeSize) };
  }

  /**
   * Publishes a committed checkpoint with extra cosignature lines (verified by the caller
   * against the witness policy; `meetsPolicy` when they reach its quorum, and only then is it
   * filed in cosigned/). See Publisher.cosigned.
   */
  async publishCosigned(note: string, meetsPolicy: boolean): Promise<CommitPoint> {
    if (this.readOnly) throw new TlogError(ErrorCode.badInput, `log ${this.paths.tenant} is open read-only`);
    let size: number;
    try {
      size = commitPointOf(note).treeSize;
    } catch (e) {
      throw new TlogError(ErrorCode.verification, `not a checkpoint of this log: ${(e as Error).message}`);
    }
    // Within the committed tree its partials are there, or derivable: written before publishing.
    if (size > this.committed.treeSize || !this.partials) return this.publisher.cosigned(note, this.committed, meetsPolicy);
    return this.partials.publish(size, () => this.publisher.cosigned(note, this.committed, meetsPolicy));
  }

  /** How checkpoints are published: see Publisher.setMode (a reload that adds or removes witnesses). */
  get publishMode(): PublishMode {
    return this.publisher.mode;
  }

  async setPublishMode(mode: PublishMode): Promise<void> {
    if (this.readOnly) throw new TlogError(ErrorCode.badInput, `log ${this.paths.tenant} is open read-only`);
    await this.publisher.setMode(mode, () => this.committed);
    // Turning to 'each' publishes the newest tree (whose partials are on disk): keep them as published.
    this.partials?.markPublished(this.publisher.published.treeSize);
  }

  /** Whether a repeated entry is kept (true) or answered with the first copy; may change at any time. */
  get allowsDuplicates(): boolean {
    return this.sequencer.allowDuplicates;
  }

  setAllowDuplicates(allow: boolean): void {
    this.sequencer.allowDuplicates = allow;
  }

  /**
   * Makes every file written so far durable (tiles, bundles, notes, checkpoint copies), then
   * deletes the journal segments that only hold batches now covered (flush.ts). Runs about once
   * a second while batches come in, and on close. Flushes run one at a time.
   */
  flush(): Promise<void> {
    return this.flusher?.flush() ?? Promise.resolve();
  }

  /** Resolves once everything pending is integrated and durable; then refuses new appends. */
  async close(): Promise<void> {
    await this.sequencer.close();
    // What the sink writes behind its batches (an object store's tiles and checkpoint) lands first.
    await this.batchSink?.drain?.();
    try {
      await this.flusher?.close(this.sequencer.stopped !== null);
    } finally {
      // Syncs the dedup table and releases the writer lock.
      if (!this.indexClosed) {
        this.indexClosed = true;
        this.index.close();
      }
    }
  }

  /** Resolves once the partial tiles collected so far are deleted (they go right after each commit). */
  async settled(): Promise<void> {
    await this.partials?.idle();
  }

  // ---- reads: all against the committed tree (see reads.ts and tile-store.ts) ----

  /**
   * A tile or bundle written recently (the newest partials and upper levels that readers ask
   * for most), from memory; undefined when it is not cached. Paths as in c2sp.org/tlog-tiles.
   */
  hotFile(rel: string): Uint8Array | undefined {
    return this.store.hotFile(rel);
  }

  /**
   * The bytes of a tile or bundle the committed tree implies (servesTile): its file, or for a
   * collected partial the prefix of a wider one (TileReader.readAt). Null when there is none.
   */
  readTileFile(t: TileCoord): Promise<Uint8Array | null> {
    return this.store.readTileFile(t);
  }

  /** Whether the committed tree implies this tile (see TreeReads.servesTile). */
  servesTile(t: TileCoord): boolean {
    return this.reads.servesTile(t);
  }

  inclusionProof(index: number, treeSize: number): Promise<Uint8Array[]> {
    return this.reads.inclusionProof(index, treeSize);
  }

  consistencyProof(oldSize: number, newSize: number): Promise<Uint8Array[]> {
    return this.reads.consistencyProof(oldSize, newSize);
  }

  /** The level-0 hash of entry `index`. */
  leafHashAt(index: number): Promise<Uint8Array> {
    return this.reads.leafHashAt(index);
  }

  /** Entries from `start`, at most `limit`; `next` is the index to ask for next. */
  readEntries(start: number, limit: number): Promise<{ entries: Uint8Array[]; next: number }> {
    return this.reads.readEntries(start, limit);
  }
}
