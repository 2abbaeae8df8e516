/**
 * The per-tenant log engine: the sequencer (group commit), the commit point, recovery on open,
 * and the reads. One Log object per tenant per process; the engine is its only writer.
 *
 * The life of a batch (../shared/DESIGN.md):
 *   take everything pending -> assign indexes, hash leaves, extend the tree -> write bundles and
 *   tiles (atomic renames, not yet fsynced) -> sign the checkpoint (Ed25519 + ML-DSA-44) ->
 *   append the batch's journal record (entries + signed note; one fdatasync) -> move the commit
 *   point -> publish `checkpoint` (and its history copy) -> answer every append of the batch.
 * While one batch integrates the next accumulates; a lone entry at low load integrates at once.
 *
 * Durability: an acknowledged batch is durable through its journal record. The files it wrote
 * are flushed in bulk about once a second (flush()), after which the journal segments they
 * cover are deleted; a crash before that is repaired from the journal on open (replay.ts). This
 * deviates from DESIGN.md's "commit point moves only after the tiles are durable" in letter, not
 * in effect: the tiles are recoverable, byte for byte, before the commit point moves.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { TlogError, ErrorCode, diskFullErrno, isDiskFull, isTlogError } from '../errors.js';
import { EMPTY_ROOT, equalHashes, leafHash } from '../merkle/hash.js';
import { inclusionProof as buildInclusionProof, ProofMemo } from '../merkle/proof.js';
import { checkKeyName, openNote, parseNote } from '../note/note.js';
import { DurableWriter, readIfExists, writeFileDurably, type FileWrite } from '../storage/durable.js';
import { sharedFileWorker } from '../storage/file-worker.js';
import { Journal, readJournal } from '../storage/journal.js';
import { DiskSpace, formatBytes } from '../storage/space.js';
import { checkEntrySize } from '../tiles/bundle.js';
import { TILE_WIDTH, formatTilePath, tileWidthInTree, type TileCoord } from '../tiles/layout.js';
import { nodeReaderOver } from '../tiles/tree.js';
import { Edge, type Extension } from './edge.js';
import { batchRecordStart, formatBatchRecord, parseBatchRecord } from './journal-record.js';
import { PartialTiles } from './partials.js';
import { journalDir, replayJournal } from './replay.js';
import { sharedSignPool } from './sign-pool.js';
import { commitPointOf, discardNotesBeyond, notePath, notesDir, pruneNotes, type CommitPoint } from './commit.js';
import type { CommitPoint as IndexCommitPoint, HotIndex } from '../hot-index/index.js';
import { catchUpIndex, indexPath, leafHashesFromTiles, openIndexFile, openState, rebuildIndex } from './state.js';
import { createLogKeys, loadLogKeys, type LogKeys } from './keys.js';
import type { LogPaths } from './paths.js';
import { discardBeyond, MAX_BATCH_ENTRIES, recoverySpan } from './recovery.js';
import { batchBytes, RESERVE_SLACK, stopsTheLog } from './disk-space.js';
import { TileReader } from './tile-reader.js';
import { TreeReads } from './reads.js';
import { CHECKPOINT_FILE, Publisher } from './publisher.js';
import {
  CONFIG_FILE,
  checkedPublished,
  readLogConfig,
  signTree,
  signTreeAsync,
  silentLogger,
  type AppendResult,
  type BatchStats,
  type LogConfig,
  type LogOptions,
  type Logger,
} from './types.js';

interface PreparedBatch {
  readonly batch: Pending[];
  readonly start: number;
  readonly end: number;
  readonly ext: Extension;
  /** The signed checkpoint, set when `written` resolves. */
  note: string;
  /** The batch's bundles and tiles in place (not yet durable) and its checkpoint signed. */
  readonly written: Promise<void>;
  readonly startedAt: number;
  writeSeconds: number;
}

interface Pending {
  readonly entry: Uint8Array;
  readonly leafHash: Uint8Array;
  /** Key of the in-flight dedup map, or '' when duplicates are allowed. */
  readonly key: string;
  readonly promise: Promise<AppendResult>;
  resolve(r: AppendResult): void;
  reject(e: unknown): void;
}

export { historyPath } from './publisher.js';
export { readLogConfig, signTree, silentLogger, type AppendResult, type BatchStats, type LogConfig, type LogOptions, type Logger } from './types.js';

