/**
 * A worker thread that writes a batch of small files with synchronous calls (write a temp
 * file, rename; mkdir only when the directory is missing), deletes files (collected partial
 * tiles) and fsyncs lists of paths: the deferred writes, removals and flushes of DurableWriter,
 * off the main thread.
 *
 * Why a thread: creating a file can block for milliseconds while the filesystem commits its
 * journal (a flush's fsyncs force such commits), and an HTTP event loop must not stall on that;
 * while the same calls made through the libuv pool cost four or five event-loop turns per file,
 * each waiting behind a busy server's callbacks. Here a batch of files costs one message each
 * way, and the deletions asked for meanwhile ride along in it.
 *
 * Contract: writes() calls complete in call order (one worker, FIFO), each file atomically
 * replaced by rename (readers see the old or the new bytes), none of them fsynced. An
 * 'immutable' file that exists with other bytes fails the call with code immutable_conflict;
 * any other failure with the errno code, naming the operation and path. Files already renamed
 * into place by a failed call stay (the log recovers from its commit point). The worker is
 * ref()ed only while it has work; a dead worker fails its calls and is restarted on the next.
 */
import { Worker } from 'node:worker_threads';

const WORKER_SOURCE = String.raw`
(async () => {
  const { parentPort } = await import('node:worker_threads');
  const fs = await import('node:fs');
  const path = await import('node:path');
  let counter = 0;
  // Removals first (they were asked for before the writes of the same message): unlink, and
  // rmdir of a directory asked for once it is empty. A missing file is no error; other errors
  // are reported, never thrown (a removal is collection, not part of a batch).
  const removeAll = (list) => {
    const out = { dirs: [], rmdirs: [], errors: [] };
    for (const r of list) {
      try {
        fs.unlinkSync(r.path);
      } catch (e) {
        if (e.code !== 'ENOENT') out.errors.push({ path: r.path, code: e.code || String(e) });
      }
      const dir = path.dirname(r.path);
      out.dirs.push(dir);
      if (r.rmdir) {
        try {
          fs.rmdirSync(dir);
          out.rmdirs.push(dir);
          out.dirs.push(path.dirname(dir));
        } catch {}
      }
    }
    return out;
  };
  // fsync of each path in order. A missing path is skipped (deleted since it was written); the
  // first other failure is reported with the operation, path and errno, and ends the call
  // unless keepGoing.
  const syncAll = (paths, keepGoing) => {
    let synced = 0;
    let fail = null;
    for (const p of paths) {
      let fd;
      try {
        fd = fs.openSync(p, 'r');
        try {
          fs.fsyncSync(fd);
        } finally {
          fs.closeSync(fd);
        }
        synced++;
      } catch (e) {
        if (e.code === 'ENOENT' && fd === undefined) continue;
        fail = fail || { op: 'fsync', path: p, code: e.code || String(e) };
        if (!keepGoing) break;
      }
    }
    return { synced, fail };
  };
  parentPort.on('message', (m) => {
    if (m.sync) {
      const r = syncAll(m.sync, m.keepGoing);
      parentPort.postMessage({ id: m.id, fail: r.fail, written: [], dirs: [], mkdirs: 0, removed: null, synced: r.synced });
      return;
    }
    const removed = m.removes.length > 0 ? removeAll(m.removes) : null;
    const bytes = new Uint8Array(m.bytes);
    const dirs = [];
    const staged = [];
    let mkdirs = 0;
    let fail = null;
    try {
      for (const f of m.files) {
        const data = bytes.subarray(f.off, f.off + f.len);
        const dir = path.dirname(f.path);
        dirs.push(dir);
        if (f.kind === 'immutable') {
          // Almost always absent (a new tile, bundle or note): a stat that does not throw on
          // ENOENT, and a read only when there is something to compare.
          let st;
          try {
            st = fs.statSync(f.path, { throwIfNoEntry: false });
          } catch (e) {
            throw { op: 'read', path: f.path, code: e.code || String(e) };
          }
          if (st) {
            let existing;
            try {
              existing = fs.readFileSync(f.path);
            } catch (e) {
              throw { op: 'read', path: f.path, code: e.code || String(e) };
            }
            if (Buffer.compare(existing, data) === 0) continue;
            throw { conflict: true, path: f.path, have: existing.length, want: data.length };
          }
        }
        const tmp = path.join(dir, '.' + path.basename(f.path) + '.' + process.pid + '.w' + (++counter) + '.tmp');
        // The directory is made only when the temp file cannot be created for want of it: no
        // mkdir per file, and nothing to forget when a directory is removed.
        for (let attempt = 0; ; attempt++) {
          try {
            fs.writeFileSync(tmp, data, { flag: 'wx', mode: f.mode });
            break;
          } catch (e) {
            if (attempt === 0 && (e.code === 'ENOENT' || e.code === 'ENOTDIR')) {
              let made;
              try {
                mkdirs++;
                made = fs.mkdirSync(dir, { recursive: true });
              } catch (e2) {
                throw { op: 'mkdir', path: dir, code: e2.code || String(e2) };
              }
              // mkdir -p returns the first directory it created: it and every level below it
              // are new, and each new entry is durable only once its parent is synced.
              if (made) for (let d = dir; d.length >= made.length; d = path.dirname(d)) dirs.push(path.dirname(d));
              continue;
            }
            // A write cut short (ENOSPC) leaves the temp file: remove it, or it keeps the space.
            if (e.code !== 'EEXIST') { try { fs.rmSync(tmp, { force: true }); } catch {} }
            throw { op: 'write', path: f.path, code: e.code || String(e) };
          }
        }
        staged.push([tmp, f.path]);
      }
      for (const s of staged) {
        try {
          fs.renameSync(s[0], s[1]);
        } catch (e) {
          throw { op: 'rename', path: s[1], code: e.code || String(e) };
        }
        s[0] = '';
      }
    } catch (e) {
      fail = e && (e.op || e.conflict) ? e : { op: 'write', path: '?', code: String((e && e.message) || e) };
    }
    for (const s of staged) if (s[0]) { try { fs.rmSync(s[0], { force: true }); } catch {} }
    const written = [];
    for (const s of staged) if (!s[0]) written.push(s[1]);
    parentPort.postMessage({ id: m.id, fail, written, dirs: [...new Set(dirs)], mkdirs, removed });
  });
})();
`;

