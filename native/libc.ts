/**
 * koffi bindings of the few libc calls the log needs, loaded once at start-up.
 *
 * This is the only file that talks to koffi. If koffi cannot load (no prebuilt binary for the
 * platform, not Linux, or TLOG_NO_NATIVE=1 to force it in tests), `libc` is undefined, one
 * warning line is printed, and the rest of native/ falls back to plain-file I/O.
 *
 * Pointers are bigints (koffi 3 returns `void *` as a bigint address), so sub-range addresses
 * for msync/mlock/madvise are plain bigint arithmetic.
 */
import { readFileSync } from 'node:fs';

type KoffiModule = typeof import('koffi').default;
type Fn = (...args: unknown[]) => unknown;

/** Linux values, the same on x86-64 and arm64 (asm-generic). */
export const PROT_NONE = 0x0;
export const PROT_READ = 0x1;
export const PROT_WRITE = 0x2;
export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_FIXED = 0x10;
export const MAP_ANONYMOUS = 0x20;
export const MAP_NORESERVE = 0x4000;
export const MS_SYNC = 4;
export const MADV_NORMAL = 0;
export const MADV_RANDOM = 1;
export const MADV_SEQUENTIAL = 2;
export const MADV_WILLNEED = 3;
/** Linux 5.14+: fault the range in (readable / writable) now, as accesses would. */
export const MADV_POPULATE_READ = 22;
export const MADV_POPULATE_WRITE = 23;
export const F_OFD_SETLK = 37;
export const F_RDLCK = 0;
export const F_WRLCK = 1;
export const F_UNLCK = 2;
export const SEEK_SET = 0;
const SC_PAGESIZE = 30;
/** mmap returns (void *)-1 on failure. */
export const MAP_FAILED = 0xffff_ffff_ffff_ffffn;

/** The bound calls. Addresses are bigints; sizes and offsets are numbers. */
export interface Libc {
  koffi: KoffiModule;
  pageSize: number;
  mmap(addr: bigint | null, length: number, prot: number, flags: number, fd: number, offset: number): bigint;
  /** mmap on a koffi worker thread: resolves with its result (MAP_FAILED on failure). */
  mmapAsync(addr: bigint, length: number, prot: number, flags: number, fd: number, offset: number): Promise<bigint>;
  munmap(addr: bigint, length: number): number;
  msync(addr: bigint, length: number, flags: number): number;
  madvise(addr: bigint, length: number, advice: number): number;
  /** madvise on a koffi worker thread: resolves with its return value (errno is that thread's). */
  madviseAsync(addr: bigint, length: number, advice: number): Promise<number>;
  mlock(addr: bigint, length: number): number;
  munlock(addr: bigint, length: number): number;
  fdatasync(fd: number): number;
  fsync(fd: number): number;
  /** Returns 0 or an error number (it does not set errno). */
  posix_fallocate(fd: number, offset: number, length: number): number;
  /** posix_fallocate on a koffi worker thread: resolves with 0 or an error number. */
  posixFallocateAsync(fd: number, offset: number, length: number): Promise<number>;
  ftruncate(fd: number, length: number): number;
  /** fcntl(fd, cmd, struct flock *): the struct is a 32-byte Buffer, see flockBuffer. */
  fcntlLock(fd: number, cmd: number, flock: Buffer): number;
  /** errno of the last failed call on this thread: read it right after a -1 return. */
  errno(): number;
  /** ArrayBuffer over [addr, addr+length): only mmap-file.ts may call this. */
  view(addr: bigint, length: number): ArrayBuffer;
}

