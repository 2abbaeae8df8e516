/**
 * Durability calls on plain fds, named like the libc calls they are. Each is durable on
 * return and safe to call from anywhere (they touch no shared state). Failures are NativeErrors
 * naming the call and the path: `fdatasync /x/tile.tmp: EIO`.
 */
import { closeSync, constants as fsConstants, fdatasyncSync, fsyncSync, openSync, promises as fsp } from 'node:fs';
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
