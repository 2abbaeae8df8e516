/**
 * Growing the dedup table without stalling the writer.
 *
 * Doubling a table means re-inserting every entry: 5 s at a million entries, more than an hour
 * at a billion, far too long to hold the event loop. So the bigger table is built beside the
 * current one, a slice at a time, while the current one goes on serving:
 *
 *   allocating  `<index>.grow.tmp` is created and its blocks allocated on a thread
 *               (posix_fallocate of gigabytes takes a while, see allocateFile);
 *   copying     the current table's buckets are copied into it in order, a bounded slice at a
 *               time: in idle time between events, and as a share of each insert batch when
 *               idle time is short (see owedBuckets);
 *   syncing     the new file is fdatasynced on a thread;
 *   synced      HotIndex swaps it in: the current commit point goes into its commit slot
 *               (msynced), the writer lock is taken on it and it is renamed over the index.
 *
 * The current table stays complete and authoritative until that rename: every lookup and every
 * insert goes to it. An insert landing in a bucket already copied is also made in the new table
 * (mirror()); one landing further on is copied when the cursor gets there. So when the cursor
 * reaches the end the new table holds every entry, and keeps holding every entry after that.
 *
 * Crash safety is therefore the current file's: until the rename the index path names the old,
 * complete table, and the temporary file is deleted by the next writer to open (a crash costs
 * the copying done, never an entry). The new file is durable before its name replaces the old
 * one, with a durable watermark no higher than what the fdatasync covered.
 *
 * Deadlines keep the current table from filling up when idle time is short: copying must be
 * done when the entry count reaches `copyBy`, and the swap happens by `swapBy` at the latest,
 * waiting for the disk if it must. With the default maxLoad 0.7 that is 80% and 85% load, under
 * a hard cap of 90% (linear probing stays short there: about 3 probes for a hit, 13-23 for a
 * miss, within two or three 512-byte buckets).
 */
import { existsSync } from 'node:fs';
import { allocateFile, type MappedFile, type MappedFileBackend } from '../../native/index.js';
import { createIndexFile, removeStale } from './file.js';
import { BUCKET_SIZE, fileSizeFor, SLOTS_PER_BUCKET, TABLE_OFFSET, type StateRecord } from './layout.js';
import { DedupTable } from './table.js';

export type GrowthPhase = 'allocating' | 'copying' | 'syncing' | 'synced';

/** Buckets copied between two looks at the clock in an idle slice (about 0.1 ms of work). */
const SLICE_STEP = 16;
/**
 * Buckets of the current table faulted in ahead of the cursor at a time (1 MiB), with the two
 * 1 MiB stretches of the new table their entries go to. See #prefaultAhead.
 */
const PREFAULT_BUCKETS = 2048;

/** What an in-progress growth needs from its HotIndex. */
export interface GrowthOwner {
  /**
   * Called when the background work moved on (allocated: copying can start; synced: the swap
   * can happen) or failed (lastError is set; the blocking path retries at the deadlines).
   */
  readonly onProgress: (g: Growth) => void;
}

export interface GrowthPlan {
  /** Path of the new file (`<index>.grow.tmp`). */
  readonly path: string;
  readonly from: DedupTable;
  readonly bucketCount: number;
  readonly entryCount: number;
  readonly maxLoad: number;
  readonly createdAtMs: number;
  /** The state record the new file starts with (replaced at the swap). */
  readonly draft: StateRecord;
  readonly backend: MappedFileBackend;
}

/**
 * The entry counts at which copying must be done and the swap must happen, for a table of
 * `capacity` slots whose growth starts at `start` entries: halfway and three quarters of the
 * way from the start to the hard cap (maxLoad + two thirds of what is left to 100%), and never
 * a full table.
 */
export function growthDeadlines(capacity: number, maxLoad: number, start: number): { copyBy: number; swapBy: number } {
  const cap = Math.min(capacity - 1, Math.floor(capacity * (maxLoad + ((1 - maxLoad) * 2) / 3)));
  const room = Math.max(0, cap - start);
  const copyBy = Math.min(cap, start + Math.max(1, Math.floor(room / 2)));
  const swapBy = Math.min(cap, Math.max(copyBy, start + Math.floor((room * 3) / 4)));
  return { copyBy, swapBy };
}

