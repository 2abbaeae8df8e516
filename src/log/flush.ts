/**
 * The flush: makes the files of committed batches durable in bulk, then lets the journal go.
 *
 * A batch is durable through its journal record; its tiles, bundles and checkpoint copies are
 * renamed into place without fsync (tile-store). About once a second while batches come in,
 * and on close, everything written so far is fsynced, after which the journal segments that
 * only hold batches now covered are deleted. A crash before that is repaired from the journal
 * on open (replay.ts).
 *
 * The commit slot of the hot index is written per batch without a sync (sequencer.ts); the
 * flush makes it durable, on a thread, before any segment goes: after a power loss the slot may
 * come back older than the journal's last record (replay adopts those records), but never older
 * than where the journal starts.
 */
import { TlogError, ErrorCode } from '../errors.js';
import type { HotIndex } from '../hot-index/index.js';
import type { Logger } from '../logger.js';
import type { Journal } from '../storage/journal.js';
import type { PartialTiles } from '../tile-store/partials.js';
import type { TileStore } from '../tile-store/tile-store.js';
import { notePath, pruneNotes, type CommitPoint } from './commit-point.js';

export class Flusher {
  /** The flush running or last run (flushes run one at a time), and the timer that starts the next. */
  private flushing: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    private readonly store: TileStore,
    private readonly journal: Journal,
    private readonly partials: PartialTiles,
    private readonly stateDir: string,
    private readonly intervalMs: number,
    /** The answered checkpoint (commit-point.ts): every batch up to it has all its files in place. */
    private readonly answered: () => CommitPoint,
    private readonly logger: Logger,
    private readonly tenant: string,
    /** The hot index whose commit slot the flush syncs before the journal goes. */
    private readonly index: Pick<HotIndex, 'syncCommitPoint'>,
  ) {}

  /** Flushes within intervalMs, unless a flush is due already. */
  schedule(): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.flush().catch((e) =>
        this.logger.error({ tenant: this.tenant, err: (e as Error).message }, 'flush failed; the journal keeps the batches until a flush succeeds'),
      );
    }, this.intervalMs);
    this.timer.unref();
  }

  /**
   * Makes every file written so far durable (tiles, bundles, notes, checkpoint copies), then
   * deletes the journal segments that only hold batches now covered.
   */
  flush(): Promise<void> {
    const run = (this.flushing ?? Promise.resolve()).then(async () => {
      // Batches up to the answered size have all their files (their publish included) in place,
      // so the writer's queue holds them all now.
      const cp = this.answered();
      // On a thread, alongside the files: the commit point as of now (at least cp) on disk.
      const slot = this.index.syncCommitPoint();
      slot.catch(() => {}); // awaited below; not an unhandled rejection meanwhile
      // The commit point's note, kept privately for open (the journal covers newer ones; replay
      // writes the newest from it after a crash). One per flush, not one per batch.
      await this.store.files.writeDeferred([{ path: notePath(this.stateDir, cp.treeSize), data: Buffer.from(cp.note, 'utf8'), kind: 'replace', mode: 0o600 }]);
      await this.store.files.flush();
      // Partials collected so far stay collected after a crash: the journal that goes next is
      // what tells a restart where to look for leftovers (PartialTiles.open).
      await this.partials.syncDeletions();
      // Replay will start where the oldest segment left starts: that tree's partials must be
      // durable before the segments before it go (they may have been collected meanwhile).
      const next = this.journal.startMarkAfterRelease(cp.treeSize);
      if (next !== null && next !== this.journal.startMark()) {
        await this.partials.journalWillStartAt(next);
        await this.store.files.flush();
      }
      // Why: replay starts at the journal's first record and must find the commit slot no
      // further back than that (replay.ts refuses a journal that starts beyond it).
      const durable = await slot;
      if (durable.treeSize < cp.treeSize) {
        throw new TlogError(ErrorCode.io, `the commit point on disk (size ${durable.treeSize}) is behind the answered size ${cp.treeSize}`);
      }
      await this.journal.release(cp.treeSize);
      this.partials.journalStartAt(this.journal.startMark());
      await this.partials.syncDeletions();
      await pruneNotes(this.stateDir, cp.treeSize);
    });
    this.flushing = run.catch(() => {});
    return run;
  }

  /**
   * The last flush, once the last batch is done: then no journal segment is needed any more,
   * unless the log stopped (a restart recovers from the journal). A flush that fails (a full
   * disk) leaves the journal to redo the batches on open.
   */
  async close(stopped: boolean): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    try {
      await this.flush();
      // Everything is durable in its own files: no segment is needed any more.
      if (!stopped) await this.journal.release(this.answered().treeSize, true);
      this.partials.journalStartAt(this.journal.startMark());
    } finally {
      await this.journal.close();
      await this.partials.idle();
    }
  }
}
