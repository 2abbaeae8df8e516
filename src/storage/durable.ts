/**
 * Durable file writes: write a temp file in the same directory, fsync it, rename it over the
 * target, fsync the directory. One batch groups its fsyncs: every file of the batch is written
 * and synced concurrently, then renamed, then each touched directory is synced once.
 *
 * Contract: when write() resolves, every file of the batch is durable at its path, with its
 * parents. When it rejects, no target was replaced unless the error happened mid-rename (the
 * caller treats the batch as failed and recovers from its commit point). Not safe for two
 * concurrent write() calls on the same paths; the log has one writer per tenant.
 *
 * Deferred writes (writeDeferred) are the same temp-file-and-rename, atomic for readers, but
 * without the fsyncs: the caller holds what it needs to redo them (the log's journal), and
 * flush() later makes every deferred file and directory durable in one go. Until then a crash
 * may lose them or leave them torn.
 *
 * Deferred removals (removeDeferred, collected partial tiles) ride in the file worker's next
 * message: the next deferred write's, or their own one event-loop turn later, so a batch's
 * deletions cost no hand-off of their own when a write follows. Not synced: the caller syncs the
 * directories it is given when the deletions must hold.
 */
import { promises as fsp, constants as fsc } from 'node:fs';
import path from 'node:path';
import { TlogError, ErrorCode, ioError } from '../errors.js';
import type { FileWorker, RemovalResult, WorkerRemoval, WorkerResult } from './file-worker.js';

export interface FileWrite {
  readonly path: string;
  readonly data: Uint8Array;
  /**
   * 'immutable': the file may already exist only with exactly these bytes (a full tile, a
   * bundle, a history entry); other bytes are a bug or tampering and stop the log.
   * 'replace': the file is replaced atomically (the published checkpoint, private state).
   */
  readonly kind: 'immutable' | 'replace';
  /** File mode for this file, overriding the writer's (0o600 for private state). */
  readonly mode?: number;
}

export interface DurableOptions {
  /** File mode of new files (0o644 for served files, 0o600 for private state). */
  readonly mode?: number;
  /** Test hook: called before each temp file is written; throwing simulates a failing disk. */
  readonly beforeWrite?: (target: string) => void;
  /** Where deferred writes are made: a file worker thread, or the libuv pool when absent. */
  readonly fileWorker?: FileWorker;
  /**
   * Where flush() and syncDirs() fsync: a thread of their own (not fileWorker's, whose batch
   * writes must not wait behind a flush), or the libuv pool when absent.
   */
  readonly syncWorker?: FileWorker;
}

let tmpCounter = 0;

/** Removals waiting for the worker's next message, and their caller's promise. */
interface PendingRemovals {
  readonly list: WorkerRemoval[];
  resolve(r: RemovalResult): void;
  reject(e: unknown): void;
  readonly done: Promise<RemovalResult>;
}

export class DurableWriter {
  /** Directories known to exist and be durable in their parent. */
  private readonly knownDirs = new Set<string>();
  /** Deferred files and directories not yet flushed. */
  private unsyncedFiles = new Set<string>();
  private unsyncedDirs = new Set<string>();
  private removals: PendingRemovals | null = null;
  constructor(private readonly opts: DurableOptions = {}) {}

  /**
   * Deletes files (a missing one is no error), and each one's directory too once empty when
   * `rmdir`; resolves with the directories whose entries changed. Through the file worker, in
   * its next message (see above); without one, through the libuv pool.
   */
  removeDeferred(removes: readonly WorkerRemoval[]): Promise<RemovalResult> {
    const worker = this.opts.fileWorker;
    if (!worker)
      return removeViaPool(removes).then((r) => {
        if (r.rmdirs.length > 0) this.forgetDirs();
        return r;
      });
    if (!this.removals) {
      let resolve!: (r: RemovalResult) => void;
      let reject!: (e: unknown) => void;
      const done = new Promise<RemovalResult>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      const pending: PendingRemovals = { list: [], resolve, reject, done };
      this.removals = pending;
      // No write came along within this turn: they go on their own.
      setImmediate(() => {
        if (this.removals !== pending) return;
        this.removals = null;
        this.settleRemovals(pending, worker.write([], pending.list));
      });
    }
    this.removals.list.push(...removes);
    return this.removals.done;
  }

  private settleRemovals(pending: PendingRemovals, call: Promise<WorkerResult>): void {
    call.then(
      (r) => {
        const removed = r.removed ?? { dirs: [], rmdirs: [], errors: [] };
        if (removed.rmdirs.length > 0) this.forgetDirs();
        pending.resolve(removed);
      },
      (e) => pending.reject(e),
    );
  }

  /** Files written with writeDeferred and not yet flushed. */
  get unsynced(): number {
    return this.unsyncedFiles.size;
  }

