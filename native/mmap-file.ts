/**
 * The mmap backend of MappedFile. This is the only file that holds views over mapped memory;
 * they never leave it.
 *
 * The file is mapped in chunks of at most 1 GiB (one mmap and one view each), because a view
 * over 4 GiB aborts Node 20. Accesses inside one chunk take a fast path on a Uint8Array or
 * DataView; the rare access that straddles two chunks is split.
 */
import { NativeError, syscallError } from './errors.js';
import {
  libc as maybeLibc,
  MADV_NORMAL,
  MADV_POPULATE_READ,
  MADV_POPULATE_WRITE,
  MADV_RANDOM,
  MADV_SEQUENTIAL,
  MADV_WILLNEED,
  MAP_ANONYMOUS,
  MAP_FAILED,
  MAP_FIXED,
  MAP_NORESERVE,
  MAP_PRIVATE,
  MAP_SHARED,
  MS_SYNC,
  PROT_READ,
  PROT_WRITE,
  type Libc,
} from './libc.js';
import type { Advice, MappedFile } from './mapped-file.js';
import { checkRange, checkSize, checkU32, checkU64, combineU64 } from './range.js';
import { FdWithAsyncSyncs } from './sync.js';

/**
 * A window of a mapping: the unit of access. A file is mapped in chunks of up to `chunkSize`
 * bytes (1 GiB by default: few mappings even for a large file), each cut into windows of at
 * most VIEW_WINDOW bytes, whose views are made on first access.
 */
interface Chunk {
  /** File offset of the window's first byte. */
  start: number;
  addr: bigint;
  length: number;
  /**
   * The views over the mapping, made on the chunk's first access (see #chunk): V8 counts the
   * bytes of every such view as external memory, and each 64 MiB it sees forces a collection,
   * which made opening many indexes cost a collection each.
   */
  u8: Uint8Array | undefined;
  dv: DataView | undefined;
}

/** A window whose views exist. */
type ViewedChunk = Chunk & { u8: Uint8Array; dv: DataView };

/**
 * The largest window (see Chunk): opening an index then makes views over a few pages' window
 * only, not over the whole table, which V8 would count as external memory all at once.
 */
const VIEW_WINDOW = 16 << 20;

const ADVICE: Record<Advice, number> = {
  normal: MADV_NORMAL,
  random: MADV_RANDOM,
  sequential: MADV_SEQUENTIAL,
  willneed: MADV_WILLNEED,
};

/**
 * Retired address ranges are unmapped only when the collector has reclaimed every view over
 * them: until then they hold anonymous zero pages (see retire()).
 */
/** Chunks this big or bigger are retired on a thread (see retire()). */
const RETIRE_ON_THREAD = 16 << 20;

const reclaim = new FinalizationRegistry<{ addr: bigint; length: number }>(({ addr, length }) => {
  maybeLibc?.munmap(addr, length);
});

export class MmapFile implements MappedFile {
  readonly path: string;
  readonly backend = 'mmap' as const;
  readonly readOnly: boolean;
  #fd: number;
  #size = 0;
  #chunks: Chunk[] = [];
  /** Bytes per window (a power of two dividing the mapping size). */
  #chunkSize: number;
  /** Bytes per mapping. */
  #mapSize: number;
  #closed = false;
  /** Closes #fd, once the syncAsync() calls in flight are done. */
  #fdSyncs: FdWithAsyncSyncs;
  #libc: Libc;

  /** Use openMappedFile(); the fd becomes owned by this object. */
  constructor(path: string, fd: number, currentSize: number, size: number, readOnly: boolean, chunkSize: number) {
    this.path = path;
    this.#fd = fd;
    this.#fdSyncs = new FdWithAsyncSyncs(fd, path);
    this.readOnly = readOnly;
    this.#mapSize = chunkSize;
    // The largest power of two that divides the mapping size, up to VIEW_WINDOW: every window
    // then starts at a multiple of it, whichever mapping it is in.
    this.#chunkSize = Math.min(VIEW_WINDOW, chunkSize & -chunkSize);
    this.#libc = maybeLibc!;
    if (size > currentSize) this.#allocate(size);
    this.#map(size);
  }

  get size(): number {
    return this.#size;
  }
  get closed(): boolean {
    return this.#closed;
  }

