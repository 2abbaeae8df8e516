/**
 * The hot index of one log: its commit point and its dedup table (leafHash -> leafIndex), in
 * one mapped file in the log's private state directory.
 *
 * Crash model.
 * - SIGKILL (or any death of the process): every store into the mapping is already in the
 *   page cache and survives. On open, the live record (stamped with the kernel's boot id)
 *   says how far the table got, so the engine replays almost nothing.
 * - Power loss: only what was synced survives. writeCommitPoint() syncs the commit point
 *   before it returns; advanceCommitPoint() only writes it, and syncCommitPoint() makes it
 *   durable later, on a thread (the engine's journal record is its batch's durability point, so
 *   the slot need not reach the disk per batch: replay adopts journaled batches beyond it). The
 *   table is synced by checkpointTable() (on close; every `checkpointEvery` leaves on a thread,
 *   see insertMany), and only then is the durable watermark `indexedSize` moved, in the same
 *   record as the commit point. After a reboot the live record's boot id no longer matches, so the
 *   durable watermark is used.
 * Either way, on open the table is known to hold every leaf in [0, indexedSize); the engine
 * must replay leaves [indexedSize, commitPoint.treeSize) through insertMany(). Entries beyond
 * the watermark that did reach the disk are harmless: re-inserting an identical
 * (hash, index) is idempotent, and the smallest index always wins.
 *
 * Contract with the engine: insert a leaf only once the commit point holds a tree that contains
 * it (insertMany throws otherwise), and move the commit point only to a tree that is durable
 * (written by writeCommitPoint, or journaled by the engine before advanceCommitPoint). Then,
 * whatever the crash, the table never maps a hash to an index the log does not have.
 *
 * Growth: when the table reaches maxLoad, a doubled table is built beside it in
 * `<path>.grow.tmp`, in slices of idle time and in line with inserts, while this one keeps
 * serving every lookup and insert; once complete and synced it is renamed over the index
 * (growth.ts). Until that rename the index file is the old, complete table, so the crash model
 * above holds throughout, and a crash mid-growth only loses the copying done.
 *
 * One writer per file (an exclusive lock, failing at once); any number of read-only handles,
 * which take no lock and see the file they opened (reopen to follow a writer's growth).
 */
import { existsSync, renameSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  bootId,
  fsyncDirectory,
  fsyncDirectoryAsync,
  lockFileExclusive,
  LOCK_HELD,
  NativeError,
  openMappedFile,
  type FileLock,
  type LockKind,
  type MappedFile,
  type MappedFileBackend,
} from '../../native/index.js';
import { IndexError } from './errors.js';
import { createEmptyIndex, bucketsFor, loadIndexFile, missing, readState, removeStale, stateSlotOffset } from './file.js';
import { Growth, type GrowthPhase } from './growth.js';
import {
  encodeLiveRecord,
  encodeStateRecord,
  fileSizeFor,
  HASH_SIZE,
  LIVE_RECORD_OFFSET,
  MAX_BUCKET_COUNT,
  sameBytes,
  SLOTS_PER_BUCKET,
  STATE_OFFSET,
  STATE_SIZE,
  TABLE_OFFSET,
  type StateRecord,
} from './layout.js';
import { DedupTable, InsertResult } from './table.js';

export interface CommitPoint {
  treeSize: number;
  rootHash: Uint8Array;
  /** SHA-256 of the signed checkpoint note bytes. */
  checkpointHash: Uint8Array;
  /** Sequence number of the write; 0 for a fresh index that was never committed. */
  seq: number;
}

export type IndexMode = 'writer' | 'readOnly';