  /** Creates dir and its missing parents; returns the directories whose entries changed. */
  async ensureDir(dir: string, changed: Set<string>): Promise<void> {
    if (this.knownDirs.has(dir)) return;
    try {
      await fsp.mkdir(dir);
      // A new directory entry is durable only once its parent directory is fsynced.
      changed.add(path.dirname(dir));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        await this.ensureDir(path.dirname(dir), changed);
        return this.ensureDir(dir, changed);
      }
      if (code !== 'EEXIST') throw ioError('mkdir', dir, e);
    }
    this.knownDirs.add(dir);
  }

  /** Forgets cached directories (after recovery deleted files, or in tests). */
  forgetDirs(): void {
    this.knownDirs.clear();
  }

  async write(files: readonly FileWrite[]): Promise<void> {
    return this.writeFiles(files, true);
  }

  /** Like write(), atomic for readers but durable only after a later flush(). */
  async writeDeferred(files: readonly FileWrite[]): Promise<void> {
    return this.writeFiles(files, false);
  }

  /**
   * Queues files already in place (written by someone, possibly not durable) for the next
   * flush(), with their directories: recovery adopts files a crashed run left behind this way.
   */
  adopt(paths: readonly string[]): void {
    for (const p of paths) {
      this.unsyncedFiles.add(p);
      this.unsyncedDirs.add(path.dirname(p));
    }
  }

  /**
   * Makes every deferred write made before the call durable: fsync of each file, then of each
   * directory holding a rename or a new directory. Safe to run while more deferred writes go on
   * (they wait for the next flush). A file deleted since (recovery) is skipped. On failure the
   * files stay queued for the next flush.
   */
  async flush(): Promise<void> {
    const files = this.unsyncedFiles;
    const dirs = this.unsyncedDirs;
    if (files.size === 0 && dirs.size === 0) return;
    this.unsyncedFiles = new Set();
    this.unsyncedDirs = new Set();
    try {
      // A file's data first, then the directory entries naming it (the same order write() keeps).
      const worker = this.opts.syncWorker;
      if (worker) {
        const r = await worker.sync([...files, ...dirs]);
        if (r.fail && 'op' in r.fail) throw ioError(r.fail.op, r.fail.path, { code: r.fail.code });
      } else {
        await forEachLimited([...files], 32, syncFile);
        await forEachLimited([...dirs], 32, (d) =>
          syncDir(d).catch((e) => {
            if ((e as TlogError).cause && ((e as TlogError).cause as NodeJS.ErrnoException).code === 'ENOENT') return;
            throw e;
          }),
        );
      }
    } catch (e) {
      for (const f of files) this.unsyncedFiles.add(f);
      for (const d of dirs) this.unsyncedDirs.add(d);
      throw e;
    }
  }

  /**
   * fsyncs directories where files were deleted, each one even when another fails, and reports
   * no failure: a deletion that does not hold after a crash leaves a collected partial behind,
   * which the next open finds and collects again (partials.ts).
   */
  async syncDirs(dirs: readonly string[]): Promise<void> {
    if (dirs.length === 0) return;
    const worker = this.opts.syncWorker;
    if (worker) await worker.sync(dirs, true).catch(() => {});
    else await syncDirsViaPool(dirs);
  }

  private async writeFiles(files: readonly FileWrite[], durable: boolean): Promise<void> {
    if (files.length === 0) return;
    if (!durable && this.opts.fileWorker) return this.writeViaWorker(this.opts.fileWorker, files);
    const dirsToSync = new Set<string>();
    for (const f of files) {
      const dir = path.dirname(f.path);
      await this.ensureDir(dir, dirsToSync);
      dirsToSync.add(dir);
    }
    const pending = await Promise.all(files.map((f) => this.stage(f, durable)));
    const staged = pending.filter((p): p is { tmp: string; target: string } => p !== null);
    try {
      // rename(2) replaces the target atomically: readers see the old file or the new one. The
      // files of one batch are independent (nothing names them until a later, separate write),
      // so their renames run concurrently.
      const renamed = await Promise.allSettled(staged.map((s) => fsp.rename(s.tmp, s.target)));
      const failed = renamed.findIndex((r) => r.status === 'rejected');
      if (failed >= 0) throw ioError('rename', staged[failed]!.target, (renamed[failed] as PromiseRejectedResult).reason);
    } catch (e) {
      await Promise.all(staged.map((s) => fsp.unlink(s.tmp).catch(() => {})));
      throw e;
    }
    if (!durable) {
      for (const s of staged) this.unsyncedFiles.add(s.target);
      for (const d of dirsToSync) this.unsyncedDirs.add(d);
      return;
    }
    // The renames are durable only once each directory holding them is fsynced.
    await Promise.all([...dirsToSync].map(syncDir));
  }

  /** Deferred writes through the file worker: one message for the whole batch of files. */
  private async writeViaWorker(worker: FileWorker, files: readonly FileWrite[]): Promise<void> {
    for (const f of files) {
      try {
        this.opts.beforeWrite?.(f.path);
      } catch (e) {
        throw ioError('write', f.path, e);
      }
    }
    // Removals asked for before this write ride in its message (the worker makes them first).
    const removals = this.removals;
    this.removals = null;
    const call = worker.write(
      files.map((f) => ({ path: f.path, data: f.data, kind: f.kind, mode: f.mode ?? this.opts.mode ?? 0o644 })),
      removals?.list ?? [],
    );
    if (removals) this.settleRemovals(removals, call);
    const r = await call;
    for (const p of r.written) this.unsyncedFiles.add(p);
    for (const d of r.dirs) this.unsyncedDirs.add(d);
    const fail = r.fail;
    if (!fail) return;
    if ('conflict' in fail) {
      throw immutableConflict(fail.path, fail.have, fail.want);
    }
    throw ioError(fail.op, fail.path, { code: fail.code });
  }

  /** Writes (and fsyncs, when durable) the temp file of one write; null when an identical immutable file exists. */
  private async stage(f: FileWrite, durable: boolean): Promise<{ tmp: string; target: string } | null> {
    if (f.kind === 'immutable') {
      const existing = await readIfExists(f.path);
      if (existing) {
        if (Buffer.compare(existing, f.data) === 0) return null;
        throw immutableConflict(f.path, existing.length, f.data.length);
      }
    }
    const tmp = path.join(path.dirname(f.path), `.${path.basename(f.path)}.${process.pid}.${++tmpCounter}.tmp`);
    let fh: fsp.FileHandle | undefined;
    try {
      this.opts.beforeWrite?.(f.path);
      fh = await fsp.open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, f.mode ?? this.opts.mode ?? 0o644);
      await fh.writeFile(f.data);
      // fsync before rename: otherwise a crash can leave the new name pointing at empty data.
      if (durable) await fh.sync();
    } catch (e) {
      await fh?.close().catch(() => {});
      await fsp.unlink(tmp).catch(() => {});
      throw ioError('write', f.path, e);
    }
    await fh.close();
    return { tmp, target: f.path };
  }
}