export class Log {
  readonly origin: string;
  private readonly served: DurableWriter;
  private readonly reader: TileReader;
  private readonly reads: TreeReads;
  private edge: Edge;
  private committed: CommitPoint;
  private pending: Pending[] = [];
  private inFlightEntries = 0;
  private integrating: Promise<void> | null = null;
  private closed = false;
  /** Set when the log must stop: every later append fails with it. */
  private fatal: TlogError | null = null;
  /** Set when a batch failed before its commit: later batches in flight fail too, then recovery runs. */
  private broken = false;
  private readonly maxBatch: number;
  private readonly maxPending: number;
  private readonly logger: Logger;
  private readonly allowDuplicates: boolean;
  readonly readOnly: boolean;
  private indexClosed = false;
  /** The newest checkpoint appends were answered with (committed, and published when that is per batch). */
  private answered: CommitPoint;
  private readonly onBatch?: (b: BatchStats) => void;
  private readonly publisher: Publisher;
  /** When the last batch committed (ms since the epoch), for health checks. */
  lastIntegrationAt = Date.now();
  /** The newest tiles and bundles written, by path relative to the tiles directory. */
  private readonly hot = new Map<string, Uint8Array>();
  private static readonly HOT_FILES = 1024;
  /** Entries queued or in flight, by leaf hash: a repeat joins the first one's promise. */
  private readonly inflight = new Map<string, Pending>();
  /** Background flush of the deferred files, and the timer that starts it. */
  private flushing: Promise<void> | null = null;
  private flushTimer: NodeJS.Timeout | null = null;
  private readonly flushIntervalMs: number;
  private readonly pipelineDepth: number;
  /** The filesystems the log writes to (null: no free-space checks). */
  private readonly space: DiskSpace | null;
  /**
   * Why appends are refused for want of space, while they are: `held` when a batch past its
   * signature waits to write (cleared when its write succeeds), else a shortage found by statfs
   * or a batch refused by ENOSPC (cleared once statfs shows room again). See disk-space.ts.
   */
  private blocked: { reason: string; held: boolean } | null = null;
  /** Bytes of the entries queued and not yet taken into a batch. */
  private queuedBytes = 0;
  /** Free bytes at the last statfs (admission reads the disk only when it was short). */
  private lastFree = Number.POSITIVE_INFINITY;
  /** Which partial tiles stay on disk (null for a read-only log, which deletes nothing). */
  private partials: PartialTiles | null = null;

  private constructor(
    readonly paths: LogPaths,
    readonly config: LogConfig,
    private readonly keys: LogKeys,
    private readonly index: HotIndex,
    /** The write-ahead journal (null for a read-only log). */
    private readonly journal: Journal | null,
    committed: CommitPoint,
    opts: LogOptions,
    published: CommitPoint = committed,
  ) {
    this.origin = config.origin;
    this.answered = committed;
    this.allowDuplicates = opts.allowDuplicates ?? false;
    this.onBatch = opts.onBatch;
    this.readOnly = opts.readOnly ?? false;
    this.committed = committed;
    // Deferred writes go through the file worker, so the sequencer never blocks on file creation.
    this.served = new DurableWriter({ mode: 0o644, fileWorker: sharedFileWorker(), ...opts.durable });
    this.publisher = new Publisher(paths, this.served, [keys.ed25519.verifier, keys.mldsa44.verifier], opts.publishMode ?? 'each', published);
    this.reader = new TileReader(paths.tilesDir);
    // Reads see the committed tree; the right edge in memory serves the newest nodes.
    this.reads = new TreeReads(this.reader, (level, index) => this.edge.lookup(level, index), () => this.committed.treeSize);
    const maxBatch = opts.maxBatch ?? 16384;
    this.maxBatch = Number.isInteger(maxBatch) && maxBatch >= 1 ? Math.min(maxBatch, MAX_BATCH_ENTRIES) : 16384;
    this.maxPending = opts.maxPending ?? 1 << 20;
    this.logger = opts.logger ?? silentLogger;
    this.edge = Edge.empty();
    this.flushIntervalMs = opts.flushIntervalMs ?? 1000;
    const depth = opts.pipelineDepth ?? Number(process.env.TLOG_PIPELINE_DEPTH ?? 3);
    // Three: one batch committing, one signing, one being hashed and written (measured ~10%
    // more appends/s than two at 64 and 256 connections; bench/http.ts).
    this.pipelineDepth = Number.isInteger(depth) && depth >= 1 && depth <= 16 ? depth : 3;
    this.space =
      this.readOnly || opts.checkFreeSpace === false ? null : new DiskSpace({ tiles: paths.tilesDir, checkpoints: paths.historyDir, state: paths.stateDir });
  }

  /**
   * Creates a new log: its private state directory, its keys (0600), its configuration, and
   * the signed checkpoint of the empty tree, published. Fails if a log exists there already.
   */
  static async init(paths: LogPaths, origin: string, opts: LogOptions = {}): Promise<Log> {
    // The origin is also the key name (c2sp.org/tlog-checkpoint SHOULD), so it must be a valid one.
    const problem = checkKeyName(origin);
    if (problem) throw new TlogError(ErrorCode.badInput, `bad origin: ${problem}`);
    if (await readIfExists(path.join(paths.stateDir, CONFIG_FILE))) {
      throw new TlogError(ErrorCode.conflict, `a log already exists at ${paths.stateDir}`);
    }
    if (await readIfExists(path.join(paths.tilesDir, CHECKPOINT_FILE))) {
      throw new TlogError(ErrorCode.conflict, `${paths.tilesDir} already holds a published log`);
    }
    await fsp.mkdir(paths.stateDir, { recursive: true, mode: 0o700 });
    await fsp.mkdir(notesDir(paths.stateDir), { recursive: true, mode: 0o700 });
    await createLogKeys(paths.stateDir, origin);
    const config: LogConfig = { version: 1, origin, createdAt: new Date().toISOString() };
    const keys = await loadLogKeys(paths.stateDir, origin, opts.clock, offloadOf(opts));
    const cp = commitPointOf(signTree(origin, 0, EMPTY_ROOT, keys));
    const state: StateOpts = { readOnly: false, logger: opts.logger ?? silentLogger, indexCapacity: opts.indexCapacity, backend: opts.indexBackend };
    const index = openIndexFile(paths, state, true);
    let journal: Journal;
    try {
      // The note first, then the commit point naming it, then the config that marks the log as
      // existing: a crash in between leaves no log (init can be run again after cleaning up).
      await writeFileDurably(notePath(paths.stateDir, 0), cp.note, 0o600);
      index.writeCommitPoint({ treeSize: 0, rootHash: cp.rootHash, checkpointHash: cp.noteHash });
      await writeFileDurably(path.join(paths.stateDir, CONFIG_FILE), JSON.stringify(config, null, 2) + '\n', 0o600);
      journal = await Journal.open(journalDir(paths), opts.journal);
    } catch (e) {
      index.close();
      throw e;
    }
    const log = new Log(paths, config, keys, index, journal, cp, opts);
    log.partials = PartialTiles.empty(log.partialsIO());
    // The empty tree is published as the log signed it, whatever the mode: there is nothing to witness yet.
    await log.publisher.committed(cp, true);
    if (log.publisher.mode === 'cosigned') await log.publisher.cosigned(cp.note, cp);
    await writeFileDurably(path.join(paths.historyDir, 'vkeys'), log.verifierKeys().join('\n') + '\n');
    return log;
  }