export interface OpenIndexOptions {
  /** Default writer. */
  mode?: IndexMode;
  /** Writer: create an empty index when the file is missing (default true). */
  create?: boolean;
  /** Entries a new file is sized for before its first growth (default 100,000). */
  initialCapacity?: number;
  /** Grow (double) when entries would exceed capacity * maxLoad (default 0.7). */
  maxLoad?: number;
  /** Checkpoint the table (on a thread) every time this many leaves were indexed since the last one (default 2^20; 0: only on close). */
  checkpointEvery?: number;
  /**
   * Longest stretch (ms) of table growth work done at once in idle time (default 1; at least
   * 16 buckets are copied each time). See growth.ts: the table grows in the background, a
   * slice per turn of the event loop.
   */
  growthSliceMs?: number;
  backend?: MappedFileBackend;
  lockKind?: LockKind;
  /** Non-fatal conditions (mlock refused). Default console.warn. */
  onWarning?: (message: string) => void;
}

export interface IndexCheck {
  /** Occupied slots found. */
  entries: number;
  capacity: number;
  problems: string[];
  problemCount: number;
}

export interface GrowthProgress {
  phase: GrowthPhase;
  copiedBuckets: number;
  buckets: number;
  /** Slots of the table being built. */
  newCapacity: number;
  /** Entry count by which every bucket is copied. */
  copyBy: number;
  /** Entry count by which the bigger table is in use (the swap waits for the disk if it must). */
  swapBy: number;
}

const DEFAULT_INITIAL_CAPACITY = 100_000;
const DEFAULT_MAX_LOAD = 0.7;
const DEFAULT_CHECKPOINT_EVERY = 1 << 20;
const DEFAULT_GROWTH_SLICE_MS = 1;
/** The fewest entries a new file is sized for (a few dozen KiB). */
const MIN_INITIAL_CAPACITY = 1024;

/**
 * The initial capacity for a new index on a filesystem with `free` bytes: the default (100,000
 * entries, an 8 MiB file) when the file takes at most a 32nd of them, else the largest capacity
 * whose file does (at least MIN_INITIAL_CAPACITY). A small disk (20 MiB) then gets a file of a
 * few hundred KiB that grows with the log, instead of 8 MiB up front.
 */
export function initialCapacityFor(free: number, maxLoad = DEFAULT_MAX_LOAD): number {
  let buckets = bucketsFor(DEFAULT_INITIAL_CAPACITY, maxLoad);
  while (buckets > 1 && fileSizeFor(buckets) > free / 32) buckets /= 2;
  const capacity = Math.floor(buckets * SLOTS_PER_BUCKET * maxLoad);
  return Math.max(MIN_INITIAL_CAPACITY, Math.min(DEFAULT_INITIAL_CAPACITY, capacity));
}

export class HotIndex {
  readonly path: string;
  readonly mode: IndexMode;
  #mf: MappedFile;
  #table: DedupTable;
  #lock: FileLock | undefined;
  #createdAtMs: number;
  #state: StateRecord;
  /**
   * The newest state record known to be on disk (synced by this handle); #state may be ahead
   * of it. Undefined until the first sync: what open read may have been in the page cache only
   * (a killed writer's last commit point).
   */
  #durable: StateRecord | undefined;
  /** Leaves [0, indexedSize) are in the table (in memory at least). */
  #indexedSize: number;
  #entryCount: number;
  #maxLoad: number;
  #checkpointEvery: number;
  #backend: MappedFileBackend | undefined;
  #bootId: Uint8Array | undefined;
  #warn: (message: string) => void;
  #closed = false;
  /** The bigger table being built while this one serves (see growth.ts). */
  #growth: Growth | undefined;
  #growthSliceMs: number;
  /** The background checkpoint of the table running, if any (see #checkpointTableInBackground). */
  #checkpointing: Promise<void> | undefined;
  #idle: NodeJS.Immediate | undefined;
  #grown: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  /** A swap renamed the new file in but the directory fsync failed: redo it before the next commit. */
  #renameUnsynced = false;