function bind(koffi: KoffiModule): Libc {
  const lib = koffi.load('libc.so.6');
  const f = (decl: string): Fn => lib.func(decl) as Fn;
  const mmap = lib.func('mmap', 'void *', ['uintptr_t', 'size_t', 'int', 'int', 'int', 'int64_t']) as Fn;
  const munmap = f('int munmap(uintptr_t addr, size_t length)');
  const msync = f('int msync(uintptr_t addr, size_t length, int flags)');
  const madvise = f('int madvise(uintptr_t addr, size_t length, int advice)');
  const mlock = f('int mlock(uintptr_t addr, size_t length)');
  const munlock = f('int munlock(uintptr_t addr, size_t length)');
  const fdatasync = f('int fdatasync(int fd)');
  const fsync = f('int fsync(int fd)');
  const posixFallocate = f('int posix_fallocate(int fd, int64_t offset, int64_t length)');
  const ftruncate = f('int ftruncate(int fd, int64_t length)');
  const fcntl = f('int fcntl(int fd, int cmd, ...)');
  const sysconf = f('long sysconf(int name)');
  const pageSize = Number(sysconf(SC_PAGESIZE));
  if (!(pageSize >= 4096 && (pageSize & (pageSize - 1)) === 0)) {
    throw new Error(`sysconf(_SC_PAGESIZE) returned ${pageSize}`);
  }
  return {
    koffi,
    pageSize,
    mmap: (addr, length, prot, flags, fd, offset) => BigInt(mmap(addr ?? 0n, length, prot, flags, fd, offset) as bigint | number),
    mmapAsync: (addr, length, prot, flags, fd, offset) =>
      new Promise((resolve, reject) => {
        (mmap as Fn & { async: (...a: unknown[]) => void }).async(addr, length, prot, flags, fd, offset, (err: unknown, r: bigint | number) =>
          err ? reject(err as Error) : resolve(BigInt(r)),
        );
      }),
    munmap: (addr, length) => munmap(addr, length) as number,
    msync: (addr, length, flags) => msync(addr, length, flags) as number,
    madvise: (addr, length, advice) => madvise(addr, length, advice) as number,
    madviseAsync: (addr, length, advice) =>
      new Promise((resolve, reject) => {
        (madvise as Fn & { async: (...a: unknown[]) => void }).async(addr, length, advice, (err: unknown, r: number) =>
          err ? reject(err as Error) : resolve(r),
        );
      }),
    mlock: (addr, length) => mlock(addr, length) as number,
    munlock: (addr, length) => munlock(addr, length) as number,
    fdatasync: (fd) => fdatasync(fd) as number,
    fsync: (fd) => fsync(fd) as number,
    posix_fallocate: (fd, offset, length) => posixFallocate(fd, offset, length) as number,
    posixFallocateAsync: (fd, offset, length) =>
      new Promise((resolve, reject) => {
        // posix_fallocate returns its error instead of setting errno, so the result says it all.
        (posixFallocate as Fn & { async: (...a: unknown[]) => void }).async(fd, offset, length, (err: unknown, r: number) =>
          err ? reject(err as Error) : resolve(r),
        );
      }),
    ftruncate: (fd, length) => ftruncate(fd, length) as number,
    fcntlLock: (fd, cmd, flock) => fcntl(fd, cmd, 'void *', flock) as number,
    errno: () => koffi.errno(),
    view: (addr, length) => koffi.view(addr, length),
  };
}

/** struct flock for F_OFD_SETLK: 32 bytes, same offsets on x86-64 and arm64. */
export function flockBuffer(type: number): Buffer {
  const b = Buffer.alloc(32);
  b.writeInt16LE(type, 0); // l_type
  b.writeInt16LE(SEEK_SET, 2); // l_whence
  b.writeBigInt64LE(0n, 8); // l_start: from the first byte...
  b.writeBigInt64LE(0n, 16); // l_len: ...to the end of the file, however far it grows
  b.writeInt32LE(0, 24); // l_pid must be 0 for OFD locks
  return b;
}

async function load(): Promise<{ libc: Libc | undefined; reason: string | undefined }> {
  if (process.env.TLOG_NO_NATIVE === '1') return { libc: undefined, reason: 'TLOG_NO_NATIVE=1' };
  if (process.platform !== 'linux') return { libc: undefined, reason: `platform ${process.platform} is not linux` };
  if (process.arch !== 'x64' && process.arch !== 'arm64') {
    // struct flock and the mmap flag values above are only checked for these two.
    return { libc: undefined, reason: `arch ${process.arch} is not x64 or arm64` };
  }
  try {
    const koffi = (await import('koffi')).default;
    return { libc: bind(koffi), reason: undefined };
  } catch (e) {
    return { libc: undefined, reason: `koffi did not load: ${(e as Error).message.split('\n')[0]}` };
  }
}

const loaded = await load();

/** The bindings, or undefined when running on the plain-file fallback. */
export const libc: Libc | undefined = loaded.libc;
/** Why the fallback is in use, or undefined when koffi loaded. */
export const nativeUnavailableReason: string | undefined = loaded.reason;

if (nativeUnavailableReason !== undefined) {
  // One line at start-up, so an operator sees that durability and locking are the weaker kind.
  console.warn(`tlog: native mmap/locks unavailable (${nativeUnavailableReason}); using plain-file I/O and lock files`);
}

/** The boot id of the running kernel (Linux), or undefined elsewhere. */
export function bootId(): Uint8Array | undefined {
  try {
    const text = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim().replaceAll('-', '');
    if (!/^[0-9a-f]{32}$/.test(text)) return undefined;
    return Uint8Array.from(Buffer.from(text, 'hex'));
  } catch {
    return undefined;
  }
}
