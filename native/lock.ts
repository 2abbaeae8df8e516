/**
 * One writer per file: an exclusive lock that a second process fails on at once.
 *
 * Native: an open-file-description lock (fcntl F_OFD_SETLK, whole file, F_WRLCK). Unlike a
 * classic POSIX lock it is not dropped when some other fd of the same file is closed in this
 * process (a readFileSync would do that), and it conflicts between two opens in one process
 * too. The kernel drops it when the process dies, however it dies: no stale locks.
 *
 * Fallback (no koffi): a lock file `<path>.lock` created with O_EXCL holding our pid. Its
 * limits: a lock file whose pid is dead is taken over, but a dead pid that was reused by an
 * unrelated process keeps the lock until that process exits; pids mean nothing across hosts or
 * pid namespaces (containers sharing a volume), or on network filesystems; and two processes
 * taking over the same stale file at the same instant can both win. Fine for one process per
 * machine, which is the deployment this fallback is for.
 */
import { closeSync, constants as fsConstants, fstatSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { errnoName, fsError, LOCK_HELD, NativeError, syscallError } from './errors.js';
import { F_OFD_SETLK, F_WRLCK, flockBuffer, libc } from './libc.js';

export type LockKind = 'ofd' | 'lockfile';

/**
 * A held lock. Owned by whoever took it; release() is idempotent. Not durable: it lives as
 * long as the process (ofd) or until release (lockfile; a crash leaves a file that the next
 * taker sees is stale).
 */
export interface FileLock {
  readonly path: string;
  readonly kind: LockKind;
  readonly held: boolean;
  release(): void;
}

export interface LockOptions {
  /** Default: ofd when koffi loaded, else lockfile. */
  kind?: LockKind;
}

/**
 * Takes an exclusive lock on the file at path without waiting. When another process (or
 * another open in this process) holds it, throws NativeError with code `lock_held` and a
 * message naming the file: `lock /x/index.idx: held by another process (EAGAIN)`.
 *
 * ofd: the file must exist. The lock is on the file's inode at the moment of the call; if the
 * path is renamed over while we take it, we retry on the new file, so holding the lock always
 * means holding the file the path names (until someone renames another file over it; whoever
 * does that must lock the new file first).
 */
export function lockFileExclusive(path: string, options: LockOptions = {}): FileLock {
  const kind = options.kind ?? (libc !== undefined ? 'ofd' : 'lockfile');
  return kind === 'ofd' ? lockOfd(path) : lockWithFile(path);
}

function lockOfd(path: string): FileLock {
  if (libc === undefined) throw new NativeError('lock', path, 'ENOSYS', undefined, 'native locks unavailable');
  for (let attempt = 0; attempt < 8; attempt++) {
    let fd: number;
    try {
      // O_RDWR: F_WRLCK needs an fd open for writing.
      fd = openSync(path, fsConstants.O_RDWR);
    } catch (e) {
      throw fsError('lock', path, e);
    }
    if (libc.fcntlLock(fd, F_OFD_SETLK, flockBuffer(F_WRLCK)) !== 0) {
      const errno = libc.errno();
      closeSync(fd);
      if (errno === 11 /* EAGAIN */ || errno === 13 /* EACCES */) {
        throw new NativeError('lock', path, LOCK_HELD, errno, `held by another process (${errnoName(errno)})`);
      }
      throw syscallError('fcntl(F_OFD_SETLK)', path, errno);
    }
    let same = false;
    try {
      const a = fstatSync(fd);
      const b = statSync(path);
      same = a.ino === b.ino && a.dev === b.dev;
    } catch {
      same = false;
    }
    if (same) return new OfdLock(path, fd);
    closeSync(fd); // renamed over while we locked: our lock is on a file nobody will open again
  }
  throw new NativeError('lock', path, 'EAGAIN', 11, 'file keeps being replaced');
}

class OfdLock implements FileLock {
  readonly kind = 'ofd' as const;
  #fd: number | undefined;
  constructor(
    readonly path: string,
    fd: number,
  ) {
    this.#fd = fd;
  }
  get held(): boolean {
    return this.#fd !== undefined;
  }
  release(): void {
    if (this.#fd === undefined) return;
    const fd = this.#fd;
    this.#fd = undefined;
    // Closing our only fd of the open file description releases the OFD lock.
    closeSync(fd);
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function lockWithFile(path: string): FileLock {
  const lockPath = `${path}.lock`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockPath, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600);
      try {
        writeSync(fd, `${process.pid}\n`);
      } finally {
        closeSync(fd);
      }
      return new PidFileLock(path, lockPath, process.pid);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw fsError('lock', lockPath, e);
    }
    let text = '';
    try {
      text = readFileSync(lockPath, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // released meanwhile
      throw fsError('lock', lockPath, e);
    }
    const pid = Number.parseInt(text, 10);
    if (Number.isSafeInteger(pid) && pid > 0 && !pidAlive(pid)) {
      // Stale: its owner died without releasing it.
      try {
        unlinkSync(lockPath);
      } catch {
        // someone else removed it first; retry
      }
      continue;
    }
    const who = Number.isSafeInteger(pid) && pid > 0 ? `pid ${pid}` : 'another process';
    throw new NativeError('lock', path, LOCK_HELD, undefined, `held by ${who} (lock file ${lockPath})`);
  }
  throw new NativeError('lock', path, LOCK_HELD, undefined, `held by another process (lock file ${lockPath})`);
}

class PidFileLock implements FileLock {
  readonly kind = 'lockfile' as const;
  #held = true;
  constructor(
    readonly path: string,
    readonly lockPath: string,
    readonly pid: number,
  ) {}
  get held(): boolean {
    return this.#held;
  }
  release(): void {
    if (!this.#held) return;
    this.#held = false;
    try {
      // Only remove the file if it is still ours (a takeover may have replaced it).
      if (Number.parseInt(readFileSync(this.lockPath, 'utf8'), 10) === this.pid) unlinkSync(this.lockPath);
    } catch {
      // already gone
    }
  }
}