  /**
   * Opens an existing log. A writer takes the log's lock (a second writer fails at once), brings
   * the index up to date (rebuilding it if damaged) and recovers the files to the commit point.
   * A reader (opts.readOnly) takes no lock and changes nothing.
   */
  static async open(paths: LogPaths, opts: LogOptions = {}): Promise<Log> {
    const config = await readLogConfig(paths.stateDir);
    const keys = await loadLogKeys(paths.stateDir, config.origin, opts.clock, offloadOf(opts));
    const logger = opts.logger ?? silentLogger;
    const readOnly = opts.readOnly ?? false;
    const reader = new TileReader(paths.tilesDir);
    let publishedBytes = await readIfExists(path.join(paths.tilesDir, CHECKPOINT_FILE));
    // In 'cosigned' mode the published note carries witness lines: parse it for size and root only.
    const verifiers = [keys.ed25519.verifier, keys.mldsa44.verifier];
    let published: CommitPoint | null = null;
    if (publishedBytes) {
      try {
        published = checkedPublished(paths, publishedBytes.toString('utf8'), config.origin, verifiers);
      } catch (e) {
        // The checkpoint is replaced without fsync each batch (the journal holds its note): a
        // machine crash may leave it empty, zeroed or cut. Only then, and only when the journal
        // shows such a crash is possible, is it treated as missing and published again. A
        // well-formed note that is not ours is still refused.
        if (readOnly || isWellFormedNote(publishedBytes) || (await readJournal(journalDir(paths))).length === 0) throw e;
        logger.warn({ tenant: paths.tenant }, 'the published checkpoint was torn by a crash; it will be published again');
        publishedBytes = null;
      }
    }
    const state: StateOpts = { readOnly, logger, indexCapacity: opts.indexCapacity, onRebuildProgress: opts.onRebuildProgress, backend: opts.indexBackend };
    // A writer first rebuilds from the journal whatever files a crash lost (replay.ts).
    /** Where the journal replayed on open starts: only tiles from there on can hold partials to collect. */
    let journalFrom: number | null = null;
    const replay = readOnly
      ? undefined
      : async (c: IndexCommitPoint | null) => {
          const records = await readJournal(journalDir(paths));
          if (records.length === 0) return null;
          journalFrom = batchRecordStart(records[0]!.payload);
          return (await replayJournal({ paths, reader, records, committed: c, verifiers, logger })).adopted;
        };
    const journaledNote = async (c: IndexCommitPoint) => {
      for (const r of (await readJournal(journalDir(paths))).reverse()) {
        const note = parseBatchRecord(r.payload).note;
        const cp = commitPointOf(note);
        if (cp.treeSize === c.treeSize && equalHashes(cp.noteHash, c.checkpointHash)) return cp;
      }
      return null;
    };
    const { index, committed: cp } = await openState(paths, reader, verifiers, published, state, replay, journaledNote);
    let journal: Journal | null = null;
    try {
      journal = readOnly ? null : await Journal.open(journalDir(paths), opts.journal);
      const log = new Log(paths, config, keys, index, journal, cp, opts, published ?? cp);
      log.verifyOwnNote(cp.note, 'commit point');
      if (published) log.checkPublished(published, cp);
      if (!readOnly) {
        await discardNotesBeyond(paths.stateDir, cp.treeSize);
        const removed = await discardBeyond(paths.tilesDir, cp.treeSize, log.recoverySpan);
        if (removed.length > 0) {
          logger.warn({ tenant: paths.tenant, treeSize: cp.treeSize, removed: removed.length }, 'discarded uncommitted tiles beyond the commit point');
        }
      }
      log.loadEdge();
      if (!readOnly) {
        const replayed = await catchUpIndex(index, reader, cp.treeSize);
        if (replayed > 0) logger.info({ tenant: paths.tenant, replayed }, 'index caught up with the log');
        // A crash between moving the commit point and publishing leaves the published
        // checkpoint behind: publishing is idempotent, so do it again.
        await log.publisher.recover(cp, publishedBytes ? publishedBytes.toString('utf8') : null);
        log.partials = await PartialTiles.open(log.partialsIO(), cp.treeSize, log.publisher.published.treeSize, journalFrom ?? cp.treeSize);
        // Everything the old journal could redo is durable now (replay flushed it).
        await journal!.dropReplayed();
      }
      return log;
    } catch (e) {
      await journal?.close();
      index.close();
      throw e;
    }
  }