export interface WorkerFile {
  readonly path: string;
  readonly data: Uint8Array;
  readonly kind: 'immutable' | 'replace';
  readonly mode: number;
}

export type WorkerFailure =
  | { readonly op: string; readonly path: string; readonly code: string }
  | { readonly conflict: true; readonly path: string; readonly have: number; readonly want: number };

/** A file to delete, with its directory too once that is empty (`rmdir`). */
export interface WorkerRemoval {
  readonly path: string;
  readonly rmdir: boolean;
}

/** What the removals of a call did. */
export interface RemovalResult {
  /** Directories whose entries changed (to fsync before the deletions must hold). */
  readonly dirs: string[];
  /** Directories removed (a writer that remembers directories must forget). */
  readonly rmdirs: string[];
  /** Files that could not be deleted (a missing file is no error). */
  readonly errors: { readonly path: string; readonly code: string }[];
}

export interface WorkerResult {
  /** Files renamed into place. */
  readonly written: string[];
  /** Directories whose entries changed (to fsync at the next flush). */
  readonly dirs: string[];
  readonly fail: WorkerFailure | null;
  /** mkdir calls made (only for a file whose directory was missing). */
  readonly mkdirs: number;
  /** The removals' outcome, when the call had any. */
  readonly removed: RemovalResult | null;
  /** For sync(): the paths fsynced (missing ones are skipped). */
  readonly synced?: number;
}

interface Call {
  resolve(r: WorkerResult): void;
  reject(e: Error): void;
}

