/**
 * The POSIX driver of ObjectStore (object-store.ts): objects are files under a root directory,
 * a key's "/" segments are directories. The same guarantees as the S3 driver, from the kernel:
 *
 *  - putImmutable writes a temp file, fsyncs it and link(2)s it to the key's name: link fails
 *    with EEXIST when the name exists, atomically, so like `If-None-Match: *` no writer can
 *    replace an object, and a reader never sees a half-written one (O_EXCL on the name itself
 *    would show the bytes while they are being written, and leave a torn file after a crash).
 *    On EEXIST the stored bytes are compared: identical is success, other bytes a conflict.
 *  - putMutable compares and swaps under an exclusive lock on a lock file beside the object
 *    (an OFD lock, native/lock.ts, so it holds between processes on this machine too; within
 *    this process calls for one key are queued first). The etag is the SHA-256 of the content,
 *    read under the lock; the new version is a temp file renamed over the old one.
 *
 * Durability: a write resolves once the file and the directories naming it are fsynced.
 * Temp and lock files start with "." and keys never do (checkKey), so they are never listed.
 */
import { createHash } from 'node:crypto';
import { closeSync, constants as fsc, openSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { lockFileExclusive, LOCK_HELD, NativeError, type FileLock } from '../../native/index.js';
import { TlogError, ErrorCode, ioError } from '../errors.js';
import { DurableWriter, readIfExists, syncDir } from './durable.js';
import { checkKey, checkPrefix, immutableConflict, PreconditionFailed, type Expected, type ObjectStore, type StoredObject } from './object-store.js';

export interface PosixStoreOptions {
  /** Mode of new object files (default 0o644). */
  readonly mode?: number;
  /** How often a lock held by another process is tried again before putMutable gives up (default 2000, 5 ms apart). */
  readonly lockAttempts?: number;
}

let tmpCounter = 0;

/** The etag of some bytes: their SHA-256, quoted like an HTTP entity tag (RFC 9110 8.8.3). */
export function contentEtag(bytes: Uint8Array): string {
  return `"${createHash('sha256').update(bytes).digest('hex')}"`;
}

export class PosixStore implements ObjectStore {
  readonly where: string;
  private readonly root: string;
  private readonly dirs = new DurableWriter();
  /** The last queued putMutable per key: calls of this process for one key run one at a time. */
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(
    root: string,
    private readonly opts: PosixStoreOptions = {},
  ) {
    this.root = path.resolve(root);
    this.where = `posix:${this.root}/`;
  }

  private pathOf(key: string): string {
    checkKey(key);
    return path.join(this.root, ...key.split('/'));
  }

  /** Creates the directory of a file and makes the new entries durable in their parents. */
  private async ensureDir(dir: string): Promise<void> {
    const changed = new Set<string>();
    await this.dirs.ensureDir(dir, changed);
    await Promise.all([...changed].map(syncDir));
  }

  /** A temp file beside `target` holding `bytes`, fsynced. */
  private async writeTemp(target: string, bytes: Uint8Array): Promise<string> {
    const tmp = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${++tmpCounter}.tmp`);
    let fh: fsp.FileHandle | undefined;
    try {
      fh = await fsp.open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, this.opts.mode ?? 0o644);
      await fh.writeFile(bytes);
      await fh.sync();
      await fh.close();
      return tmp;
    } catch (e) {
      await fh?.close().catch(() => {});
      await fsp.unlink(tmp).catch(() => {});
      throw ioError('write', target, e);
    }
  }

  async putImmutable(key: string, bytes: Uint8Array): Promise<'created' | 'existed'> {
    const target = this.pathOf(key);
    const existing = await readIfExists(target);
    if (existing === null) {
      await this.ensureDir(path.dirname(target));
      const tmp = await this.writeTemp(target, bytes);
      try {
        await fsp.link(tmp, target);
        await syncDir(path.dirname(target));
        return 'created';
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e instanceof TlogError ? e : ioError('link', target, e);
        // Another writer linked first: compare with what it stored, below.
      } finally {
        await fsp.unlink(tmp).catch(() => {});
      }
    }
    const have = existing ?? (await readIfExists(target));
    if (have === null) throw new TlogError(ErrorCode.io, `put ${this.where}${key}: the file existed and is gone`);
    if (Buffer.compare(have, bytes) !== 0) throw immutableConflict(this.where, key, have.length, bytes.length);
    return 'existed';
  }

  async putMutable(key: string, bytes: Uint8Array, expected: Expected): Promise<string> {
    const target = this.pathOf(key);
    const prev = this.queues.get(key) ?? Promise.resolve();
    const run = prev.catch(() => {}).then(() => this.swap(key, target, bytes, expected));
    this.queues.set(key, run);
    try {
      return await run;
    } finally {
      if (this.queues.get(key) === run) this.queues.delete(key);
    }
  }

  /** The compare-and-swap of putMutable, under the key's lock file. */
  private async swap(key: string, target: string, bytes: Uint8Array, expected: Expected): Promise<string> {
    await this.ensureDir(path.dirname(target));
    const lock = await this.lock(path.join(path.dirname(target), `.${path.basename(target)}.lock`));
    try {
      const current = await readIfExists(target);
      const etag = current === null ? null : contentEtag(current);
      const holds = expected === 'absent' ? current === null : etag === expected.etag;
      if (!holds) {
        // As in the S3 driver: the exact bytes already current are this write (see object-store.ts).
        if (current !== null && Buffer.compare(current, bytes) === 0) return etag!;
        throw new PreconditionFailed(key, this.where, expected, etag === null ? 'there is none' : `the store has version ${etag}`);
      }
      const tmp = await this.writeTemp(target, bytes);
      try {
        await fsp.rename(tmp, target);
      } catch (e) {
        await fsp.unlink(tmp).catch(() => {});
        throw ioError('rename', target, e);
      }
      await syncDir(path.dirname(target));
      return contentEtag(bytes);
    } finally {
      lock.release();
    }
  }

  /** Takes the lock file's exclusive lock, waiting while another process holds it. */
  private async lock(lockPath: string): Promise<FileLock> {
    try {
      closeSync(openSync(lockPath, fsc.O_WRONLY | fsc.O_CREAT, 0o644));
    } catch (e) {
      throw ioError('create lock', lockPath, e);
    }
    const attempts = this.opts.lockAttempts ?? 2000;
    for (let i = 0; ; i++) {
      try {
        return lockFileExclusive(lockPath);
      } catch (e) {
        if (!(e instanceof NativeError && e.code === LOCK_HELD)) throw ioError('lock', lockPath, e);
        if (i + 1 >= attempts)
          throw new TlogError(ErrorCode.locked, `lock ${lockPath}: still held by another process after ${attempts} attempts`, { cause: e });
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  async get(key: string): Promise<StoredObject | null> {
    const bytes = await readIfExists(this.pathOf(key));
    return bytes === null ? null : { bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), etag: contentEtag(bytes) };
  }

  async list(prefix: string): Promise<string[]> {
    checkPrefix(prefix);
    // Walk only below the deepest directory the prefix names in full.
    const cut = prefix.lastIndexOf('/');
    const base = cut < 0 ? '' : prefix.slice(0, cut);
    const keys: string[] = [];
    const walk = async (rel: string): Promise<void> => {
      let entries;
      try {
        entries = await fsp.readdir(path.join(this.root, ...(rel ? rel.split('/') : [])), { withFileTypes: true });
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') return;
        throw ioError('list', path.join(this.root, rel), e);
      }
      for (const d of entries) {
        if (d.name.startsWith('.')) continue; // temp and lock files
        const k = rel ? `${rel}/${d.name}` : d.name;
        if (d.isDirectory()) {
          // Descend only where keys with the prefix can be.
          if (k.startsWith(prefix) || prefix.startsWith(`${k}/`)) await walk(k);
        } else if (d.isFile() && k.startsWith(prefix)) keys.push(k);
      }
    };
    await walk(base);
    return keys.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  }
}
