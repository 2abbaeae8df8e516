/**
 * Errors raised by native/: every failed system call becomes a NativeError whose message names
 * the call, the file and the errno name (`mmap index.idx: ENOMEM`), so a log line says what
 * failed where without a stack trace.
 */
import { constants as osConstants } from 'node:os';

/** errno number -> name. Several names share a number (EAGAIN/EWOULDBLOCK): the first wins. */
const ERRNO_NAMES = new Map<number, string>();
for (const [name, value] of Object.entries(osConstants.errno)) {
  if (!ERRNO_NAMES.has(value)) ERRNO_NAMES.set(value, name);
}

/** The symbolic name of an errno value (`ENOMEM`), or `errno 1234` when unknown. */
export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `errno ${errno}`;
}

/**
 * `code` is the errno name (`ENOSPC`, `EAGAIN`, ...) for failed calls, or `lock_held` when a
 * lock is taken by another process: callers branch on it, never on the message.
 */
export class NativeError extends Error {
  readonly code: string;
  readonly syscall: string;
  readonly path: string;
  readonly errno: number | undefined;
  constructor(syscall: string, path: string, code: string, errno?: number, detail?: string) {
    super(`${syscall} ${path}: ${detail ?? code}`);
    this.name = 'NativeError';
    this.code = code;
    this.syscall = syscall;
    this.path = path;
    this.errno = errno;
  }
}

/** A failed libc call that returned -1 (or an error number, for posix_fallocate). */
export function syscallError(syscall: string, path: string, errno: number): NativeError {
  const name = errnoName(errno);
  return new NativeError(syscall, path, name, errno);
}

/** Wraps an error thrown by node:fs so it reads the same as a libc failure. */
export function fsError(syscall: string, path: string, e: unknown): NativeError {
  const err = e as NodeJS.ErrnoException;
  const code = typeof err?.code === 'string' ? err.code : 'EIO';
  const errno = typeof err?.errno === 'number' ? -err.errno : undefined;
  return new NativeError(syscall, path, code, errno);
}

/** The code of the error raised when another process holds a lock. */
export const LOCK_HELD = 'lock_held';
