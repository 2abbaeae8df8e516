/**
 * The sequencer: group commit of appends. Appends queue up; a batch takes
 * everything queued (up to maxBatch) through the pipeline:
 *   assign indexes, hash leaves, extend the tree -> write bundles and tiles (atomic renames, not
 *   yet fsynced) -> sign the checkpoint (Ed25519 + ML-DSA-44, on the signing worker) -> append
 *   the batch's journal record (entries + signed note; one fdatasync) -> move the commit point
 *   (in memory and the page cache; the flush syncs it)
 *   -> publish `checkpoint` (and its history copy) -> answer every append of the batch.
 * Up to pipelineDepth batches are in flight at once (settings.ts): while one commits, the next
 * is signed and the one after is hashed and written. Commits stay strictly in order. A lone
 * entry at low load integrates at once.
 *
 * Durability: an acknowledged batch is durable through its journal record; the files it wrote
 * are flushed in bulk later (flush.ts). This deviates from the design's "commit point moves only
 * after the tiles are durable" in letter, not in effect: the tiles are recoverable, byte for
 * byte, before the commit point moves.
 *
 * A failed batch stops the log or is refused by the rule of stop-rule.ts; a full disk is kept
 * from failing a batch at all where it can be (disk-space.ts).
 */
import { TlogError, ErrorCode, isDiskFull, diskFullErrno, isTlogError } from '../errors.js';
import type { HotIndex } from '../hot-index/index.js';
import type { Logger } from '../logger.js';
import { leafHashLatin1 } from '../merkle/hash.js';
import type { Journal } from '../storage/journal.js';
import type { DiskSpace } from '../storage/space.js';
import type { PartialTiles } from '../tile-store/partials.js';
import type { LogPaths } from '../tile-store/paths.js';
import type { TileStore } from '../tile-store/tile-store.js';
import type { BatchSink } from './batch-sink.js';
import { Answers } from './answers.js';
import { PreparedBatch, type AppendResult, type BatchStats, type Pending } from './batch.js';
import { signTreeAsync } from './checkpoint-signing.js';
import { commitPointOfSigned, discardNotesBeyond, type CommitPoint } from './commit-point.js';
import { batchBytes, RESERVE_SLACK, SpaceGuard } from './disk-space.js';
import { Edge } from './edge.js';
import { formatBatchRecord } from './journal-record.js';
import type { LogKeys } from './keys.js';
import type { Publisher } from './publisher.js';
import type { LogSettings } from './settings.js';
import { mayCount, stopsTheLog } from './stop-rule.js';
import type { BatchTrace, BatchTracer } from './tracing.js';

export interface SequencerParts {
  readonly paths: LogPaths;
  readonly origin: string;
  readonly keys: LogKeys;
  readonly index: HotIndex;
  /** The write-ahead journal (null for a read-only log, which never runs a batch). */
  readonly journal: Journal | null;
  readonly store: TileStore;
  readonly publisher: Publisher;
  /** Which partial tiles stay on disk (null for a read-only log). */
  readonly partials: PartialTiles | null;
  readonly settings: LogSettings;
  readonly logger: Logger;
  /** Whether a repeated entry is kept at first (Sequencer.allowDuplicates changes it). */
  readonly allowDuplicates: boolean;
  /** The filesystems the log writes to (null: no free-space checks). */
  readonly disk: DiskSpace | null;
  /** The commit point the log opened at, and the right edge of its tree. */
  readonly committed: CommitPoint;
  readonly edge: Edge;
  readonly onBatch?: (b: BatchStats) => void;
  /** Where each journaled batch must also be durable before it commits (batch-sink.ts), or null. */
  readonly sink: BatchSink | null;
  /** Traces batches and their stages (tracing.ts); absent: nothing is traced. */
  readonly tracer?: BatchTracer;
  /** An inclusion proof in the committed tree (for the answer to a duplicate). */
  prove(index: number, treeSize: number): Promise<Uint8Array[]>;
  /** Asks for the deferred files to be flushed soon (flush.ts). */
  flushSoon(): void;
}

