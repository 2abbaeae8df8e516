/**
 * MappedFile: a fixed-size file read and written through bounds-checked methods.
 *
 * Two backends share this interface: `mmap` (koffi + libc, the fast one) and `plain`
 * (pread/pwrite on an fd, used when koffi cannot load). Callers never see a raw Buffer,
 * ArrayBuffer or address: every access goes through a method that checks the range and that
 * the file is still open, so a use after close is an exception and never a SIGSEGV, and an
 * out-of-range offset is a RangeError and never a read of someone else's memory.
 *
 * Integers are little-endian on every host, so a file is portable between machines.
 */
import { close, closeSync, constants as fsConstants, fstatSync, fsync, ftruncate, openSync } from 'node:fs';
import { promisify } from 'node:util';
import { fsError, NativeError, syscallError } from './errors.js';
import { libc } from './libc.js';
import { MmapFile } from './mmap-file.js';
import { PlainFile } from './plain-file.js';
import { checkSize } from './range.js';

export type MappedFileBackend = 'mmap' | 'plain';
export type Advice = 'normal' | 'random' | 'sequential' | 'willneed';

/**
 * Contract shared by both backends.
 *
 * - Ownership: the object owns its fd and its mapping; close() releases both. Nothing else
 *   may close the fd.
 * - Concurrency: not safe to call from two places at once while one of them grows or closes
 *   it (single-threaded JS makes that a re-entrancy question only). Other processes that map
 *   or read the same file see writes at once (shared page cache), but with no ordering
 *   guarantee beyond what the caller builds (CRCs, sequence numbers).
 * - Durability: writes survive the death of the process (they are in the page cache as soon
 *   as the method returns), but survive power loss only once sync() has returned.
 * - Size: the file only grows. Nothing in the project may truncate a file while it is mapped
 *   (a mapped read past EOF is a SIGBUS).
 */
export interface MappedFile {
  readonly path: string;
  readonly backend: MappedFileBackend;
  readonly readOnly: boolean;
  /** Current size in bytes; every offset must stay below it. */
  readonly size: number;
  readonly closed: boolean;

  readU8(offset: number): number;
  writeU8(offset: number, value: number): void;
  /** Little-endian unsigned 32-bit. */
  readU32(offset: number): number;
  writeU32(offset: number, value: number): void;
  /** Little-endian unsigned 64-bit, as a number: throws RangeError above 2^53-1. */
  readU64(offset: number): number;
  writeU64(offset: number, value: number): void;
  /** A fresh copy of `length` bytes: it never aliases the file. */
  readBytes(offset: number, length: number): Uint8Array;
  /** Copies `length` bytes (default: the rest of target) into target at targetOffset. */
  readInto(offset: number, target: Uint8Array, targetOffset?: number, length?: number): void;
  writeBytes(offset: number, source: Uint8Array, sourceOffset?: number, length?: number): void;
  /** Whether the file at offset holds the same bytes as other[otherOffset, +length). */
  equals(offset: number, other: Uint8Array, otherOffset?: number, length?: number): boolean;
  fill(offset: number, length: number, value: number): void;

  /**
   * Grows the file to newSize (allocating the blocks first, so a full disk is an ENOSPC here
   * and not a SIGBUS later) and remaps it. Shrinking throws. Durable on return: the new size
   * and blocks are fsynced. Existing bytes keep their values.
   */
  grow(newSize: number): void;
  /**
   * Makes [offset, offset+length) durable on return (default: the whole file). mmap backend:
   * msync(MS_SYNC) of the covering pages, which on Linux is vfs_fsync_range(datasync) over that
   * range (write-back and device cache flush), plus fdatasync when the whole file is asked
   * for. plain backend: fdatasync.
   */
  sync(offset?: number, length?: number): void;
  /**
   * sync() of the whole file without blocking the caller: an fdatasync on a libuv thread (on
   * Linux that also writes back the pages dirtied through the mapping, as msync does). Resolves
   * once every write made before the call is durable; writes made meanwhile may or may not be.
   * A close() meanwhile is fine: the fd is closed once the call is done. Rejects with a
   * NativeError (`fdatasync /x/index.idx: EIO`). Read-only files resolve at once.
   */
  syncAsync(): Promise<void>;
  /**
   * Pins the pages covering the range in RAM (mlock) so that reading them never waits on the
   * disk. Returns false when the backend has no mapping to pin; throws NativeError (EPERM,
   * ENOMEM under RLIMIT_MEMLOCK) when the kernel refuses. Pins go away at close.
   */
  mlock(offset: number, length: number): boolean;
  /** madvise hint for the range; a no-op on the plain backend. Never fails loudly. */
  advise(advice: Advice, offset?: number, length?: number): void;
  /**
   * Faults the pages of [offset, offset+length) in on a thread (MADV_POPULATE_WRITE with
   * `write`, else MADV_POPULATE_READ; MADV_WILLNEED on kernels before 5.14), so that this
   * thread's accesses to them later find them mapped instead of waiting in a page fault (a
   * fault on a file page can wait for the disk or the filesystem journal). A hint: resolves
   * whatever the kernel says, at once on the plain backend. Rejects (RangeError) for a range
   * outside the file, or a closed file.
   */
  prefault(offset: number, length: number, write: boolean): Promise<void>;
  /**
   * Releases the fd and the mapping. mmap backend: the old addresses are first covered with
   * an anonymous zero mapping (MAP_FIXED), so even a stale internal view could only ever see
   * zeros, and they are unmapped once the garbage collector proves no view remains. Does not
   * sync: call sync() first if the bytes must survive power loss. Idempotent.
   */
  close(): void;
}