export class Growth {
  readonly path: string;
  readonly from: DedupTable;
  readonly bucketCount: number;
  readonly startEntries: number;
  readonly copyBy: number;
  readonly swapBy: number;
  #plan: GrowthPlan;
  #owner: GrowthOwner;
  #phase: GrowthPhase = 'allocating';
  #mf: MappedFile | undefined;
  #table: DedupTable | undefined;
  /** Buckets [0, cursor) of the current table are copied. */
  #cursor = 0;
  /** Old buckets [0, prefaulted) (and where they go in the new table) were asked to be faulted in. */
  #prefaulted = 0;
  /** The watermark the last fdatasync covers: leaves [0, indexedSize) are in the new file on disk. */
  #synced: { indexedSize: number; entryCount: number } | undefined;
  #syncStarted = false;
  #abandoned = false;
  /** The last failure of the background work, retried (and thrown) by the blocking path. */
  lastError: unknown;

  private constructor(plan: GrowthPlan, owner: GrowthOwner) {
    this.#plan = plan;
    this.#owner = owner;
    this.path = plan.path;
    this.from = plan.from;
    this.bucketCount = plan.bucketCount;
    this.startEntries = plan.entryCount;
    ({ copyBy: this.copyBy, swapBy: this.swapBy } = growthDeadlines(plan.from.capacity, plan.maxLoad, plan.entryCount));
  }

  /** Starts a growth: creates the new file and allocates its blocks on a thread. */
  static start(plan: GrowthPlan, owner: GrowthOwner): Growth {
    const g = new Growth(plan, owner);
    removeStale(plan.path);
    allocateFile(plan.path, fileSizeFor(plan.bucketCount), { backend: plan.backend }).then(
      () => {
        if (g.#abandoned || g.#phase !== 'allocating') return;
        try {
          g.#map();
        } catch (e) {
          g.lastError = e;
        }
        owner.onProgress(g);
      },
      (e: unknown) => {
        g.lastError = e;
        owner.onProgress(g);
      },
    );
    return g;
  }

  get phase(): GrowthPhase {
    return this.#phase;
  }
  get cursor(): number {
    return this.#cursor;
  }
  get copied(): boolean {
    return this.#cursor === this.from.bucketCount;
  }
  /** The new file's table (once allocated). */
  get table(): DedupTable | undefined {
    return this.#table;
  }
  get mf(): MappedFile | undefined {
    return this.#mf;
  }
  /** What the new file's fdatasync covered (once synced). */
  get synced(): { indexedSize: number; entryCount: number } | undefined {
    return this.#synced;
  }

  #map(): void {
    const p = this.#plan;
    // Normally allocateFile made the file; if even its creation failed, creating it here says why.
    this.#mf = createIndexFile(p.path, p.bucketCount, p.createdAtMs, p.draft, p.backend, existsSync(p.path));
    this.#table = new DedupTable(this.#mf, p.bucketCount);
    // Inserts land on random pages of the new table too: read-ahead would only waste memory.
    this.#mf.advise('random', TABLE_OFFSET, this.#mf.size - TABLE_OFFSET);
    this.#phase = 'copying';
    this.#prefaultAhead();
  }

  /**
   * Buckets that must be copied by the time the table holds `entries` entries: none during the
   * first quarter of the way to copyBy (the allocation and idle time get a head start), then in
   * proportion, all of them at copyBy.
   */
  owedBuckets(entries: number): number {
    const span = this.copyBy - this.startEntries;
    const grace = Math.floor(span / 4);
    const done = entries - this.startEntries - grace;
    if (done <= 0) return 0;
    if (done >= span - grace) return this.from.bucketCount;
    return Math.ceil((this.from.bucketCount * done) / (span - grace));
  }