export class Sequencer {
  /**
   * The commit point: the newest checkpoint whose batch is journaled and recorded in the hot
   * index; the log's tree ends there, and reads are served against it.
   */
  #committed: CommitPoint;
  /**
   * The answered checkpoint: the newest checkpoint appends were answered with: committed, and
   * its history copy (in 'each' mode also the published checkpoint) written.
   */
  #answered: CommitPoint;
  /** The right edge of the tree in memory: of the committed tree, extended by the batches in flight. */
  private edge: Edge;
  private pending: Pending[] = [];
  /** Bytes of the entries queued and not yet taken into a batch. */
  private queuedBytes = 0;
  /** Entries taken into batches not yet answered. */
  private inFlightEntries = 0;
  /** Entries queued or in flight, by leaf hash: a repeat joins the first one's promise. */
  private readonly inflight = new Map<string, Pending>();
  private integrating: Promise<void> | null = null;
  private closed = false;
  /** Set when the log must stop: every later append fails with it. */
  private fatal: TlogError | null = null;
  /** Set when a batch failed before its commit: later batches in flight fail too, then recovery runs. */
  private broken = false;
  private readonly space: SpaceGuard;
  /** Whether a repeated entry is kept (true) or answered with the first copy; may change at any time. */
  allowDuplicates: boolean;
  /** What the next batch waits for (expectReturns), if anything. */
  private returns: { want: number; until: number } | null = null;
  /** The wait for entries under way (gatherBehind, gather), ended early by kick() once `want` are pending, or by close(). */
  private gathered: { want: number; done: () => void } | null = null;
  /** When the last batch committed (ms since the epoch), for health checks. */
  lastIntegrationAt = Date.now();

  constructor(private readonly parts: SequencerParts) {
    parts.sink?.attach?.((e) => this.stop(e));
    this.#committed = parts.committed;
    this.#answered = parts.committed;
    this.edge = parts.edge;
    this.allowDuplicates = parts.allowDuplicates;
    this.space = new SpaceGuard(
      parts.disk,
      {
        batchBytes: (entries, payload) => batchBytes(this.edge.size, entries, payload, this.edge.bundleBytes),
        reserveBytes: (entries) => (parts.journal?.nextSegmentBytes ?? 0) + parts.index.bytesToInsert(entries) + RESERVE_SLACK,
      },
      parts.paths.tenant,
      parts.logger,
    );
  }

  /** The commit point (see #committed). */
  get committed(): CommitPoint {
    return this.#committed;
  }

  /** The answered checkpoint (see #answered). */
  get answered(): CommitPoint {
    return this.#answered;
  }

  /** Why the log stopped, or null while it runs. */
  get stopped(): TlogError | null {
    return this.fatal;
  }

  /** Entries accepted but not yet committed: queued, or in a batch being written. */
  get pendingCount(): number {
    return this.pending.length + this.inFlightEntries;
  }

  /** The newest nodes of the tree, from the right edge in memory (for reads). */
  edgeTile(level: number, index: number) {
    return this.edge.lookup(level, index);
  }

  /**
   * Why this log cannot take appends now, or null when it can: it stopped, or it has no room
   * (with the reason). A shortage is read again from the disk, so this clears by itself once
   * space is back.
   */
  get cannotWrite(): string | null {
    // Not the stop's own message: healthz is public, and that one may name the server's paths.
    if (this.fatal) return `log stopped (${this.fatal.code}): a restart recovers it; the server's log says why`;
    if (this.closed) return this.space.reason;
    return this.space.recheck({ entries: this.pending.length, bytes: this.queuedBytes });
  }

  /**
   * Queues entries (already checked by the caller), in order. Unless the log allows
   * duplicates, an entry already in the log answers at once with the first copy's index, and
   * repeats of an entry still in flight (even in the same call) share its answer.
   */
  appendMany(entries: readonly Uint8Array[]): Promise<AppendResult>[] {
    const answers = this.queue(entries);
    return entries.map((_, i) => answers.of(i));
  }

  /** appendMany() with one promise for all the answers, in order: rejects with the first failure. */
  appendAll(entries: readonly Uint8Array[]): Promise<AppendResult[]> {
    return this.queue(entries).all();
  }

