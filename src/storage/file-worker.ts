/**
 * A worker thread that writes a batch of small files with synchronous calls (mkdir, write a
 * temp file, rename): the deferred writes of DurableWriter, off the main thread.
 *
 * Why a thread: creating a file can block for milliseconds while the filesystem commits its
 * journal (a flush's fsyncs force such commits), and an HTTP event loop must not stall on that;
 * while the same calls made through the libuv pool cost four or five event-loop turns per file,
 * each waiting behind a busy server's callbacks. Here a batch of files costs one message each
 * way.
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
  parentPort.on('message', (m) => {
    const dirs = [];
    const staged = [];
    let fail = null;
    try {
      for (const f of m.files) {
        const dir = path.dirname(f.path);
        let made;
        try {
          made = fs.mkdirSync(dir, { recursive: true });
        } catch (e) {
          throw { op: 'mkdir', path: dir, code: e.code || String(e) };
        }
        // mkdir -p returns the first directory it created: it and every level below it are new,
        // and each new entry is durable only once its parent is synced.
        if (made) for (let d = dir; d.length >= made.length; d = path.dirname(d)) dirs.push(path.dirname(d));
        dirs.push(dir);
        if (f.kind === 'immutable') {
          let existing = null;
          try {
            existing = fs.readFileSync(f.path);
          } catch (e) {
            if (e.code !== 'ENOENT') throw { op: 'read', path: f.path, code: e.code || String(e) };
          }
          if (existing) {
            if (Buffer.compare(existing, f.data) === 0) continue;
            throw { conflict: true, path: f.path, have: existing.length, want: f.data.length };
          }
        }
        const tmp = path.join(dir, '.' + path.basename(f.path) + '.' + process.pid + '.w' + (++counter) + '.tmp');
        try {
          fs.writeFileSync(tmp, f.data, { flag: 'wx', mode: f.mode });
        } catch (e) {
          // A write cut short (ENOSPC) leaves the temp file: remove it, or it keeps the space.
          if (e.code !== 'EEXIST') { try { fs.rmSync(tmp, { force: true }); } catch {} }
          throw { op: 'write', path: f.path, code: e.code || String(e) };
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
    parentPort.postMessage({ id: m.id, fail, written: staged.map((s) => s[1]), dirs: [...new Set(dirs)] });
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

export interface WorkerResult {
  /** Files renamed into place. */
  readonly written: string[];
  /** Directories whose entries changed (to fsync at the next flush). */
  readonly dirs: string[];
  readonly fail: WorkerFailure | null;
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

  /** Writes the files (see the contract above); the data is copied to the worker. */
  write(files: readonly WorkerFile[]): Promise<WorkerResult> {
    if (this.#closed) return Promise.reject(new Error('file worker is closed'));
    const w = this.#start();
    const id = this.#nextID++;
    return new Promise<WorkerResult>((resolve, reject) => {
      if (this.#calls.size === 0) w.ref();
      this.#calls.set(id, { resolve, reject });
      try {
        w.postMessage({ id, files });
      } catch (e) {
        this.#calls.delete(id);
        reject(new Error(`file worker: post: ${(e as Error).message}`));
      }
    });
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