  private constructor(path: string, mode: IndexMode, mf: MappedFile, lock: FileLock | undefined, opts: OpenIndexOptions) {
    this.path = path;
    this.mode = mode;
    this.#mf = mf;
    this.#lock = lock;
    this.#maxLoad = opts.maxLoad ?? DEFAULT_MAX_LOAD;
    this.#checkpointEvery = opts.checkpointEvery ?? DEFAULT_CHECKPOINT_EVERY;
    this.#growthSliceMs = opts.growthSliceMs ?? DEFAULT_GROWTH_SLICE_MS;
    this.#backend = opts.backend;
    this.#bootId = bootId();
    this.#warn = opts.onWarning ?? ((m) => console.warn(m));
    const loaded = loadIndexFile(mf);
    this.#createdAtMs = loaded.header.createdAtMs;
    this.#table = new DedupTable(mf, loaded.header.bucketCount);
    this.#state = loaded.state;
    this.#indexedSize = loaded.state.indexedSize;
    this.#entryCount = loaded.state.entryCount;
    const live = loaded.live;
    if (
      live !== undefined &&
      this.#bootId !== undefined &&
      sameBytes(live.bootId, this.#bootId) &&
      live.indexedSize >= this.#indexedSize &&
      live.indexedSize <= loaded.state.treeSize &&
      live.entryCount <= this.#table.capacity
    ) {
      // Same boot: the page cache, and so every table store before this record, survived.
      this.#indexedSize = live.indexedSize;
      this.#entryCount = live.entryCount;
    }
    this.#prepareMapping();
  }

  /**
   * Opens the index at path. Writer: creates it if missing (unless create: false), takes the
   * exclusive lock (IndexError `locked` at once if another process has it), removes a crashed
   * writer's temporary files. Both modes validate the file and throw IndexError
   * `index_corrupt` with a reason (bad header CRC, unknown layout version, wrong endianness
   * marker, size mismatch, both commit slots corrupt) or `index_missing`.
   */
  static open(path: string, opts: OpenIndexOptions = {}): HotIndex {
    if (opts.maxLoad !== undefined && !(opts.maxLoad >= 0.1 && opts.maxLoad <= 0.9)) {
      throw new RangeError(`maxLoad ${opts.maxLoad} outside [0.1, 0.9]`);
    }
    const mode = opts.mode ?? 'writer';
    if (mode === 'readOnly') {
      if (!existsSync(path)) throw missing(path);
      const mf = openMappedFile(path, { readOnly: true, backend: opts.backend });
      try {
        return new HotIndex(path, mode, mf, undefined, opts);
      } catch (e) {
        mf.close();
        throw e;
      }
    }
    if (!existsSync(path)) {
      if (opts.create === false) throw missing(path);
      const buckets = bucketsFor(opts.initialCapacity ?? DEFAULT_INITIAL_CAPACITY, opts.maxLoad ?? DEFAULT_MAX_LOAD);
      createEmptyIndex(path, buckets, opts.backend);
    }
    const lock = takeLock(path, opts.lockKind);
    let mf: MappedFile | undefined;
    try {
      removeStale(growPath(path));
      mf = openMappedFile(path, { backend: opts.backend });
      return new HotIndex(path, mode, mf, lock, opts);
    } catch (e) {
      mf?.close();
      lock.release();
      throw e;
    }
  }

  #prepareMapping(): void {
    if (this.mode === 'writer') {
      try {
        // Pin the commit slots: a commit then never waits on a page fault.
        this.#mf.mlock(STATE_OFFSET, STATE_SIZE);
      } catch (e) {
        this.#warn(`index ${this.path}: commit point not pinned: ${(e as Error).message}`);
      }
    }
    // Probes land on random pages: read-ahead would only evict useful pages.
    this.#mf.advise('random', TABLE_OFFSET, this.#mf.size - TABLE_OFFSET);
  }