  /** Queues entries (see appendMany); their answers go to the Answers returned. */
  private queue(entries: readonly Uint8Array[]): Answers {
    const tenant = this.parts.paths.tenant;
    if (this.fatal) throw this.fatal;
    if (this.closed) throw new TlogError(ErrorCode.unavailable, `log ${tenant} is closing`);
    if (this.pendingCount + entries.length > this.parts.settings.maxPending) {
      throw new TlogError(ErrorCode.unavailable, `log ${tenant} has ${this.pendingCount} entries pending: try again shortly`);
    }
    this.space.admit(entries, { entries: this.pending.length, bytes: this.queuedBytes });
    const trace = this.parts.tracer?.current();
    const answers = new Answers(entries.length);
    for (let slot = 0; slot < entries.length; slot++) {
      const entry = entries[slot]!;
      // The digest as a latin1 string is the in-flight map's key (quicker to make and to hash
      // than base64), and its bytes the leaf hash.
      const digest = leafHashLatin1(entry);
      const h = Buffer.from(digest, 'latin1');
      let key = '';
      if (!this.allowDuplicates) {
        key = digest;
        const first = this.inflight.get(key);
        if (first) {
          // Field by field: a batch's result builds its proof in a getter, which a spread would drop.
          first.answers.of(first.slot).then(
            (r) =>
              answers.settle(slot, {
                index: r.index,
                leafHash: r.leafHash,
                treeSize: r.treeSize,
                checkpoint: r.checkpoint,
                proof: r.proof,
                duplicate: true,
              }),
            (e: unknown) => answers.fail(slot, e),
          );
          continue;
        }
        const index = this.parts.index.lookup(h);
        if (index >= 0) {
          this.duplicateOf(index, h).then(
            (r) => answers.settle(slot, r),
            (e: unknown) => answers.fail(slot, e),
          );
          continue;
        }
      }
      // Copy: the caller may reuse its buffer before the batch is written. (Not slice(): on a
      // Buffer that is a view.)
      const copy = new Uint8Array(entry.length);
      copy.set(entry);
      const p: Pending = { entry: copy, leafHash: h, key, trace, answers, slot };
      if (key) this.inflight.set(key, p);
      this.pending.push(p);
      this.queuedBytes += copy.length;
    }
    this.kick();
    return answers;
  }

  /** The answer for an entry already committed at `index`, in the answered checkpoint. */
  private async duplicateOf(index: number, h: Uint8Array): Promise<AppendResult> {
    const cp = this.#answered;
    return { index, leafHash: h, treeSize: cp.treeSize, checkpoint: cp.note, proof: await this.parts.prove(index, cp.treeSize), duplicate: true };
  }

  /** Refuses new appends and resolves once the batches in flight are done. */
  async close(): Promise<void> {
    this.closed = true;
    this.gathered?.done();
    while (this.integrating) await this.integrating;
  }

  /**
   * After a batch of `answered` entries is answered: the next batch may wait (batchLingerMs at
   * most) until as many entries are pending as were pending then plus those answered, the
   * clients of closed-loop load coming back (settings.ts, DEFAULT_BATCH_LINGER_MS, says why).
   */
  private expectReturns(answered: number): void {
    const linger = this.parts.settings.batchLingerMs;
    if (linger === 0) return;
    // More than a batch holds is never worth a wait.
    this.returns = { want: Math.min(this.pending.length + answered, this.parts.settings.maxBatch), until: performance.now() + linger };
  }

  /**
   * Before a batch is cut while others are in flight: waits until as many entries are pending as
   * they hold, or until the oldest of them (`oldest`) is done; returns whether it is. Cut at
   * once, the next batch would take the few clients back early and split closed-loop load into
   * groups (DEFAULT_BATCH_LINGER_MS).
   */
  private gatherBehind(oldest: Promise<void>): Promise<boolean> | null {
    const want = Math.min(this.inFlightEntries, this.parts.settings.maxBatch);
    if (this.parts.settings.batchLingerMs === 0 || this.closed || this.pending.length >= want) return null;
    let over = false;
    const ended = oldest.then(
      () => (over = true),
      () => (over = true),
    );
    return this.waitForPending(want, null, ended).then(() => over);
  }

  /** Waits, once per answered batch, for the entries expectReturns() expects, or its deadline; null: no wait. */
  private gather(): Promise<void> | null {
    const r = this.returns;
    this.returns = null;
    if (r === null || this.pending.length >= r.want) return null;
    const wait = r.until - performance.now();
    if (wait <= 0 || this.closed) return null;
    return this.waitForPending(r.want, wait);
  }