  /**
   * Checks the hot index against the log: the table's own structure, then every committed leaf
   * looked up by its hash must give its own index or an earlier one holding the same hash.
   * Returns the problems found (empty when the index is sound). O(tree size).
   */
  async checkIndex(onProgress?: (done: number, total: number) => void): Promise<string[]> {
    const structural = this.index.check();
    const problems = [...structural.problems];
    const size = this.committed.treeSize;
    const reader = new TileReader(this.paths.tilesDir);
    let i = 0;
    for await (const chunk of leafHashesFromTiles(reader, 0, size)) {
      for (let off = 0; off < chunk.length; off += 32, i++) {
        const found = this.index.lookup(chunk, off);
        if (found === i) continue;
        if (found < 0) problems.push(`leaf ${i} is missing from the index`);
        else if (found > i) problems.push(`leaf ${i} maps to the later index ${found}`);
        else if (!equalHashes(await this.leafHashAt(found), chunk.subarray(off, off + 32))) problems.push(`leaf ${i} maps to index ${found}, which holds another hash`);
        if (problems.length >= 100) return problems;
      }
      onProgress?.(i, size);
    }
    return problems;
  }

  /** Rebuilds a log's hot index from its tiles (`tlog index rebuild`); fails while a writer runs. */
  static async rebuildIndex(paths: LogPaths, opts: LogOptions = {}): Promise<{ treeSize: number; path: string }> {
    const log = await Log.open(paths, { ...opts, readOnly: true });
    try {
      await rebuildIndex(paths, new TileReader(paths.tilesDir), log.committed, {
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

  /** The verifier keys of the log, as vkey strings (Ed25519 first). */
  verifierKeys(): string[] {
    return [this.keys.ed25519.vkey, this.keys.mldsa44.vkey];
  }

  get verifiers() {
    return [this.keys.ed25519.verifier, this.keys.mldsa44.verifier];
  }

  /** The last committed (and published) checkpoint. A read-only log re-reads it from disk. */
  get checkpoint(): CommitPoint {
    return this.committed;
  }

  get treeSize(): number {
    return this.committed.treeSize;
  }

  /** Entries accepted but not yet committed: queued, or in a batch being written. */
  get pendingCount(): number {
    return this.pending.length + this.inFlightEntries;
  }

  private verifyOwnNote(note: string, what: string): void {
    try {
      openNote(note, this.verifiers);
    } catch (e) {
      throw new TlogError(ErrorCode.corrupt, `${what} of ${this.paths.tenant} is not signed by this log's keys: ${(e as Error).message}`);
    }
  }

  /** Refuses to start when the published checkpoint is ahead of, or contradicts, the commit point. */
  private checkPublished(published: CommitPoint, cp: CommitPoint): void {
    if (published.treeSize > cp.treeSize) {
      throw new TlogError(
        ErrorCode.corrupt,
        `published checkpoint (size ${published.treeSize}) is ahead of the commit point (size ${cp.treeSize}): refusing to start`,
      );
    }
    if (published.treeSize === cp.treeSize && !equalHashes(published.rootHash, cp.rootHash)) {
      throw new TlogError(ErrorCode.corrupt, `published checkpoint contradicts the commit point at size ${cp.treeSize}: refusing to start`);
    }
  }

  /** How far beyond the commit point this run's batches can have written tiles (recovery.ts). */
  get recoverySpan(): number {
    return recoverySpan(this.pipelineDepth, this.maxBatch);
  }

  /** Loads the right edge of the tree and the edge bundle from disk, checking them against the commit point. */
  private loadEdge(): void {
    const size = this.committed.treeSize;
    this.edge = Edge.load(this.reader, size, (root) => {
      if (!equalHashes(root, this.committed.rootHash)) {
        throw new TlogError(ErrorCode.corrupt, `tiles of ${this.paths.tenant} do not hash to the committed root at size ${size}: refusing to start`);
      }
    });
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
    if (this.fatal) throw this.fatal;
    if (this.closed) throw new TlogError(ErrorCode.unavailable, `log ${this.paths.tenant} is closing`);
    if (this.pendingCount + entries.length > this.maxPending) {
      throw new TlogError(ErrorCode.unavailable, `log ${this.paths.tenant} has ${this.pendingCount} entries pending: try again shortly`);
    }
    this.admitBySpace(entries);
    const out = entries.map((entry) => {
      const h = leafHash(entry);
      let key = '';
      if (!this.allowDuplicates) {
        key = Buffer.from(h.buffer, h.byteOffset, 32).toString('base64');
        const first = this.inflight.get(key);
        if (first) return first.promise.then((r) => ({ ...r, duplicate: true }));
        const index = this.index.lookup(h);
        if (index >= 0) return this.duplicateOf(index, h);
      }
      let resolve!: (r: AppendResult) => void;
      let reject!: (e: unknown) => void;
      const promise = new Promise<AppendResult>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      // Copy: the caller may reuse its buffer before the batch is written.
      const p: Pending = { entry: Uint8Array.from(entry), leafHash: h, key, promise, resolve, reject };
      if (key) this.inflight.set(key, p);
      this.pending.push(p);
      this.queuedBytes += p.entry.length;
      return promise;
    });
    this.kick();
    return out;
  }

  /** The answer for an entry already committed at `index`. */
  private async duplicateOf(index: number, h: Uint8Array): Promise<AppendResult> {
    // The checkpoint the last batch was answered with: committed and (in 'each' mode) published.
    const cp = this.answered;
    return { index, leafHash: h, treeSize: cp.treeSize, checkpoint: cp.note, proof: await this.inclusionProof(index, cp.treeSize), duplicate: true };
  }

  /**
   * Looks an entry up by its leaf hash: its index and an inclusion proof in the current
   * checkpoint, or null when the log does not hold it.
   */
  async findByLeafHash(h: Uint8Array): Promise<{ index: number; treeSize: number; checkpoint: string; proof: Uint8Array[] } | null> {
    if (h.length !== 32) throw new TlogError(ErrorCode.badInput, 'a leaf hash is 32 bytes');
    if (this.readOnly) this.index.refresh();
    const index = this.index.lookup(h);
    // The checkpoint appends were last answered with: committed and, per batch, published.
    const cp = this.readOnly ? this.committed : this.answered;
    if (index < 0 || index >= cp.treeSize) return null;
    return { index, treeSize: cp.treeSize, checkpoint: cp.note, proof: await this.inclusionProof(index, cp.treeSize) };
  }

  private kick(): void {
    if (this.integrating || this.pending.length === 0) return;
    this.integrating = this.runBatches().finally(() => {
      this.integrating = null;
      this.kick();
    });
  }

  /**
   * The sequencer loop, a two-deep pipeline: while batch k's files are written, signed and
   * committed, batch k+1 is hashed and its writes started. Commits stay strictly in order.
   */
  private async runBatches(): Promise<void> {
    let previous: Promise<void> | null = null;
    const inFlight: Promise<void>[] = [];
    while (this.pending.length > 0 && !this.fatal && !this.broken) {
      const batch = this.pending.splice(0, this.maxBatch);
      let payload = 0;
      for (const p of batch) payload += p.entry.length;
      this.queuedBytes -= payload;
      // A batch starts only when its bytes and the reserve are free: it never meets a full
      // disk half-way (disk-space.ts). Nothing is written or signed for a refused batch.
      const room = this.roomFor(batch.length, payload);
      if (room.refusal) {
        this.block(room.refusal, false);
        this.failBatch(batch, this.diskFullError(room.refusal));
        continue;
      }
      const release = this.space?.claim(room.need) ?? (() => {});
      this.inFlightEntries += batch.length;
      let prepared: PreparedBatch;
      try {
        prepared = this.prepare(batch);
      } catch (e) {
        this.broken = true;
        this.inFlightEntries -= batch.length;
        release();
        this.failBatch(batch, e);
        break;
      }
      const finished: Promise<void> = this.finish(prepared, previous).finally(() => {
        this.inFlightEntries -= batch.length;
        release();
      });
      inFlight.push(finished);
      previous = finished;
      // At most `pipelineDepth` batches in flight: wait for the oldest before preparing another.
      if (inFlight.length >= this.pipelineDepth) await inFlight.shift();
      else if (this.pending.length === 0) await prepared.written.catch(() => {});
    }
    if (previous) await previous;
    if (this.broken && !this.fatal) await this.recoverToCommitPoint();
    if (this.fatal) for (const p of this.pending.splice(0)) p.reject(this.fatal);
  }

  /** Hashes a batch into the tree and starts writing its bundles and tiles. Synchronous but for the writes. */
  private prepare(batch: Pending[]): PreparedBatch {
    const startedAt = performance.now();
    const ext = this.edge.extend(
      batch.map((p) => p.entry),
      batch.map((p) => p.leafHash),
    );
    const { start, end } = ext;
    // c2sp.org/tlog-tiles: every tile a published checkpoint implies must exist before it is
    // published (tessera#1057), so they are written first. Deferred: renamed into place now,
    // fsynced by the next flush; until then the journal record can redo them.
    const writes: FileWrite[] = ext.files.map((f) => ({ path: this.reader.tilePath(f.coord.level, f.coord.index, f.coord.width), data: f.data, kind: 'immutable' }));
    const t0 = performance.now();
    const tilesWritten = this.served.writeDeferred(writes);
    const prepared: PreparedBatch = { batch, start, end, ext, note: '', written: null!, startedAt, writeSeconds: 0 };
    // Signed only once its tiles are in place: a batch that cannot write them fails before any
    // signature over its root exists, so no other root is ever signed at its size (DESIGN.md).
    // The signature (ML-DSA-44 is ~6 ms of CPU) is made on the signing worker, off this thread.
    (prepared as { written: Promise<void> }).written = tilesWritten.then(async () => {
      prepared.writeSeconds = (performance.now() - t0) / 1000;
      prepared.note = await signTreeAsync(this.origin, end, ext.rootHash, this.keys);
    });
    return prepared;
  }

  /** Waits for the batch's files and the previous batch, then signs, commits, publishes and answers. */
  private async finish(b: PreparedBatch, previous: Promise<void> | null): Promise<void> {
    let committed = false;
    let journaled = false;
    try {
      await b.written;
      if (previous) await previous;
      if (this.broken || this.fatal) throw new TlogError(ErrorCode.unavailable, `batch at ${b.start} abandoned: an earlier batch failed`);
      // The batch becomes durable here, in one record: its entries and signed note. Records
      // are appended in batch order (after the previous batch committed), so they chain.
      // From here on the batch is signed: a full disk makes it wait, never fail (disk-space.ts).
      const j0 = performance.now();
      const record = formatBatchRecord(b.start, b.batch, b.note);
      await this.untilWritten('the journal record', () => this.journal!.append(record, b.end, b.start));
      // The first record of an empty journal: replay would start from its tree, whose partials stay.
      this.partials!.journalStartAt(this.journal!.startMark());
      b.writeSeconds += (performance.now() - j0) / 1000;
      journaled = true;
      const cp = commitPointOf(b.note);
      // The commit point moves before publishing: from here on the batch is part of the log.
      const c0 = performance.now();
      this.index.writeCommitPoint({ treeSize: cp.treeSize, rootHash: cp.rootHash, checkpointHash: cp.noteHash });
      const commitSeconds = (performance.now() - c0) / 1000;
      committed = true;
      this.committed = cp;
      await this.untilWritten('the checkpoint and its history copy', () => this.publisher.committed(cp));
      this.answered = cp;
      let entryBytes = 0;
      for (const p of b.batch) entryBytes += p.entry.length;
      // The partials this batch superseded go now (unless a checkpoint still keeps them).
      this.partials!.committed(cp.treeSize, b.ext.files, entryBytes, this.publisher.mode === 'each');
      // Indexed only once answerable: until then a repeat of one of these entries finds it in
      // flight and shares its answer, and a lookup never finds an index beyond the checkpoint
      // duplicates are answered with. (Inserting again after a failed growth is idempotent.)
      await this.untilWritten('the index', () => this.indexBatch(b));
      // Proofs are built when a caller reads them (an append-batch answer without proofs never
      // does), sharing the batch's tiles and the work common to one tree size.
      const memo = new ProofMemo();
      const node = nodeReaderOver(b.ext.lookup);
      for (let i = 0; i < b.batch.length; i++) {
        const index = b.start + i;
        let proof: Uint8Array[] | undefined;
        b.batch[i]!.resolve({
          index,
          leafHash: b.batch[i]!.leafHash,
          treeSize: b.end,
          checkpoint: b.note,
          get proof() {
            return (proof ??= buildInclusionProof(index, b.end, node, memo));
          },
          duplicate: false,
        });
      }
      for (const f of b.ext.files) {
        // The narrower copy of a tile this batch widened is no longer the newest: out of memory
        // (reads of it are served from the disk, or from the prefix of this one).
        const before = tileWidthInTree(f.coord.level, f.coord.index, b.start);
        if (before > 0 && before < TILE_WIDTH) this.hot.delete(formatTilePath({ ...f.coord, width: before }));
        this.rememberHot(formatTilePath(f.coord), f.data);
      }
      this.lastIntegrationAt = Date.now();
      this.onBatch?.({
        tenant: this.paths.tenant,
        entries: b.batch.length,
        seconds: (performance.now() - b.startedAt) / 1000,
        writeSeconds: b.writeSeconds,
        commitSeconds,
      });
      for (const t of b.ext.completed.values()) this.reader.cache.put(t);
      this.scheduleFlush();
    } catch (e) {
      if (stopsTheLog(e, committed || journaled || this.journal!.mustRepeat)) {
        // Past the commit point, with a journal record that may count, or an immutable file
        // with other bytes: this process cannot continue safely. Stop loudly; a restart
        // recovers from the journal and the commit point.
        const err = this.batchError(b.start, e);
        this.fatal ??= new TlogError(err.code === ErrorCode.diskFull ? ErrorCode.io : err.code, `log ${this.paths.tenant} stopped: ${err.message}`, { cause: err });
        this.logger.error({ tenant: this.paths.tenant, err: err.message }, 'log stopped');
        this.failBatch(b.batch, this.fatal);
      } else if (isDiskFull(e)) {
        // Refused before its signature counted: nothing of it stays (recovery deletes its files).
        const reason = `disk full (${diskFullErrno(e) ?? 'ENOSPC'}) writing a batch`;
        this.logger.warn({ tenant: this.paths.tenant, err: (e as Error).message }, 'batch refused: disk full');
        this.block(reason, false);
        this.failBatch(b.batch, this.diskFullError(reason, e));
      } else {
        // Abandoned behind a failed batch: tell its callers why, when the disk was the reason.
        this.failBatch(b.batch, this.blocked ? this.diskFullError(this.blocked.reason, e) : e);
      }
      this.broken = true;
    }
  }

  private batchError(start: number, e: unknown): TlogError {
    return isTlogError(e) ? e : new TlogError(ErrorCode.io, `integrate batch at ${start}: ${(e as Error).message}`, { cause: e });
  }

  /** The error appends get while the log cannot write for want of space (HTTP 503 disk_full). */
  private diskFullError(reason: string, cause?: unknown): TlogError {
    return new TlogError(ErrorCode.diskFull, `log ${this.paths.tenant} cannot write: ${reason}; try again later`, { cause });
  }

  private block(reason: string, held: boolean): void {
    if (this.blocked?.reason !== reason) this.logger.warn({ tenant: this.paths.tenant, reason }, 'log cannot write');
    this.blocked = { reason, held };
  }

  private unblock(): void {
    if (!this.blocked) return;
    this.logger.info({ tenant: this.paths.tenant, was: this.blocked.reason }, 'log writes again');
    this.blocked = null;
  }

  /** Bytes kept free beyond a batch's own: the next journal segment, the index's next growth, slack. */
  private reserveBytes(entries: number): number {
    return (this.journal?.nextSegmentBytes ?? 0) + this.index.bytesToInsert(entries) + RESERVE_SLACK;
  }

  /**
   * Whether `entries` more entries of `payload` bytes fit on the disk now, with the reserve
   * (one statfs per filesystem): the bytes they need, and why not when they do not.
   */
  private roomFor(entries: number, payload: number): { need: number; refusal: string | null } {
    if (!this.space) return { need: 0, refusal: null };
    const need = batchBytes(this.edge.size, entries, payload, this.edge.bundleBytes);
    const reserve = this.reserveBytes(entries);
    const { free, where } = this.space.read();
    this.lastFree = free;
    if (free >= need + reserve) return { need, refusal: null };
    return {
      need,
      refusal: `disk full: ${formatBytes(free)} free for the log's ${where}, ${formatBytes(need + reserve)} needed (${formatBytes(reserve)} of it kept in reserve)`,
    };
  }

  /**
   * Refuses appends (disk_full) while a batch waits for room, or while the disk lacks room for
   * what is queued plus these entries and the reserve. Reads the disk only when it was short
   * at the last reading (or the log is blocked): a roomy disk costs no statfs per append.
   */
  private admitBySpace(entries: readonly Uint8Array[]): void {
    if (this.blocked?.held) throw this.diskFullError(this.blocked.reason);
    if (!this.space) {
      // No free-space checks: the next batch finds out by trying.
      this.unblock();
      return;
    }
    let payload = 0;
    for (const e of entries) payload += e.length;
    const short = this.lastFree < TIGHT_BYTES + 4 * (this.queuedBytes + payload + this.reserveBytes(0));
    if (!this.blocked && !short) return;
    const room = this.roomFor(this.pending.length + entries.length, this.queuedBytes + payload);
    if (room.refusal) {
      this.block(room.refusal, false);
      throw this.diskFullError(room.refusal);
    }
    this.unblock();
  }

  /**
   * Runs a write of a signed batch until it succeeds: a write refused for want of space is
   * retried (with a growing pause, up to 2 s) while appends are refused; anything else, or the
   * log closing, throws. Each write retried here is idempotent.
   */
  private async untilWritten<T>(what: string, write: () => Promise<T> | T): Promise<T> {
    for (let pause = 10; ; pause = Math.min(pause * 2, 2000)) {
      try {
        const r = await write();
        if (this.blocked?.held) this.unblock();
        return r;
      } catch (e) {
        if (!isDiskFull(e) || this.closed) throw e;
        this.block(`disk full (${diskFullErrno(e) ?? 'ENOSPC'}) writing ${what}: a signed batch waits for room`, true);
        await new Promise((r) => setTimeout(r, pause));
      }
    }
  }

  /**
   * Why this log cannot take appends now, or null when it can: it stopped, or it has no room
   * (with the reason). A shortage is read again from the disk, so this clears by itself once
   * space is back.
   */
  get cannotWrite(): string | null {
    // Not the stop's own message: healthz is public, and that one may name the server's paths.
    if (this.fatal) return `log stopped (${this.fatal.code}): a restart recovers it; the server's log says why`;
    if (this.readOnly || this.closed || !this.space || this.blocked?.held) return this.blocked?.reason ?? null;
    const room = this.roomFor(this.pending.length + 1, this.queuedBytes);
    if (room.refusal) this.block(room.refusal, false);
    else this.unblock();
    return this.blocked?.reason ?? null;
  }

  private failBatch(batch: Pending[], e: unknown): void {
    const err = this.batchError(-1, e);
    for (const p of batch) {
      if (p.key && this.inflight.get(p.key) === p) this.inflight.delete(p.key);
      p.reject(err);
    }
  }

  /** Adds a committed batch's leaves to the dedup index; its entries stop being "in flight". */
  private indexBatch(b: PreparedBatch): void {
    const hashes = Buffer.allocUnsafe(b.batch.length * 32);
    b.batch.forEach((p, i) => hashes.set(p.leafHash, i * 32));
    // The index keeps the smallest index of a hash, so replays and duplicates are harmless.
    this.index.insertMany(hashes, b.start);
    for (const p of b.batch) if (p.key && this.inflight.get(p.key) === p) this.inflight.delete(p.key);
  }

  /** After a failed batch nothing past the commit point counts: drop it from disk and memory. */
  private async recoverToCommitPoint(): Promise<void> {
    this.logger.warn({ tenant: this.paths.tenant, treeSize: this.committed.treeSize }, 'batch failed, recovering to the commit point');
    try {
      await discardBeyond(this.paths.tilesDir, this.committed.treeSize, this.recoverySpan);
      await discardNotesBeyond(this.paths.stateDir, this.committed.treeSize);
      this.served.forgetDirs();
      this.loadEdge();
      this.broken = false;
    } catch (e) {
      this.fatal = new TlogError(ErrorCode.corrupt, `log ${this.paths.tenant} stopped: recovery after a failed batch failed: ${(e as Error).message}`);
    }
  }

  /** The checkpoint served at tiles/<tenant>/checkpoint (cosigned, when witnesses are configured). */
  get published(): CommitPoint {
    return this.publisher.published;
  }

  /**
   * Publishes a committed checkpoint with extra cosignature lines (verified by the caller
   * against the witness policy). See Publisher.cosigned.
   */
  async publishCosigned(note: string): Promise<CommitPoint> {
    if (this.readOnly) throw new TlogError(ErrorCode.badInput, `log ${this.paths.tenant} is open read-only`);
    let size: number;
    try {
      size = commitPointOf(note).treeSize;
    } catch (e) {
      throw new TlogError(ErrorCode.verification, `not a checkpoint of this log: ${(e as Error).message}`);
    }
    // Within the committed tree its partials are there, or derivable: written before publishing.
    if (size > this.committed.treeSize) return this.publisher.cosigned(note, this.committed);
    return this.partials!.publish(size, () => this.publisher.cosigned(note, this.committed));
  }

  /** What the partial-tile collector needs from the log. */
  private partialsIO() {
    return {
      reader: this.reader,
      write: (files: readonly FileWrite[]) => this.served.writeDeferred(files),
      onDelete: (rel: string) => this.hot.delete(rel),
      onDirRemoved: () => this.served.forgetDirs(),
      logger: this.logger,
      tenant: this.paths.tenant,
    };
  }

  /** Flushes the deferred files within flushIntervalMs, unless a flush is due already. */
  private scheduleFlush(): void {
    if (this.flushTimer || this.closed) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = null;
      this.flush().catch((e) => this.logger.error({ tenant: this.paths.tenant, err: (e as Error).message }, 'flush failed; the journal keeps the batches until a flush succeeds'));
    }, this.flushIntervalMs);
    this.flushTimer.unref();
  }

  /**
   * Makes every file written so far durable (tiles, bundles, notes, checkpoint copies), then
   * deletes the journal segments that only hold batches now covered. Runs about once a second
   * while batches come in, and on close. Flushes run one at a time.
   */
  flush(): Promise<void> {
    const run = (this.flushing ?? Promise.resolve()).then(async () => {
      if (!this.journal) return;
      // Batches up to the answered size have all their files (their publish included) in place,
      // so the writer's queue holds them all now.
      const cp = this.answered;
      // The commit point's note, kept privately for open (the journal covers newer ones; replay
      // writes the newest from it after a crash). One per flush, not one per batch.
      await this.served.writeDeferred([{ path: notePath(this.paths.stateDir, cp.treeSize), data: Buffer.from(cp.note, 'utf8'), kind: 'replace', mode: 0o600 }]);
      await this.served.flush();
      // Partials collected so far stay collected after a crash: the journal that goes next is
      // what tells a restart where to look for leftovers (PartialTiles.open).
      await this.partials!.syncDeletions();
      // Replay will start where the oldest segment left starts: that tree's partials must be
      // durable before the segments before it go (they may have been collected meanwhile).
      const next = this.journal.startMarkAfterRelease(cp.treeSize);
      if (next !== null && next !== this.journal.startMark()) {
        await this.partials!.journalWillStartAt(next);
        await this.served.flush();
      }
      await this.journal.release(cp.treeSize);
      this.partials!.journalStartAt(this.journal.startMark());
      await this.partials!.syncDeletions();
      await pruneNotes(this.paths.stateDir, cp.treeSize);
    });
    this.flushing = run.catch(() => {});
    return run;
  }

  /** Resolves once everything pending is integrated and durable; then refuses new appends. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.integrating) await this.integrating;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    try {
      if (this.journal) {
        try {
          await this.flush();
          // Everything is durable in its own files: no segment is needed any more.
          if (!this.fatal) await this.journal.release(this.answered.treeSize, true);
          this.partials?.journalStartAt(this.journal.startMark());
        } finally {
          // A flush that failed (a full disk) leaves the journal to redo the batches on open.
          await this.journal.close();
          await this.partials?.idle();
        }
      }
    } finally {
      // Syncs the dedup table and releases the writer lock.
      if (!this.indexClosed) {
        this.indexClosed = true;
        this.index.close();
      }
    }
  }

  private rememberHot(rel: string, data: Uint8Array): void {
    this.hot.delete(rel);
    this.hot.set(rel, data);
    if (this.hot.size > Log.HOT_FILES) this.hot.delete(this.hot.keys().next().value!);
  }

  /**
   * A tile or bundle written recently (the newest partials and upper levels that readers ask
   * for most), from memory; undefined when it is not cached. Paths as in c2sp.org/tlog-tiles.
   */
  hotFile(rel: string): Uint8Array | undefined {
    return this.hot.get(rel);
  }

  /** Resolves once the partial tiles collected so far are deleted (they go right after each commit). */
  async settled(): Promise<void> {
    await this.partials?.idle();
  }

  /**
   * The bytes of a tile or bundle the committed tree implies (servesTile): its file, or for a
   * collected partial the prefix of a wider one (TileReader.readAt). Null when there is none.
   */
  async readTileFile(t: TileCoord): Promise<Uint8Array | null> {
    try {
      return await this.reader.readAt(t.level, t.index, t.width);
    } catch (e) {
      if (isTlogError(e, ErrorCode.io) && ((e as TlogError).cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') return null;
      throw e;
    }
  }

  // ---- reads: all against the committed tree (see reads.ts) ----

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

type StateOpts = Parameters<typeof openIndexFile>[1];

/** Below this many free bytes (plus what is queued), every append reads the disk's free space. */
const TIGHT_BYTES = 64 << 20;

/** Checkpoints are signed off the main thread unless a caller asks for inline signing. */
function offloadOf(opts: LogOptions) {
  if (opts.signPool === 'inline') return undefined;
  return (opts.signPool ?? sharedSignPool()).offload;
}

function isWellFormedNote(bytes: Uint8Array): boolean {
  try {
    parseNote(Buffer.from(bytes).toString('utf8'));
    return true;
  } catch {
    return false;
  }
}