  /** The insert of hash -> index just put it in bucket `fromBucket` of the current table. */
  mirror(fromBucket: number, key: Uint8Array, keyOffset: number, index: number): void {
    // Buckets at or past the cursor are copied when it gets there.
    if (fromBucket < this.#cursor) this.#table!.insert(key, keyOffset, index);
  }

  /** Copies buckets up to `until` (allocating the file first if that is still on its way). */
  copyTo(until: number): void {
    if (this.#phase === 'allocating') this.#map();
    const end = Math.min(until, this.from.bucketCount);
    while (this.#cursor < end) {
      const next = Math.min(end, this.#cursor + PREFAULT_BUCKETS);
      this.#prefaultAhead();
      this.from.copyInto(this.#table!, this.#cursor, next);
      this.#cursor = next;
    }
  }

  /** Copies for about `ms` milliseconds (at least SLICE_STEP buckets). Returns whether copying is done. */
  copyFor(ms: number): boolean {
    const stop = performance.now() + ms;
    do this.copyTo(this.#cursor + SLICE_STEP);
    while (!this.copied && performance.now() < stop);
    return this.copied;
  }

  /**
   * Keeps two windows ahead of the cursor faulted in on a thread: the current table's buckets
   * (read in order here, while the mapping is advised `random` for lookups) and the two
   * stretches of the new table their entries go to (an entry's new home bucket is its old one,
   * or that plus the old bucket count). Copying then touches pages that are already mapped
   * instead of taking a fault per 4 KiB page on this thread (about 65,000 for a 256 MiB table;
   * each can wait for the disk or the filesystem's journal when the machine is busy).
   */
  #prefaultAhead(): void {
    const buckets = this.from.bucketCount;
    while (this.#prefaulted < Math.min(buckets, this.#cursor + 2 * PREFAULT_BUCKETS)) {
      const from = this.#prefaulted;
      const n = Math.min(buckets, from + PREFAULT_BUCKETS) - from;
      const hint = (p: Promise<void>): void => void p.catch(() => {});
      hint(this.from.mf.prefault(TABLE_OFFSET + from * BUCKET_SIZE, n * BUCKET_SIZE, false));
      hint(this.#mf!.prefault(TABLE_OFFSET + from * BUCKET_SIZE, n * BUCKET_SIZE, true));
      hint(this.#mf!.prefault(TABLE_OFFSET + (buckets + from) * BUCKET_SIZE, n * BUCKET_SIZE, true));
      this.#prefaulted = from + n;
    }
  }

  /**
   * Copying is done: makes the new file durable on a thread. `indexedSize` and `entryCount` are
   * the writer's now; every leaf below indexedSize is in the new table, so the fdatasync covers
   * them. A failure is kept in lastError for the blocking path (finishNow) to retry.
   */
  startSync(indexedSize: number, entryCount: number): void {
    if (this.#syncStarted || !this.copied) return;
    this.#syncStarted = true;
    this.#phase = 'syncing';
    const covers = { indexedSize, entryCount };
    this.#mf!.syncAsync().then(
      () => {
        if (this.#abandoned || this.#phase !== 'syncing') return;
        this.#synced = covers;
        this.#phase = 'synced';
        this.#owner.onProgress(this);
      },
      (e: unknown) => {
        this.lastError = e;
        this.#owner.onProgress(this);
      },
    );
  }

  /**
   * The blocking path, for when a deadline is reached (or idle time never came): copies what
   * is left and syncs the new file on this thread. Throws what the disk says.
   */
  finishNow(indexedSize: number, entryCount: number): void {
    if (this.#phase === 'synced') return;
    this.copyTo(this.from.bucketCount);
    this.#mf!.sync();
    this.#synced = { indexedSize, entryCount };
    this.#phase = 'synced';
  }

  /** Drops the new file (close, crash recovery, or a failure). Idempotent. */
  abandon(): void {
    if (this.#abandoned) return;
    this.#abandoned = true;
    try {
      this.#mf?.close();
    } finally {
      removeStale(this.path);
    }
  }

  /** The swap took the new file: stop tracking it. */
  adopted(): void {
    this.#abandoned = true;
  }

  /** Slots of the new table. */
  get capacity(): number {
    return this.bucketCount * SLOTS_PER_BUCKET;
  }
}