  /** Resolves once `want` entries are pending (kick() looks), on close(), after `ms` or once `or` settles. */
  private waitForPending(want: number, ms: number | null, or?: Promise<unknown>): Promise<void> {
    return new Promise<void>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const slot = {
        want,
        done: () => {
          if (this.gathered === slot) this.gathered = null;
          clearTimeout(timer);
          resolve();
        },
      };
      this.gathered = slot;
      if (ms !== null) timer = setTimeout(slot.done, ms);
      void or?.then(slot.done);
    });
  }

  private kick(): void {
    // A wait for entries ends once they are pending.
    const g = this.gathered;
    if (g !== null && this.pending.length >= g.want) g.done();
    if (this.integrating || this.pending.length === 0) return;
    this.integrating = this.runBatches().finally(() => {
      this.integrating = null;
      this.kick();
    });
  }

  /**
   * The sequencer loop, a pipeline of pipelineDepth batches: while batch k's files are written,
   * signed and committed, the next ones are hashed and their writes started.
   */
  private async runBatches(): Promise<void> {
    let previous: Promise<void> | null = null;
    /** With a sink: the previous batch's journal record durable locally and in the store (see finish). */
    let previousJournaled: Promise<void> | null = null;
    const inFlight: Promise<void>[] = [];
    while (this.pending.length > 0 && !this.fatal && !this.broken) {
      // Awaited only when there is something to wait for: otherwise the batch is cut now, with
      // what kick() was called for.
      const behind = inFlight.length > 0 ? this.gatherBehind(inFlight[0]!) : null;
      if (behind !== null && (await behind)) inFlight.shift();
      const returns = this.gather();
      if (returns !== null) await returns;
      if (this.fatal || this.broken) break;
      const batch = this.pending.splice(0, this.parts.settings.maxBatch);
      let payload = 0;
      for (const p of batch) payload += p.entry.length;
      this.queuedBytes -= payload;
      // A batch starts only when its bytes and the reserve are free: it never meets a full
      // disk half-way (disk-space.ts). Nothing is written or signed for a refused batch.
      const room = this.space.roomFor(batch.length, payload);
      if (room.refusal) {
        this.space.block(room.refusal, false);
        this.failBatch(batch, this.space.error(room.refusal));
        continue;
      }
      const release = this.space.claim(room.need);
      this.inFlightEntries += batch.length;
      let prepared: PreparedBatch;
      const tracer = this.parts.tracer;
      const trace = tracer
        ? tracer.startBatch(
            this.parts.paths.tenant,
            performance.now(),
            batch.map((p) => p.trace),
          )
        : null;
      try {
        prepared = this.prepare(batch, trace);
      } catch (e) {
        trace?.end({ start: this.edge.size, end: this.edge.size, entries: batch.length }, e);
        this.broken = true;
        this.inFlightEntries -= batch.length;
        release();
        this.failBatch(batch, e);
        break;
      }
      let journaled!: () => void;
      const thisJournaled = new Promise<void>((r) => (journaled = r));
      const finished: Promise<void> = this.finish(prepared, previous, previousJournaled, journaled).finally(() => {
        journaled();
        this.inFlightEntries -= batch.length;
        release();
      });
      inFlight.push(finished);
      previous = finished;
      previousJournaled = thisJournaled;
      // At most `pipelineDepth` batches in flight: wait for the oldest before preparing another.
      if (inFlight.length >= this.parts.settings.pipelineDepth) await inFlight.shift();
      else if (this.pending.length === 0) await prepared.written.catch(() => {});
    }
    if (previous) await previous;
    if (this.broken && !this.fatal) await this.recoverToCommitPoint();
    if (this.fatal) for (const p of this.pending.splice(0)) p.answers.fail(p.slot, this.fatal);
  }

  /** Hashes a batch into the tree and starts writing its bundles and tiles. Synchronous but for the writes. */
  private prepare(batch: Pending[], trace: BatchTrace | null): PreparedBatch {
    const startedAt = performance.now();
    const ext = this.edge.extend(
      batch.map((p) => p.entry),
      batch.map((p) => p.leafHash),
    );
    // c2sp.org/tlog-tiles: every tile a published checkpoint implies must exist before it is
    // published (tessera#1057), so they are written first. Deferred: renamed into place now,
    // fsynced by the next flush; until then the journal record can redo them.
    // Signed only once its tiles are in place: a batch that cannot write them fails before any
    // signature over its root exists, so no other root is ever signed at its size. The
    // signature (ML-DSA-44 is ~6 ms of CPU) is made on the signing worker, off this thread.
    return new PreparedBatch(
      batch,
      ext,
      startedAt,
      () => this.parts.store.writeTiles(ext.files),
      (size, root) => signTreeAsync(this.parts.origin, size, root, this.parts.keys),
      trace,
    );
  }

  /** Waits for the batch's files and the previous batch, then journals, commits, publishes and answers. */
  private async finish(b: PreparedBatch, previous: Promise<void> | null, previousJournaled: Promise<void> | null, journaled: () => void): Promise<void> {
    const journal = this.parts.journal!;
    const partials = this.parts.partials!;
    const closed = () => this.closed;
    const sink = this.parts.sink;
    const abandoned = () => new TlogError(ErrorCode.unavailable, `batch at ${b.start} abandoned: an earlier batch failed`);
    try {
      await b.written;
      // With a sink, a batch journals (locally, then in the store) as soon as the previous one
      // has, not once it committed: the store's round trips of consecutive batches overlap (the
      // journal object of one while the tiles and checkpoint of the one before are written).
      // Records still chain in order; the commit, publish and answer stay in order below.
      if (sink) {
        if (previousJournaled) await previousJournaled;
      } else if (previous) await previous;
      if (this.broken || this.fatal) throw abandoned();
      // The batch becomes durable here, in one record: its entries and signed note. Records
      // are appended in batch order (after the previous batch committed), so they chain.
      // From here on the batch is signed: a full disk makes it wait, never fail (disk-space.ts).
      const j0 = performance.now();
      const record = formatBatchRecord(b.start, b.batch, b.note);
      const local = this.space.untilWritten('the journal record', () => journal.append(record, b.end, b.start), closed);
      if (sink) {
        // A log whose truth is an object store: the batch counts once the store has it. Its
        // local record (this node's cache of the journal) is written meanwhile, not first: the
        // store's round trips are the batch's cost, and the store may take the record from here
        // on, so the batch may count from here on too (a failure now stops the log).
        b.stage = 'journaled';
        // If the sink fails before calling `journaled`, the next batch waits for this one to finish (and sees broken).
        const stored = sink.batch({ start: b.start, record, files: b.ext.files, note: b.note }, journaled);
        const [inStore, onDisk] = await Promise.allSettled([stored, local]);
        // The store's refusal first: its code (conflict, unavailable) says why the log stops.
        if (inStore.status === 'rejected') throw inStore.reason;
        if (onDisk.status === 'rejected') throw onDisk.reason;
        // The first record of an empty journal: replay would start from its tree, whose partials stay.
        partials.journalStartAt(journal.startMark());
        if (previous) await previous;
        if (this.broken || this.fatal) throw abandoned();
      } else {
        await local;
        partials.journalStartAt(journal.startMark());
        b.stage = 'journaled';
      }
      const j1 = performance.now();
      b.writeSeconds += (j1 - j0) / 1000;
      b.trace?.stage('journal', j0, j1);
      const cp = commitPointOfSigned(b.ext.end, b.ext.rootHash, b.note);
      // The commit point moves before publishing: from here on the batch is part of the log.
      // Not synced here: the journal record is the durability point (replay adopts records
      // beyond a commit slot a power loss took back); the flush syncs the slot, off this thread,
      // before it lets the journal go (flush.ts).
      const c0 = performance.now();
      this.parts.index.advanceCommitPoint({ treeSize: cp.treeSize, rootHash: cp.rootHash, checkpointHash: cp.noteHash });
      const p0 = performance.now();
      const commitSeconds = (p0 - c0) / 1000;
      b.trace?.stage('commit', c0, p0);
      b.stage = 'committed';
      this.#committed = cp;
      await this.space.untilWritten('the checkpoint and its history copy', () => this.parts.publisher.committed(cp), closed);
      const i0 = performance.now();
      b.trace?.stage('publish', p0, i0);
      this.#answered = cp;
      // The partials this batch superseded go now (unless a checkpoint still keeps them).
      partials.committed(cp.treeSize, b.ext.files, b.entryBytes, this.parts.publisher.mode === 'each');
      // Indexed only once answerable: until then a repeat of one of these entries finds it in
      // flight and shares its answer, and a lookup never finds an index beyond the checkpoint
      // duplicates are answered with. (Inserting again after a failed growth is idempotent.)
      await this.space.untilWritten('the index', () => this.indexBatch(b), closed);
      b.trace?.stage('index', i0, performance.now());
      b.answer();
      this.expectReturns(b.batch.length);
      b.trace?.end({ start: b.start, end: b.end, entries: b.batch.length });
      this.parts.store.committed(b.start, b.ext.files, b.ext.completed.values());
      this.lastIntegrationAt = Date.now();
      this.parts.onBatch?.({
        tenant: this.parts.paths.tenant,
        entries: b.batch.length,
        seconds: (performance.now() - b.startedAt) / 1000,
        writeSeconds: b.writeSeconds,
        commitSeconds,
      });
      if (!this.closed) this.parts.flushSoon();
    } catch (e) {
      b.trace?.end({ start: b.start, end: b.end, entries: b.batch.length }, e);
      this.failed(b, e);
      this.broken = true;
    }
  }

  /**
   * The sink failed on its own (writing what it derives from batches it already took): the log
   * stops; what is queued fails with the reason, batches in flight are abandoned.
   */
  private stop(e: TlogError): void {
    if (this.fatal) return;
    const tenant = this.parts.paths.tenant;
    this.fatal = new TlogError(e.code, `log ${tenant} stopped: ${e.message}`, { cause: e });
    this.parts.logger.error({ tenant, err: e.message }, 'log stopped');
    this.failBatch(this.pending.splice(0), this.fatal);
    this.queuedBytes = 0;
  }

  /** A batch failed: the log stops, or the batch is refused (disk full) or abandoned (stop-rule.ts). */
  private failed(b: PreparedBatch, e: unknown): void {
    const tenant = this.parts.paths.tenant;
    if (stopsTheLog(e, mayCount(b.stage, this.parts.journal!.mustRepeat))) {
      // This process cannot continue safely. Stop loudly; a restart recovers from the journal
      // and the commit point.
      const err = this.batchError(b.start, e);
      this.fatal ??= new TlogError(err.code === ErrorCode.diskFull ? ErrorCode.io : err.code, `log ${tenant} stopped: ${err.message}`, { cause: err });
      this.parts.logger.error({ tenant, err: err.message }, 'log stopped');
      this.failBatch(b.batch, this.fatal);
    } else if (isDiskFull(e)) {
      // Refused before its signature counted: nothing of it stays (recovery deletes its files).
      const reason = `disk full (${diskFullErrno(e) ?? 'ENOSPC'}) writing a batch`;
      this.parts.logger.warn({ tenant, err: (e as Error).message }, 'batch refused: disk full');
      this.space.block(reason, false);
      this.failBatch(b.batch, this.space.error(reason, e));
    } else {
      // Abandoned behind a failed batch: tell its callers why, when the disk was the reason.
      const reason = this.space.reason;
      this.failBatch(b.batch, reason !== null ? this.space.error(reason, e) : e);
    }
  }

  private batchError(start: number, e: unknown): TlogError {
    return isTlogError(e) ? e : new TlogError(ErrorCode.io, `integrate batch at ${start}: ${(e as Error).message}`, { cause: e });
  }

  private failBatch(batch: readonly Pending[], e: unknown): void {
    const err = this.batchError(-1, e);
    for (const p of batch) {
      if (p.key && this.inflight.get(p.key) === p) this.inflight.delete(p.key);
      p.answers.fail(p.slot, err);
    }
  }

  /** Adds a committed batch's leaves to the dedup index; its entries stop being "in flight". */
  private indexBatch(b: PreparedBatch): void {
    const hashes = Buffer.allocUnsafe(b.batch.length * 32);
    b.batch.forEach((p, i) => hashes.set(p.leafHash, i * 32));
    // The index keeps the smallest index of a hash, so replays and duplicates are harmless.
    this.parts.index.insertMany(hashes, b.start);
    for (const p of b.batch) if (p.key && this.inflight.get(p.key) === p) this.inflight.delete(p.key);
  }

  /** After a failed batch nothing past the commit point counts: drop it from disk and memory. */
  private async recoverToCommitPoint(): Promise<void> {
    const { paths, logger, store, settings } = this.parts;
    const size = this.#committed.treeSize;
    logger.warn({ tenant: paths.tenant, treeSize: size }, 'batch failed, recovering to the commit point');
    try {
      await store.discardBeyond(size, settings.recoverySpan);
      await discardNotesBeyond(paths.stateDir, size);
      this.edge = Edge.loadCommitted(store.reader, size, this.#committed.rootHash, paths.tenant);
      this.broken = false;
    } catch (e) {
      this.fatal = new TlogError(ErrorCode.corrupt, `log ${paths.tenant} stopped: recovery after a failed batch failed: ${(e as Error).message}`);
    }
  }
}