/** Whether `p` exists (a symlink counts as itself, not as its target); other errors than ENOENT are thrown. */
export async function pathExists(p: string): Promise<boolean> {
  try {
    await fsp.lstat(p);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw ioError('stat', p, e);
  }
}

export async function readIfExists(p: string): Promise<Buffer | null> {
  try {
    return await fsp.readFile(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw ioError('read', p, e);
  }
}

/** Removals without a file worker: one unlink (and rmdir) at a time on the libuv pool. */
export async function removeViaPool(removes: readonly WorkerRemoval[]): Promise<RemovalResult> {
  const out: RemovalResult = { dirs: [], rmdirs: [], errors: [] };
  for (const r of removes) {
    await fsp.unlink(r.path).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') out.errors.push({ path: r.path, code: e.code ?? String(e) });
    });
    const dir = path.dirname(r.path);
    out.dirs.push(dir);
    if (r.rmdir) {
      await fsp.rmdir(dir).then(
        () => {
          out.rmdirs.push(dir);
          out.dirs.push(path.dirname(dir));
        },
        () => {},
      );
    }
  }
  return out;
}

/** syncDirs() without a worker: every directory on the libuv pool, each one even when another fails, no failure reported. */
export async function syncDirsViaPool(dirs: readonly string[]): Promise<void> {
  await Promise.all(dirs.map((d) => syncDir(d).catch(() => {})));
}

/** fsyncs a directory so the entries created or renamed in it survive a crash. */
export async function syncDir(dir: string): Promise<void> {
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(dir, 'r');
    await fh.sync();
  } catch (e) {
    throw ioError('fsync', dir, e);
  } finally {
    await fh?.close().catch(() => {});
  }
}

function immutableConflict(p: string, onDisk: number, wanted: number): TlogError {
  return new TlogError(ErrorCode.immutableConflict, `refusing to overwrite immutable ${p} with different bytes (${onDisk} bytes on disk, ${wanted} new)`);
}

/** fsyncs a file already in place (a deferred write being flushed); a missing file is skipped. */
async function syncFile(p: string): Promise<void> {
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(p, 'r');
    await fh.sync();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw ioError('fsync', p, e);
  } finally {
    await fh?.close().catch(() => {});
  }
}

/** Runs fn over items with at most `limit` calls in flight (the libuv pool has 4 threads anyway). */
async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** One durable replace of a single file, for small private state. */
export async function writeFileDurably(p: string, data: Uint8Array | string, mode = 0o644): Promise<void> {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  await new DurableWriter({ mode }).write([{ path: p, data: bytes, kind: 'replace' }]);
}