  #allocate(size: number): void {
    const err = this.#libc.posix_fallocate(this.#fd, 0, size);
    if (err !== 0) throw syscallError('posix_fallocate', this.path, err);
    // Why fsync: the new length and block allocation are metadata; without this a power loss
    // could bring back a shorter file under pages we already treat as part of it.
    if (this.#libc.fsync(this.#fd) !== 0) throw syscallError('fsync', this.path, this.#libc.errno());
  }

  #map(size: number): void {
    const chunks: Chunk[] = [];
    const prot = this.readOnly ? PROT_READ : PROT_READ | PROT_WRITE;
    try {
      for (let start = 0; start < size; start += this.#mapSize) {
        const length = Math.min(this.#mapSize, size - start);
        const addr = this.#libc.mmap(null, length, prot, MAP_SHARED, this.#fd, start);
        if (addr === MAP_FAILED) throw syscallError('mmap', this.path, this.#libc.errno());
        for (let w = 0; w < length; w += this.#chunkSize) {
          chunks.push({ start: start + w, addr: addr + BigInt(w), length: Math.min(this.#chunkSize, length - w), u8: undefined, dv: undefined });
        }
      }
    } catch (e) {
      this.#retire(chunks);
      throw e;
    }
    this.#chunks = chunks;
    this.#size = size;
  }

  /**
   * Covers each window's addresses with anonymous zero pages (MAP_FIXED replaces the file
   * mapping atomically, dropping mlock pins and the reference to the file), then lets the
   * FinalizationRegistry unmap them once no view can reach them (at once for a window that
   * never had a view). A view that somehow survived
   * reads zeros and writes into private scratch pages: never a SIGSEGV, never the file.
   * Chunks of RETIRE_ON_THREAD bytes or more are replaced from a thread (see below).
   */
  #retire(chunks: Chunk[]): void {
    const flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE;
    for (const c of chunks) {
      if (c.length >= RETIRE_ON_THREAD) {
        // Tearing down a big mapping takes a while (about 150 ms per resident GiB here), and so
        // may dropping the last reference to an unlinked file (its page cache is freed then):
        // both happen on a thread. Until it is done the file mapping stays as it was, so no view
        // can dangle; the chunk is handed to the collector only after the replacement.
        void this.#libc.mmapAsync(c.addr, c.length, PROT_READ | PROT_WRITE, flags, -1, 0).then(
          (r) => {
            if (r !== MAP_FAILED) this.#release(c);
          },
          () => {},
        );
        continue;
      }
      const r = this.#libc.mmap(c.addr, c.length, PROT_READ | PROT_WRITE, flags, -1, 0);
      if (r === MAP_FAILED) {
        // Out of address space or mappings: keep the file mapping alive rather than risk a
        // dangling view; it is released at exit.
        continue;
      }
      this.#release(c);
    }
  }

  /** A retired chunk's zero pages go once no view can reach them: now when it never had one. */
  #release(c: Chunk): void {
    if (c.u8 === undefined) this.#libc.munmap(c.addr, c.length);
    else reclaim.register(c.u8.buffer, { addr: c.addr, length: c.length });
  }

  /** Chunk i, with its views (made now if this is its first access). */
  #chunk(i: number): ViewedChunk {
    const c = this.#chunks[i]!;
    if (c.u8 === undefined) {
      const ab = this.#libc.view(c.addr, c.length);
      c.u8 = new Uint8Array(ab);
      c.dv = new DataView(ab);
    }
    return c as ViewedChunk;
  }