  /** The current commit point (a copy). */
  get commitPoint(): CommitPoint {
    const s = this.#state;
    return { treeSize: s.treeSize, rootHash: s.rootHash.slice(), checkpointHash: s.checkpointHash.slice(), seq: s.seq };
  }
  /** Leaves [0, indexedSize) are in the table; replay from here up to commitPoint.treeSize. */
  get indexedSize(): number {
    return this.#indexedSize;
  }
  /** The watermark that survives power loss (moved by checkpointTable). */
  get durableIndexedSize(): number {
    return this.#state.indexedSize;
  }
  /** Distinct leaf hashes counted in the table. */
  get entryCount(): number {
    return this.#entryCount;
  }
  /** Slots in the table (the one serving: during a growth, the smaller one). */
  get capacity(): number {
    return this.#table.capacity;
  }
  /** Whether a bigger table is being built beside the current one. */
  get growing(): boolean {
    return this.#growth !== undefined;
  }
  /**
   * Where a growth in progress is (undefined when none is): its phase, buckets of the current
   * table copied so far out of all, and the entry counts by which copying must be done and the
   * bigger table swapped in (see growth.ts).
   */
  get growthProgress(): GrowthProgress | undefined {
    const g = this.#growth;
    if (g === undefined) return undefined;
    return { phase: g.phase, copiedBuckets: g.cursor, buckets: g.from.bucketCount, newCapacity: g.capacity, copyBy: g.copyBy, swapBy: g.swapBy };
  }
  /**
   * Resolves once no growth is in progress (at once when none is): the bigger table is in use.
   * Rejects when the growth was abandoned on a failure, or the index closed meanwhile.
   */
  whenGrown(): Promise<void> {
    if (this.#growth === undefined) return Promise.resolve();
    return new Promise((resolve, reject) => this.#grown.push({ resolve, reject }));
  }
  /**
   * Bytes of the new file that inserting `n` more distinct leaves would build (growth makes a
   * doubled file beside the current one), or 0 when they fit: the room an insert needs on disk.
   * A growth in progress counts until its file is allocated.
   */
  bytesToInsert(n: number): number {
    const g = this.#growth;
    let buckets = g?.bucketCount ?? this.#table.bucketCount;
    const fits = (b: number) => this.#entryCount + n <= Math.floor(b * SLOTS_PER_BUCKET * this.#maxLoad);
    if (fits(buckets)) return g !== undefined && g.phase === 'allocating' ? fileSizeFor(buckets) : 0;
    while (!fits(buckets) && buckets < MAX_BUCKET_COUNT) buckets *= 2;
    return fileSizeFor(buckets);
  }

  /** Unix epoch ms at which this index was first initialised (kept across growth). */
  get createdAtMs(): number {
    return this.#createdAtMs;
  }
  get backend(): MappedFileBackend {
    return this.#mf.backend;
  }

  #usable(writing: boolean): void {
    if (this.#closed) throw new Error(`index ${this.path}: closed`);
    if (writing && this.mode !== 'writer') throw new Error(`index ${this.path}: opened read-only`);
  }

  /** Read-only handles: re-reads the commit slots (a writer may have moved them). */
  refresh(): void {
    this.#usable(false);
    const s = readState(this.#mf);
    if (s !== undefined && s.seq >= this.#state.seq) this.#state = s;
  }

  /**
   * Moves the commit point. Durable on return: the commit slot's page is msynced (on Linux a
   * ranged fdatasync, including the device cache flush). Written into the slot not holding the
   * current point, so a torn write leaves the previous point readable. A commit point only
   * moves forward: a smaller treeSize, or the same treeSize with another root, throws.
   */
  writeCommitPoint(cp: Omit<CommitPoint, 'seq'>): CommitPoint {
    this.#checkMove(cp);
    if (this.#renameUnsynced) {
      // Until the growth's rename is durable, a power loss would bring back the old file, which
      // no longer receives commit points: this one must not be acknowledged before it is.
      fsyncDirectory(dirname(this.path));
      this.#renameUnsynced = false;
    }
    this.#writeState({ ...this.#state, treeSize: cp.treeSize, rootHash: cp.rootHash.slice(), checkpointHash: cp.checkpointHash.slice() }, true);
    return this.commitPoint;
  }

  /**
   * Moves the commit point like writeCommitPoint(), without waiting for the disk: no syscall,
   * so it can run on an event loop per batch. Survives the death of the process at once (the
   * page cache has it) and power loss once syncCommitPoint() has resolved after it; until then
   * a power loss may bring back an older commit point (or leave this slot torn, the other one
   * readable). Only for a tree already durable elsewhere (the engine's journal record).
   */
  advanceCommitPoint(cp: Omit<CommitPoint, 'seq'>): CommitPoint {
    this.#checkMove(cp);
    this.#writeState({ ...this.#state, treeSize: cp.treeSize, rootHash: cp.rootHash.slice(), checkpointHash: cp.checkpointHash.slice() }, false);
    return this.commitPoint;
  }

  /**
   * Makes the commit point of the moment of the call durable, on a thread (an fdatasync of the
   * index file; after a growth's rename, an fsync of its directory first), and resolves with
   * the commit point known to be on disk, which is at least that one. Rejects with a
   * NativeError when the disk refuses.
   */
  async syncCommitPoint(): Promise<CommitPoint> {
    const target = this.#state;
    // A closed writer synced its commit point on close (a second close of the log flushes again).
    if (this.#closed && this.#durable !== undefined && this.#durable.seq >= target.seq) return this.durableCommitPoint!;
    this.#usable(true);
    if (this.#durable === undefined || this.#durable.seq < target.seq) {
      if (this.#renameUnsynced) {
        await fsyncDirectoryAsync(dirname(this.path));
        this.#renameUnsynced = false;
      }
      const mf = this.#mf;
      await mf.syncAsync();
      // A growth swapped files meanwhile: the swap synced its own record (see #swap), and what
      // the old file holds no longer counts.
      if (mf === this.#mf && (this.#durable === undefined || target.seq > this.#durable.seq)) this.#durable = target;
    }
    return this.durableCommitPoint!;
  }

  /**
   * The newest commit point known to be on disk (see syncCommitPoint); null until this handle
   * synced one (what open read may have been in the page cache only).
   */
  get durableCommitPoint(): CommitPoint | null {
    const s = this.#durable;
    if (s === undefined) return null;
    return { treeSize: s.treeSize, rootHash: s.rootHash.slice(), checkpointHash: s.checkpointHash.slice(), seq: s.seq };
  }

  #checkMove(cp: Omit<CommitPoint, 'seq'>): void {
    this.#usable(true);
    if (!Number.isSafeInteger(cp.treeSize) || cp.treeSize < 0) throw new RangeError(`bad treeSize ${cp.treeSize}`);
    if (cp.rootHash.length !== HASH_SIZE || cp.checkpointHash.length !== HASH_SIZE) throw new RangeError('hashes must be 32 bytes');
    const cur = this.#state;
    if (cp.treeSize < cur.treeSize) throw new RangeError(`commit point would move back from ${cur.treeSize} to ${cp.treeSize}`);
    if (cp.treeSize === cur.treeSize && cur.seq > 0 && !sameBytes(cp.rootHash, cur.rootHash)) {
      throw new RangeError(`commit point would change the root of tree size ${cp.treeSize}`);
    }
  }

  #writeState(next: Omit<StateRecord, 'seq'>, sync: boolean): void {
    const rec: StateRecord = { ...next, seq: this.#state.seq + 1 };
    this.#mf.writeBytes(stateSlotOffset(rec.seq), encodeStateRecord(rec));
    this.#state = rec;
    if (!sync) return;
    // Why sync: the caller is told the record is durable when this returns.
    this.#mf.sync(STATE_OFFSET, STATE_SIZE);
    if (!this.#renameUnsynced) this.#durable = rec;
  }

  /** The leaf index of leafHash (32 bytes at offset), or -1 when absent. */
  lookup(leafHash: Uint8Array, offset = 0): number {
    this.#usable(false);
    if (!(offset >= 0 && offset + HASH_SIZE <= leafHash.length)) throw new RangeError('lookup: need 32 bytes of leaf hash');
    return this.#table.lookup(leafHash, offset);
  }

  /**
   * Indexes leaves [firstIndex, firstIndex + n) whose hashes are leafHashes (n * 32 bytes).
   * firstIndex may be below indexedSize (a replay overlapping what is there: idempotent) but
   * not above it (no gaps), and the leaves must be inside the durable commit point. A hash
   * already present keeps the smaller index. Starts and advances the table's growth as needed
   * (see growth.ts: in line with inserts only the share idle time has not done). Not durable
   * by itself: survives SIGKILL at once, power loss after checkpointTable().
   * Returns how many new hashes were added.
   */
  insertMany(leafHashes: Uint8Array, firstIndex: number): number {
    this.#usable(true);
    if (leafHashes.length % HASH_SIZE !== 0) throw new RangeError('insertMany: length is not a multiple of 32');
    const n = leafHashes.length / HASH_SIZE;
    if (!Number.isSafeInteger(firstIndex) || firstIndex < 0 || firstIndex > this.#indexedSize) {
      throw new RangeError(`insertMany: firstIndex ${firstIndex} would leave a gap after ${this.#indexedSize}`);
    }
    if (firstIndex + n > this.#state.treeSize) {
      throw new RangeError(`insertMany: leaves up to ${firstIndex + n} are beyond the commit point ${this.#state.treeSize}`);
    }
    let added = 0;
    for (let k = 0; k < n; k++) {
      const index = firstIndex + k;
      let g = this.#growth;
      if (g === undefined && this.#entryCount >= Math.floor(this.#table.capacity * this.#maxLoad)) g = this.#startGrowth();
      if (g !== undefined) g = this.#keepUp(g);
      const r = this.#table.insert(leafHashes, k * HASH_SIZE, index);
      if (g !== undefined && (r === InsertResult.inserted || r === InsertResult.replacedLarger)) {
        g.mirror(this.#table.lastBucket, leafHashes, k * HASH_SIZE, index);
      }
      if (r === InsertResult.inserted) {
        added++;
        this.#entryCount++;
      } else if (r === InsertResult.same && index >= this.#indexedSize) {
        // Inserted before a crash but after the last watermark: not counted yet.
        this.#entryCount++;
      }
      if (index >= this.#indexedSize) this.#indexedSize = index + 1;
    }
    this.#writeLiveRecord();
    if (this.#checkpointEvery > 0 && this.#indexedSize - this.#state.indexedSize >= this.#checkpointEvery) {
      this.#checkpointTableInBackground();
    }
    if (this.#growth?.phase === 'copying') this.#scheduleIdle();
    return added;
  }

  #writeLiveRecord(): void {
    if (this.#bootId === undefined) return;
    const rec = encodeLiveRecord({ bootId: this.#bootId, indexedSize: this.#indexedSize, entryCount: this.#entryCount });
    this.#mf.writeBytes(LIVE_RECORD_OFFSET, rec);
  }

  /**
   * Makes the table durable and moves the durable watermark to indexedSize. Durable on return.
   * Costs a write-back of every dirty table page, so it runs every `checkpointEvery` leaves
   * and on close rather than per batch.
   */
  checkpointTable(): void {
    this.#usable(true);
    if (this.#state.indexedSize === this.#indexedSize && this.#state.entryCount === this.#entryCount) return;
    // Why sync the table first: the watermark written next claims these entries are on disk.
    this.#mf.sync(TABLE_OFFSET, this.#mf.size - TABLE_OFFSET);
    this.#writeState({ ...this.#state, indexedSize: this.#indexedSize, entryCount: this.#entryCount }, true);
  }

  /**
   * checkpointTable() off this thread, for insertMany: an insert never waits for the table's
   * write-back (every dirty page of it, seconds on a big table). The table is synced on a
   * thread (fdatasync); then the watermark moves to what was indexed when it started, in a
   * state record written like advanceCommitPoint's (durable at the next syncCommitPoint or
   * checkpoint; until then a power loss keeps the older, smaller watermark). One at a time.
   */
  #checkpointTableInBackground(): void {
    if (this.#checkpointing !== undefined) return;
    const mf = this.#mf;
    const indexedSize = this.#indexedSize;
    const entryCount = this.#entryCount;
    this.#checkpointing = mf
      .syncAsync()
      .then(
        () => {
          // Closed (close checkpointed itself) or grown (a new file, its own watermark) meanwhile.
          if (this.#closed || mf !== this.#mf || indexedSize <= this.#state.indexedSize) return;
          this.#writeState({ ...this.#state, indexedSize, entryCount }, false);
        },
        (e: unknown) => this.#warn(`index ${this.path}: syncing the table failed (${(e as Error).message}); retried at the next checkpoint`),
      )
      .finally(() => {
        this.#checkpointing = undefined;
      });
  }

  /** Resolves once no background checkpoint of the table (see insertMany) is running. */
  async whenCheckpointed(): Promise<void> {
    await this.#checkpointing;
  }

  /** Starts building the doubled table beside this one (see growth.ts). */
  #startGrowth(): Growth {
    const buckets = this.#table.bucketCount * 2;
    if (buckets > MAX_BUCKET_COUNT) throw new Error(`index ${this.path}: table cannot grow past ${MAX_BUCKET_COUNT} buckets`);
    const g = Growth.start(
      {
        path: growPath(this.path),
        from: this.#table,
        bucketCount: buckets,
        entryCount: this.#entryCount,
        maxLoad: this.#maxLoad,
        createdAtMs: this.#createdAtMs,
        draft: { ...this.#state, seq: this.#state.seq + 1, indexedSize: 0, entryCount: 0 },
        backend: this.#backend ?? this.#mf.backend,
      },
      { onProgress: (x) => this.#onGrowthProgress(x) },
    );
    this.#growth = g;
    return g;
  }

  /**
   * Before an insert during a growth: does the share of copying the entry count calls for, and
   * the whole rest (blocking) at the swap deadline. Returns the growth still running, if any.
   */
  #keepUp(g: Growth): Growth | undefined {
    try {
      if (this.#entryCount >= g.swapBy) {
        g.finishNow(this.#indexedSize, this.#entryCount);
        this.#swap(g);
        return undefined;
      }
      const owed = g.owedBuckets(this.#entryCount + 1);
      if (owed > g.cursor) g.copyTo(owed);
    } catch (e) {
      this.#dropGrowth(e);
      throw e;
    }
    if (g.copied && g.phase === 'copying') g.startSync(this.#indexedSize, this.#entryCount);
    return g;
  }

  /** The background work of the growth moved on (or failed). */
  #onGrowthProgress(g: Growth): void {
    if (g !== this.#growth || this.#closed) return;
    if (g.lastError !== undefined) {
      // The blocking path retries it when the deadlines come; until then the old table serves.
      this.#warn(`index ${this.path}: growing the table in the background failed (${(g.lastError as Error).message}); retrying in line with inserts`);
      g.lastError = undefined;
      return;
    }
    if (g.phase === 'copying') this.#scheduleIdle();
    else if (g.phase === 'synced') {
      try {
        this.#swap(g);
      } catch (e) {
        this.#warn(`index ${this.path}: could not swap in the grown table (${(e as Error).message}); starting over`);
        this.#dropGrowth(e);
      }
    }
  }

  #scheduleIdle(): void {
    if (this.#idle !== undefined || this.#closed) return;
    // setImmediate: after the I/O callbacks of this turn of the event loop, so a slice of
    // copying never delays more than one slice of other work.
    this.#idle = setImmediate(() => {
      this.#idle = undefined;
      const g = this.#growth;
      if (g === undefined || this.#closed || g.phase !== 'copying') return;
      try {
        if (g.copyFor(this.#growthSliceMs)) g.startSync(this.#indexedSize, this.#entryCount);
        else this.#scheduleIdle();
      } catch (e) {
        this.#warn(`index ${this.path}: growing the table failed (${(e as Error).message}); starting over`);
        this.#dropGrowth(e);
      }
    });
    // Not unref'd: an unref'd immediate lets the event loop sleep until the next timer or I/O
    // instead of spinning through the slices (one slice per 10 ms timer: ten times slower).
    // close() cancels it.
  }

  /**
   * Takes the grown table: its commit slot gets the current commit point (synced), the writer
   * lock moves to it, and it is renamed over the index. Until the rename, a failure leaves
   * everything as it was; after it, the new file is in use whatever happens.
   */
  #swap(g: Growth): void {
    const synced = g.synced!;
    const mf = g.mf!;
    const state: StateRecord = { ...this.#state, seq: this.#state.seq + 1, indexedSize: synced.indexedSize, entryCount: synced.entryCount };
    mf.writeBytes(stateSlotOffset(state.seq), encodeStateRecord(state));
    // Why sync: the commit point must be durable in the new file before its name is the index.
    mf.sync(STATE_OFFSET, STATE_SIZE);
    // The lock must cover the new file before its name is visible, or a second writer could
    // open and lock it in between.
    const newLock = this.#lock?.kind === 'ofd' ? takeLock(g.path, 'ofd') : undefined;
    try {
      renameSync(g.path, this.path);
    } catch (e) {
      newLock?.release();
      throw e;
    }
    g.adopted();
    const oldLock = this.#lock;
    const oldMf = this.#mf;
    this.#growth = undefined;
    this.#mf = mf;
    this.#table = g.table!;
    this.#state = state;
    if (newLock !== undefined) {
      this.#lock = newLock;
      oldLock?.release();
    }
    oldMf.close();
    this.#prepareMapping();
    this.#writeLiveRecord();
    this.#renameUnsynced = true;
    try {
      // Why fsync the directory: the rename itself is not durable until the directory is.
      fsyncDirectory(dirname(this.path));
      this.#renameUnsynced = false;
      this.#durable = state;
    } catch (e) {
      this.#warn(`index ${this.path}: fsync of the directory after growing failed (${(e as Error).message}); retried before the next commit`);
    }
    for (const w of this.#grown.splice(0)) w.resolve();
  }

  /** Abandons a growth in progress (its file is deleted); waiters get `why`. */
  #dropGrowth(why: unknown): void {
    const g = this.#growth;
    if (g === undefined) return;
    this.#growth = undefined;
    if (this.#idle !== undefined) clearImmediate(this.#idle);
    this.#idle = undefined;
    try {
      g.abandon();
    } finally {
      for (const w of this.#grown.splice(0)) w.reject(why);
    }
  }

  /**
   * Scans the whole table for corruption (see DedupTable.check): every index below the
   * commit point's treeSize, every entry reachable from its home slot, padding zero. O(capacity).
   */
  check(): IndexCheck {
    this.#usable(false);
    const r = this.#table.check(this.#state.treeSize);
    if (r.entries < this.#entryCount) {
      r.problemCount++;
      r.problems.push(`table holds ${r.entries} entries, fewer than the ${this.#entryCount} counted`);
    }
    return { entries: r.entries, capacity: this.#table.capacity, problems: r.problems, problemCount: r.problemCount };
  }

  /**
   * Writer: checkpointTable() and a sync of the commit point (so the next open replays nothing,
   * even after power loss), then releases the mapping and the lock. Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    try {
      // The old table is complete: a growth in progress is only thrown away (the next writer
      // starts it again).
      this.#dropGrowth(new Error(`index ${this.path}: closed while growing`));
      if (this.mode === 'writer') {
        this.checkpointTable();
        // The commit point too, when only it moved since the last sync (advanceCommitPoint).
        if (this.#durable === undefined || this.#durable.seq < this.#state.seq) {
          this.#mf.sync(STATE_OFFSET, STATE_SIZE);
          if (!this.#renameUnsynced) this.#durable = this.#state;
        }
      }
    } finally {
      this.#closed = true;
      this.#mf.close();
      this.#lock?.release();
    }
  }
}

/** Opens the hot index at path: see HotIndex.open. */
export function openIndex(path: string, opts: OpenIndexOptions = {}): HotIndex {
  return HotIndex.open(path, opts);
}

function growPath(path: string): string {
  return `${path}.grow.tmp`;
}

function takeLock(path: string, kind: LockKind | undefined): FileLock {
  try {
    return lockFileExclusive(path, { kind });
  } catch (e) {
    if (e instanceof NativeError && e.code === LOCK_HELD) throw new IndexError('locked', path, `locked by another writer (${e.message})`, { cause: e });
    throw e;
  }
}