export interface OpenMappedFileOptions {
  /**
   * Minimum size: a smaller file is grown to it (allocated, never sparse on the mmap backend).
   * A larger file keeps its size; the mapping covers the whole file.
   */
  size?: number;
  /** Create the file if missing (default false). */
  create?: boolean;
  /** With create: fail with EEXIST if the file exists (O_EXCL). */
  exclusive?: boolean;
  /** With create: the new file's mode (default 0o600: a mapped file is private state). */
  mode?: number;
  /** Map read-only; every write method throws. */
  readOnly?: boolean;
  /** Default: mmap when koffi loaded, else plain. */
  backend?: MappedFileBackend;
  /**
   * mmap backend: bytes per mapping (default and maximum 1 GiB; a view over 4 GiB aborts Node
   * 20). Must be a multiple of the page size. Small values exist for tests. Views are made on
   * first access, over windows of at most 16 MiB of a mapping (see mmap-file.ts).
   */
  chunkSize?: number;
}

export const MAX_CHUNK_SIZE = 1 << 30;

/**
 * Opens (and optionally creates or grows) a file and maps it. Throws NativeError naming the
 * call and the path (`open /x/index.idx: ENOENT`, `mmap /x/index.idx: ENOMEM`).
 */
export function openMappedFile(path: string, options: OpenMappedFileOptions = {}): MappedFile {
  const backend = options.backend ?? (libc !== undefined ? 'mmap' : 'plain');
  if (backend === 'mmap' && libc === undefined) {
    throw new NativeError('mmap', path, 'ENOSYS', undefined, 'native backend unavailable');
  }
  const readOnly = options.readOnly === true;
  if (readOnly && options.create === true) throw new RangeError('openMappedFile: create with readOnly');
  let flags = readOnly ? fsConstants.O_RDONLY : fsConstants.O_RDWR;
  if (options.create === true) flags |= fsConstants.O_CREAT;
  if (options.create === true && options.exclusive === true) flags |= fsConstants.O_EXCL;
  let fd: number;
  try {
    fd = openSync(path, flags, options.mode ?? 0o600);
  } catch (e) {
    throw fsError('open', path, e);
  }
  try {
    let size: number;
    try {
      size = fstatSync(fd).size;
    } catch (e) {
      throw fsError('fstat', path, e);
    }
    const want = options.size ?? 0;
    checkSize(want);
    if (want > size) {
      if (readOnly) throw new NativeError('open', path, 'EINVAL', undefined, `file is ${size} bytes, wanted ${want}`);
    }
    if (backend === 'mmap') {
      const chunkSize = options.chunkSize ?? MAX_CHUNK_SIZE;
      const page = libc!.pageSize;
      if (!(chunkSize >= page && chunkSize <= MAX_CHUNK_SIZE && chunkSize % page === 0)) {
        throw new RangeError(`openMappedFile: chunkSize ${chunkSize} must be a multiple of ${page} up to 1 GiB`);
      }
      return new MmapFile(path, fd, size, Math.max(size, want), readOnly, chunkSize);
    }
    return new PlainFile(path, fd, size, Math.max(size, want), readOnly);
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/**
 * Creates a file at path (which must not exist: O_EXCL, mode 0600 by default) and allocates
 * `size` bytes for it without blocking the caller, so that a later openMappedFile(path, { size })
 * finds the blocks there and maps at once. Allocating gigabytes takes a while (about 15 ms per
 * GiB on ext4 here): this is how a big file is made on a server's event loop.
 *
 * The file exists (empty) when this returns; the promise resolves once its blocks and length
 * are durable: posix_fallocate then fsync, each on a thread (mmap backend), or ftruncate (sparse,
 * as the plain backend always is) then fsync. Rejects with a NativeError (`posix_fallocate
 * /x/f: ENOSPC`), leaving the file in place for the caller to remove. A concurrent
 * openMappedFile(path, { size }) is safe: it allocates what is not there yet itself.
 */
export function allocateFile(path: string, size: number, options: { backend?: MappedFileBackend; mode?: number } = {}): Promise<void> {
  checkSize(size);
  const backend = options.backend ?? (libc !== undefined ? 'mmap' : 'plain');
  let fd: number;
  try {
    fd = openSync(path, fsConstants.O_RDWR | fsConstants.O_CREAT | fsConstants.O_EXCL, options.mode ?? 0o600);
  } catch (e) {
    return Promise.reject(fsError('open', path, e));
  }
  const work = async (): Promise<void> => {
    if (backend === 'mmap' && libc !== undefined) {
      const err = await libc.posixFallocateAsync(fd, 0, size);
      if (err !== 0) throw syscallError('posix_fallocate', path, err);
    } else {
      await promisify(ftruncate)(fd, size).catch((e: unknown) => {
        throw fsError('ftruncate', path, e);
      });
    }
    // Why fsync: the length and the block allocation are metadata (see MmapFile's allocate).
    await promisify(fsync)(fd).catch((e: unknown) => {
      throw fsError('fsync', path, e);
    });
  };
  return work().finally(() => promisify(close)(fd).catch(() => {}));
}