export class FileWorker {
  #worker: Worker | null = null;
  readonly #calls = new Map<number, Call>();
  #nextID = 1;
  #closed = false;

  /** Messages posted to the thread so far (one per call: what a hand-off costs is counted in them). */
  get posted(): number {
    return this.#nextID - 1;
  }

  #start(): Worker {
    if (this.#worker) return this.#worker;
    const w = new Worker(WORKER_SOURCE, { eval: true });
    w.unref();
    w.on('message', (m: WorkerResult & { id: number }) => {
      const call = this.#calls.get(m.id);
      if (!call) return;
      this.#calls.delete(m.id);
      if (this.#calls.size === 0) w.unref();
      call.resolve(m);
    });
    const died = (why: string) => {
      if (this.#worker !== w) return;
      this.#worker = null;
      const calls = [...this.#calls.values()];
      this.#calls.clear();
      for (const c of calls) c.reject(new Error(`file worker ${why}`));
    };
    w.on('error', (e) => died(`failed: ${e.message}`));
    w.on('exit', (code) => died(`exited (${code})`));
    this.#worker = w;
    return w;
  }

  /**
   * Deletes `removes` (first: they were asked for before these writes), then writes `files`
   * (see the contract above). The files' bytes are copied once into one buffer of their exact
   * size, which is transferred, not cloned: a tile is a view of a larger buffer, and cloning a
   * view copies all of its buffer.
   */
  write(files: readonly WorkerFile[], removes: readonly WorkerRemoval[] = []): Promise<WorkerResult> {
    let total = 0;
    for (const f of files) total += f.data.length;
    const bytes = new Uint8Array(total);
    const meta: { path: string; kind: WorkerFile['kind']; mode: number; off: number; len: number }[] = [];
    let off = 0;
    for (const f of files) {
      bytes.set(f.data, off);
      meta.push({ path: f.path, kind: f.kind, mode: f.mode, off, len: f.data.length });
      off += f.data.length;
    }
    return this.#post((id) => ({ id, files: meta, bytes: bytes.buffer, removes }), [bytes.buffer]);
  }

  #post(message: (id: number) => object, transfer: ArrayBuffer[]): Promise<WorkerResult> {
    if (this.#closed) return Promise.reject(new Error('file worker is closed'));
    const w = this.#start();
    const id = this.#nextID++;
    return new Promise<WorkerResult>((resolve, reject) => {
      if (this.#calls.size === 0) w.ref();
      this.#calls.set(id, { resolve, reject });
      try {
        w.postMessage(message(id), transfer);
      } catch (e) {
        this.#calls.delete(id);
        reject(new Error(`file worker: post: ${(e as Error).message}`));
      }
    });
  }

  /**
   * fsyncs every path in the order given (files before the directories naming them), skipping
   * those that no longer exist. The first other failure is `fail`; it ends the call unless
   * `keepGoing`. One message each way for the whole list, where an open, an fsync and a close
   * through the libuv pool cost the event loop three turns a path.
   */
  sync(paths: readonly string[], keepGoing = false): Promise<WorkerResult> {
    return this.#post((id) => ({ id, sync: paths, keepGoing }), []);
  }

  async close(): Promise<void> {
    this.#closed = true;
    const w = this.#worker;
    this.#worker = null;
    const calls = [...this.#calls.values()];
    this.#calls.clear();
    for (const c of calls) c.reject(new Error('file worker is closed'));
    if (w) await w.terminate();
  }
}

let shared: FileWorker | null = null;

/** The process-wide file worker (one thread serves every log; its calls are short). */
export function sharedFileWorker(): FileWorker {
  shared ??= new FileWorker();
  return shared;
}

let sharedSync: FileWorker | null = null;

/**
 * The process-wide flush thread: the flushes' fsyncs (DurableWriter.flush), on a thread of
 * their own, since one flush's fsyncs can take long enough that the batches' writes must not
 * queue behind them.
 */
export function sharedSyncWorker(): FileWorker {
  sharedSync ??= new FileWorker();
  return sharedSync;
}
