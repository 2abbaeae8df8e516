/**
 * The plain-file backend of MappedFile, used when koffi cannot load: the same methods over
 * pread/pwrite on an fd. Every access is a system call, so it is slower than the mmap backend
 * by an order of magnitude, but it behaves the same: bounds checks, little-endian integers,
 * writes visible to other processes at once, durable after sync().
 */
import { fdatasyncSync, fsyncSync, ftruncateSync, readSync, writeSync } from 'node:fs';
import { fsError, NativeError } from './errors.js';
import type { Advice, MappedFile } from './mapped-file.js';
import { checkRange, checkSize, checkU32, checkU64, combineU64 } from './range.js';
import { FdWithAsyncSyncs } from './sync.js';

export class PlainFile implements MappedFile {
  readonly path: string;
  readonly backend = 'plain' as const;
  readonly readOnly: boolean;
  #fd: number;
  #size: number;
  #closed = false;
  /** Closes #fd, once the syncAsync() calls in flight are done. */
  #fdSyncs: FdWithAsyncSyncs;
  #scratch = new Uint8Array(8);
  #scratchView = new DataView(this.#scratch.buffer);

  /** Use openMappedFile(); the fd becomes owned by this object. */
  constructor(path: string, fd: number, currentSize: number, size: number, readOnly: boolean) {
    this.path = path;
    this.#fd = fd;
    this.#fdSyncs = new FdWithAsyncSyncs(fd, path);
    this.readOnly = readOnly;
    this.#size = currentSize;
    if (size > currentSize) this.#extend(size);
  }

  get size(): number {
    return this.#size;
  }
  get closed(): boolean {
    return this.#closed;
  }

  #extend(size: number): void {
    // No posix_fallocate without koffi: the new range is sparse, so a full disk shows up as
    // ENOSPC on a later write or sync instead of here. There is no SIGBUS risk without mmap.
    try {
      ftruncateSync(this.#fd, size);
      // Why fsync: the new length is metadata and must not be lost under pages already in use.
      fsyncSync(this.#fd);
    } catch (e) {
      throw fsError('ftruncate', this.path, e);
    }
    this.#size = size;
  }

  #open(): void {
    if (this.#closed) throw new NativeError('access', this.path, 'EBADF', undefined, 'mapped file is closed');
  }
  #writable(): void {
    this.#open();
    if (this.readOnly) throw new NativeError('write', this.path, 'EROFS', undefined, 'mapped read-only');
  }

  #pread(offset: number, target: Uint8Array, targetOffset: number, length: number): void {
    let done = 0;
    while (done < length) {
      let n: number;
      try {
        n = readSync(this.#fd, target, targetOffset + done, length - done, offset + done);
      } catch (e) {
        throw fsError('pread', this.path, e);
      }
      // Someone truncated the file under us: report it rather than return stale zeros.
      if (n === 0) throw new NativeError('pread', this.path, 'EIO', undefined, `short read at ${offset + done}`);
      done += n;
    }
  }

  #pwrite(offset: number, source: Uint8Array, sourceOffset: number, length: number): void {
    let done = 0;
    while (done < length) {
      try {
        done += writeSync(this.#fd, source, sourceOffset + done, length - done, offset + done);
      } catch (e) {
        throw fsError('pwrite', this.path, e);
      }
    }
  }

  readU8(offset: number): number {
    this.#open();
    checkRange(offset, 1, this.#size);
    this.#pread(offset, this.#scratch, 0, 1);
    return this.#scratch[0]!;
  }
  writeU8(offset: number, value: number): void {
    this.#writable();
    checkRange(offset, 1, this.#size);
    if (!Number.isInteger(value) || value < 0 || value > 255) throw new RangeError(`u8 value ${value} out of range`);
    this.#scratch[0] = value;
    this.#pwrite(offset, this.#scratch, 0, 1);
  }

  readU32(offset: number): number {
    this.#open();
    checkRange(offset, 4, this.#size);
    this.#pread(offset, this.#scratch, 0, 4);
    return this.#scratchView.getUint32(0, true);
  }
  writeU32(offset: number, value: number): void {
    this.#writable();
    checkRange(offset, 4, this.#size);
    checkU32(value);
    this.#scratchView.setUint32(0, value, true);
    this.#pwrite(offset, this.#scratch, 0, 4);
  }

  readU64(offset: number): number {
    this.#open();
    checkRange(offset, 8, this.#size);
    this.#pread(offset, this.#scratch, 0, 8);
    return combineU64(this.#scratchView.getUint32(0, true), this.#scratchView.getUint32(4, true));
  }
  writeU64(offset: number, value: number): void {
    this.#writable();
    checkRange(offset, 8, this.#size);
    checkU64(value);
    const lo = value >>> 0;
    this.#scratchView.setUint32(0, lo, true);
    this.#scratchView.setUint32(4, (value - lo) / 0x1_0000_0000, true);
    this.#pwrite(offset, this.#scratch, 0, 8);
  }

  readBytes(offset: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    this.readInto(offset, out, 0, length);
    return out;
  }
  readInto(offset: number, target: Uint8Array, targetOffset = 0, length = target.length - targetOffset): void {
    this.#open();
    checkRange(targetOffset, length, target.length);
    checkRange(offset, length, this.#size);
    this.#pread(offset, target, targetOffset, length);
  }
  writeBytes(offset: number, source: Uint8Array, sourceOffset = 0, length = source.length - sourceOffset): void {
    this.#writable();
    checkRange(sourceOffset, length, source.length);
    checkRange(offset, length, this.#size);
    this.#pwrite(offset, source, sourceOffset, length);
  }
  equals(offset: number, other: Uint8Array, otherOffset = 0, length = other.length - otherOffset): boolean {
    const mine = this.readBytes(offset, length);
    checkRange(otherOffset, length, other.length);
    for (let k = 0; k < length; k++) if (mine[k] !== other[otherOffset + k]) return false;
    return true;
  }
  fill(offset: number, length: number, value: number): void {
    this.#writable();
    checkRange(offset, length, this.#size);
    const block = new Uint8Array(Math.min(length, 1 << 20)).fill(value);
    for (let done = 0; done < length; done += block.length) {
      this.#pwrite(offset + done, block, 0, Math.min(block.length, length - done));
    }
  }

  grow(newSize: number): void {
    this.#writable();
    checkSize(newSize);
    if (newSize < this.#size) throw new RangeError(`grow ${this.path}: ${newSize} is smaller than ${this.#size}`);
    if (newSize > this.#size) this.#extend(newSize);
  }

  sync(offset = 0, length = this.#size - offset): void {
    this.#open();
    checkRange(offset, length, this.#size);
    if (this.readOnly) return;
    // Why fdatasync: pwrite only reached the page cache; this waits for the disk. There is no
    // ranged variant without koffi, so the whole file is flushed.
    try {
      fdatasyncSync(this.#fd);
    } catch (e) {
      throw fsError('fdatasync', this.path, e);
    }
  }

  syncAsync(): Promise<void> {
    this.#open();
    if (this.readOnly) return Promise.resolve();
    return this.#fdSyncs.fdatasyncAsync();
  }

  mlock(offset: number, length: number): boolean {
    this.#open();
    checkRange(offset, length, this.#size);
    return false;
  }

  advise(_advice: Advice, offset = 0, length = this.#size - offset): void {
    this.#open();
    checkRange(offset, length, this.#size);
  }

  async prefault(offset: number, length: number, _write: boolean): Promise<void> {
    this.#open();
    checkRange(offset, length, this.#size);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // An fdatasync still running on a thread closes it when it is done (see syncAsync).
    this.#fdSyncs.close();
  }
}
