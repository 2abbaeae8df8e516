/**
 * Durability calls on plain fds, named like the libc calls they are. Each is durable on
 * return and safe to call from anywhere (they touch no shared state). Failures are NativeErrors
 * naming the call and the path: `fdatasync /x/tile.tmp: EIO`.
 */
import { closeSync, fdatasync as fdatasyncCallback, constants as fsConstants, fdatasyncSync, fsyncSync, openSync, promises as fsp } from 'node:fs';
import { fsError, syscallError } from './errors.js';
import { libc } from './libc.js';

/** Flushes the file's data (and the metadata needed to read it back, like its size). */
export function fdatasync(fd: number, path = `fd ${fd}`): void {
  if (libc !== undefined) {
    if (libc.fdatasync(fd) !== 0) throw syscallError('fdatasync', path, libc.errno());
    return;
  }
  try {
    fdatasyncSync(fd);
  } catch (e) {
    throw fsError('fdatasync', path, e);
  }
}

/** Flushes the file's data and all its metadata. */
export function fsync(fd: number, path = `fd ${fd}`): void {
  if (libc !== undefined) {
    if (libc.fsync(fd) !== 0) throw syscallError('fsync', path, libc.errno());
    return;
  }
  try {
    fsyncSync(fd);
  } catch (e) {
    throw fsError('fsync', path, e);
  }
}

/** Makes renames and creations inside dir durable (fsync of the directory; works on Linux). */
export function fsyncDirectory(dir: string): void {
  let fd: number;
  try {
    fd = openSync(dir, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
  } catch (e) {
    throw fsError('open', dir, e);
  }
  try {
    fsync(fd, dir);
  } finally {
    closeSync(fd);
  }
}

/** fsyncDirectory() on libuv threads: the caller's event loop never waits on the disk. */
export async function fsyncDirectoryAsync(dir: string): Promise<void> {
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(dir, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
  } catch (e) {
    throw fsError('open', dir, e);
  }
  try {
    await fh.sync();
  } catch (e) {
    throw fsError('fsync', dir, e);
  } finally {
    await fh.close().catch(() => {});
  }
}

/**
 * An fd that its owner may close while fdatasyncs of it still run on libuv threads: close()
 * then leaves the fd open until the last of them is done, so none of them fails with EBADF (or,
 * worse, syncs another file that reused the number). Both MappedFile backends own one.
 */
export class FdWithAsyncSyncs {
  readonly fd: number;
  readonly path: string;
  /** fdatasyncs in flight. */
  #inFlight = 0;
  #closed = false;

  constructor(fd: number, path: string) {
    this.fd = fd;
    this.path = path;
  }

  /**
   * fdatasync on a libuv thread. Resolves once every write made before the call is durable;
   * rejects with a NativeError (`fdatasync /x/index.idx: EIO`). Not after close().
   */
  fdatasyncAsync(): Promise<void> {
    this.#inFlight++;
    return new Promise<void>((resolve, reject) => {
      fdatasyncCallback(this.fd, (e) => {
        if (--this.#inFlight === 0 && this.#closed) {
          try {
            closeSync(this.fd);
          } catch {
            // Nothing is left to report a close failure to: the owner closed it long ago.
          }
        }
        if (e) reject(fsError('fdatasync', this.path, e));
        else resolve();
      });
    });
  }

  /** Closes the fd now (a failure is a NativeError), or once the fdatasyncs in flight are done. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#inFlight > 0) return;
    try {
      closeSync(this.fd);
    } catch (e) {
      throw fsError('close', this.path, e);
    }
  }
}
