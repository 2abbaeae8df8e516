/**
 * The one error type of the log. `code` is stable and machine-readable; the HTTP layer maps
 * codes to statuses in one place. Messages are lowercase and carry their context
 * (`write tile 0/x001/002: ENOSPC`).
 *
 * Broken internal arithmetic is not a TlogError: it throws a plain Error and is never caught.
 */
export const ErrorCode = {
  /** The caller sent something malformed (HTTP 400). */
  badInput: 'bad_input',
  /** An entry or body is over a limit (HTTP 413). */
  tooLarge: 'too_large',
  /** Something asked for does not exist (HTTP 404). */
  notFound: 'not_found',
  /** A state conflict, such as a size beyond the tree (HTTP 409 / 400 by context). */
  conflict: 'conflict',
  /** A signature or proof did not verify. */
  verification: 'verification_failed',
  /** Missing or wrong credentials, or a replayed signed request (HTTP 401). */
  unauthorized: 'unauthorized',
  /** Over a rate limit (HTTP 429). */
  rateLimited: 'rate_limited',
  /** The client did not send its request in time (HTTP 408). */
  timeout: 'request_timeout',
  /** The log is not accepting work right now (HTTP 503). */
  unavailable: 'unavailable',
  /** On-disk state contradicts itself: the log refuses to run rather than guess. */
  corrupt: 'corrupt_state',
  /** An immutable file exists with other bytes: a bug or tampering, the log stops. */
  immutableConflict: 'immutable_conflict',
  /** Another process holds the log. */
  locked: 'locked',
  /** An I/O call failed. */
  io: 'io_error',
  /**
   * The disk (or the quota) holding the log has no room: writes are refused until space
   * returns, then go on by themselves (HTTP 503 with Retry-After). See isDiskFull().
   */
  diskFull: 'disk_full',
  /** The tenant is retired: it takes no more appends; everything it holds is still served (HTTP 410). */
  retired: 'tenant_retired',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class TlogError extends Error {
  readonly code: ErrorCode;
  /**
   * Seconds the caller should wait before trying again (rate limits, back-pressure); HTTP sends
   * it as Retry-After (RFC 9110, section 10.2.3). Unset: the HTTP layer's default for the code.
   */
  readonly retryAfterSeconds?: number;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; retryAfterSeconds?: number }) {
    super(message, options);
    this.code = code;
    this.name = 'TlogError';
    if (options?.retryAfterSeconds !== undefined) this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

export function isTlogError(e: unknown, code?: ErrorCode): e is TlogError {
  return e instanceof TlogError && (code === undefined || e.code === code);
}

/** errno codes that mean "no room to write": they pass once space is freed, nothing is wrong with the data. */
const NO_ROOM = new Set(['ENOSPC', 'EDQUOT']);

/**
 * The errno code (ENOSPC, EDQUOT) when `e`, or an error it wraps, is a write that failed for
 * want of space; null otherwise.
 */
export function diskFullErrno(e: unknown): string | null {
  for (let cur = e, depth = 0; cur && depth < 8; cur = (cur as { cause?: unknown }).cause, depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && NO_ROOM.has(code)) return code;
  }
  return null;
}

/** Whether `e` is (or wraps) a write refused for want of space. */
export function isDiskFull(e: unknown): boolean {
  return isTlogError(e, ErrorCode.diskFull) || diskFullErrno(e) !== null;
}

/** Wraps a Node fs error with the operation and the path it touched (code disk_full for ENOSPC, EDQUOT). */
export function ioError(op: string, path: string, e: unknown): TlogError {
  const errno = (e as NodeJS.ErrnoException)?.code ?? String(e);
  return new TlogError(NO_ROOM.has(errno) ? ErrorCode.diskFull : ErrorCode.io, `${op} ${path}: ${errno}`, { cause: e });
}

/**
 * An error's message followed by its causes' (`{ cause }`), each said once: what a person needs
 * when a wrapper says "fetch failed" and the reason is two causes down
 * (`GET http://h/checkpoint: fetch failed: connect ECONNREFUSED 127.0.0.1:8080`).
 */
export function errorChain(e: unknown): string {
  const parts: string[] = [];
  let cur: unknown = e;
  for (let depth = 0; cur !== undefined && cur !== null && depth < 8; depth++) {
    const inner = cur instanceof AggregateError ? cur.errors.map((x) => (x instanceof Error ? x.message : String(x))).filter((m) => m !== '') : [];
    const msg = cur instanceof Error ? cur.message || inner.join('; ') : String(cur);
    if (msg !== '' && !parts.some((p) => p.includes(msg))) parts.push(msg);
    cur = cur instanceof Error ? cur.cause : undefined;
  }
  return parts.join(': ');
}

/** What the errno codes a person meets most often mean, in words. */
const ERRNO_WORDS: Readonly<Record<string, string>> = {
  ENOENT: 'no such file or directory',
  EEXIST: 'already exists',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'is a directory',
  ENOTDIR: 'a part of the path is not a directory',
  ENOTEMPTY: 'directory not empty',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only file system',
  ELOOP: 'too many symbolic links',
  ENAMETOOLONG: 'name too long',
};

/**
 * A Node file-system error in words (`no such file or directory`), for one readable line instead
 * of `ENOENT: no such file or directory, open '...'`; the code itself when it is a rarer one.
 */
export function errnoWords(e: unknown): string {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (typeof code === 'string') return ERRNO_WORDS[code] ?? code;
  return e instanceof Error ? e.message : String(e);
}

/**
 * For a Node file-system error (it has a code, a syscall and a path): `<path>: <what happened>`.
 * Null for anything else.
 */
export function describeFsError(e: unknown): string | null {
  const err = e as NodeJS.ErrnoException;
  if (!(err instanceof Error) || typeof err.code !== 'string' || typeof err.syscall !== 'string' || typeof err.path !== 'string') return null;
  return `${err.path}: ${errnoWords(err)}`;
}