  #open(): void {
    if (this.#closed) throw new NativeError('access', this.path, 'EBADF', undefined, 'mapped file is closed');
  }
  #writable(): void {
    this.#open();
    if (this.readOnly) throw new NativeError('write', this.path, 'EROFS', undefined, 'mapped read-only');
  }

  /** Index of the chunk holding [offset, offset+length), or -1 when it straddles two. */
  #chunkOf(offset: number, length: number): number {
    checkRange(offset, length, this.#size);
    if (length === 0) return -1;
    const i = offset < this.#chunkSize ? 0 : Math.floor(offset / this.#chunkSize);
    const c = this.#chunks[i]!;
    return offset - c.start + length <= c.length ? i : -1;
  }

  readU8(offset: number): number {
    this.#open();
    const c = this.#chunk(this.#chunkOf(offset, 1));
    return c.u8[offset - c.start]!;
  }
  writeU8(offset: number, value: number): void {
    this.#writable();
    if (!Number.isInteger(value) || value < 0 || value > 255) throw new RangeError(`u8 value ${value} out of range`);
    const c = this.#chunk(this.#chunkOf(offset, 1));
    c.u8[offset - c.start] = value;
  }

  readU32(offset: number): number {
    this.#open();
    const i = this.#chunkOf(offset, 4);
    if (i < 0) return new DataView(this.readBytes(offset, 4).buffer).getUint32(0, true);
    const c = this.#chunk(i);
    return c.dv.getUint32(offset - c.start, true);
  }
  writeU32(offset: number, value: number): void {
    this.#writable();
    checkU32(value);
    const i = this.#chunkOf(offset, 4);
    if (i < 0) {
      const b = new Uint8Array(4);
      new DataView(b.buffer).setUint32(0, value, true);
      this.writeBytes(offset, b);
      return;
    }
    const c = this.#chunk(i);
    c.dv.setUint32(offset - c.start, value, true);
  }

  readU64(offset: number): number {
    this.#open();
    const i = this.#chunkOf(offset, 8);
    if (i < 0) {
      const dv = new DataView(this.readBytes(offset, 8).buffer);
      return combineU64(dv.getUint32(0, true), dv.getUint32(4, true));
    }
    const c = this.#chunk(i);
    const o = offset - c.start;
    return combineU64(c.dv.getUint32(o, true), c.dv.getUint32(o + 4, true));
  }
  writeU64(offset: number, value: number): void {
    this.#writable();
    checkU64(value);
    const lo = value >>> 0;
    const hi = (value - lo) / 0x1_0000_0000;
    const i = this.#chunkOf(offset, 8);
    if (i < 0) {
      const b = new Uint8Array(8);
      const dv = new DataView(b.buffer);
      dv.setUint32(0, lo, true);
      dv.setUint32(4, hi, true);
      this.writeBytes(offset, b);
      return;
    }
    const c = this.#chunk(i);
    const o = offset - c.start;
    c.dv.setUint32(o, lo, true);
    c.dv.setUint32(o + 4, hi, true);
  }

  readBytes(offset: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    this.readInto(offset, out, 0, length);
    return out;
  }

  readInto(offset: number, target: Uint8Array, targetOffset = 0, length = target.length - targetOffset): void {
    this.#open();
    checkRange(targetOffset, length, target.length);
    const i = this.#chunkOf(offset, length);
    if (i >= 0) {
      const c = this.#chunk(i);
      const o = offset - c.start;
      if (length <= 64) {
        // Small copies (index slots) are faster as a loop than through subarray+set.
        const u8 = c.u8;
        for (let k = 0; k < length; k++) target[targetOffset + k] = u8[o + k]!;
      } else {
        target.set(c.u8.subarray(o, o + length), targetOffset);
      }
      return;
    }
    let done = 0;
    while (done < length) {
      const pos = offset + done;
      const c = this.#chunk(Math.floor(pos / this.#chunkSize));
      const n = Math.min(length - done, c.start + c.length - pos);
      target.set(c.u8.subarray(pos - c.start, pos - c.start + n), targetOffset + done);
      done += n;
    }
  }

  writeBytes(offset: number, source: Uint8Array, sourceOffset = 0, length = source.length - sourceOffset): void {
    this.#writable();
    checkRange(sourceOffset, length, source.length);
    const i = this.#chunkOf(offset, length);
    if (i >= 0) {
      const c = this.#chunk(i);
      const o = offset - c.start;
      if (length <= 64) {
        const u8 = c.u8;
        for (let k = 0; k < length; k++) u8[o + k] = source[sourceOffset + k]!;
      } else {
        c.u8.set(source.subarray(sourceOffset, sourceOffset + length), o);
      }
      return;
    }
    let done = 0;
    while (done < length) {
      const pos = offset + done;
      const c = this.#chunk(Math.floor(pos / this.#chunkSize));
      const n = Math.min(length - done, c.start + c.length - pos);
      c.u8.set(source.subarray(sourceOffset + done, sourceOffset + done + n), pos - c.start);
      done += n;
    }
  }

  equals(offset: number, other: Uint8Array, otherOffset = 0, length = other.length - otherOffset): boolean {
    this.#open();
    checkRange(otherOffset, length, other.length);
    const i = this.#chunkOf(offset, length);
    if (i < 0) {
      const mine = this.readBytes(offset, length);
      for (let k = 0; k < length; k++) if (mine[k] !== other[otherOffset + k]) return false;
      return true;
    }
    const c = this.#chunk(i);
    const u8 = c.u8;
    const o = offset - c.start;
    for (let k = 0; k < length; k++) if (u8[o + k] !== other[otherOffset + k]) return false;
    return true;
  }

  fill(offset: number, length: number, value: number): void {
    this.#writable();
    checkRange(offset, length, this.#size);
    let done = 0;
    while (done < length) {
      const pos = offset + done;
      const c = this.#chunk(Math.floor(pos / this.#chunkSize));
      const n = Math.min(length - done, c.start + c.length - pos);
      c.u8.fill(value, pos - c.start, pos - c.start + n);
      done += n;
    }
  }

  grow(newSize: number): void {
    this.#writable();
    checkSize(newSize);
    if (newSize < this.#size) throw new RangeError(`grow ${this.path}: ${newSize} is smaller than ${this.#size}`);
    if (newSize === this.#size) return;
    this.#allocate(newSize);
    const old = this.#chunks;
    this.#chunks = [];
    this.#retire(old);
    this.#map(newSize);
  }

  /** Calls fn(address, length) for each chunk's page-aligned part of [offset, offset+length). */
  #eachPageRange(offset: number, length: number, fn: (addr: bigint, length: number) => void): void {
    checkRange(offset, length, this.#size);
    if (length === 0) return;
    const page = this.#libc.pageSize;
    for (const c of this.#chunks) {
      const from = Math.max(offset, c.start);
      const to = Math.min(offset + length, c.start + c.length);
      if (from >= to) continue;
      // Chunks start on page boundaries, so rounding inside a chunk stays inside it.
      const alignedFrom = from - ((from - c.start) % page);
      fn(c.addr + BigInt(alignedFrom - c.start), to - alignedFrom);
    }
  }

  sync(offset = 0, length = this.#size - offset): void {
    this.#open();
    if (this.readOnly) return;
    this.#eachPageRange(offset, length, (addr, len) => {
      // Why msync(MS_SYNC): it writes the dirty pages of this range back and waits; on Linux
      // it is vfs_fsync_range(datasync), so it also flushes the device cache.
      if (this.#libc.msync(addr, len, MS_SYNC) !== 0) throw syscallError('msync', this.path, this.#libc.errno());
    });
    if (offset === 0 && length === this.#size) {
      // Why fdatasync as well when the whole file is asked for: it also covers any size change
      // and is the documented POSIX way, should msync ever be weaker on another kernel.
      if (this.#libc.fdatasync(this.#fd) !== 0) throw syscallError('fdatasync', this.path, this.#libc.errno());
    }
  }

  syncAsync(): Promise<void> {
    this.#open();
    if (this.readOnly) return Promise.resolve();
    return this.#fdSyncs.fdatasyncAsync();
  }

  mlock(offset: number, length: number): boolean {
    this.#open();
    this.#eachPageRange(offset, length, (addr, len) => {
      if (this.#libc.mlock(addr, len) !== 0) throw syscallError('mlock', this.path, this.#libc.errno());
    });
    return true;
  }

  advise(advice: Advice, offset = 0, length = this.#size - offset): void {
    this.#open();
    // A hint only: a refusal changes speed, never results, so errors are ignored.
    this.#eachPageRange(offset, length, (addr, len) => void this.#libc.madvise(addr, len, ADVICE[advice]));
  }

  async prefault(offset: number, length: number, write: boolean): Promise<void> {
    this.#open();
    const ranges: [bigint, number][] = [];
    this.#eachPageRange(offset, length, (addr, len) => ranges.push([addr, len]));
    for (const [addr, len] of ranges) {
      // A close() meanwhile covers the range with anonymous pages (see retire): populating
      // those is harmless, and they go with the range.
      const r = await this.#libc.madviseAsync(addr, len, write ? MADV_POPULATE_WRITE : MADV_POPULATE_READ);
      // EINVAL: a kernel before 5.14. Read-ahead is the next best thing.
      if (r !== 0 && !this.#closed) await this.#libc.madviseAsync(addr, len, MADV_WILLNEED);
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const old = this.#chunks;
    this.#chunks = [];
    this.#size = 0;
    this.#retire(old);
    // An fdatasync still running on a thread closes it when it is done (see syncAsync).
    this.#fdSyncs.close();
  }
}
