/**
 * Errors talking to the remote services anchoring depends on (Rekor, the timestamp authority):
 * whether a later attempt may succeed, and when at the earliest (Retry-After).
 */
import { TlogError, ErrorCode } from '../errors.js';

/** A failed request to Rekor or to the TSA; the message names which. */
export class RekorError extends TlogError {
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly status?: number,
    readonly retryAfterMs?: number,
    options?: { cause?: unknown },
  ) {
    super(retryable ? ErrorCode.unavailable : ErrorCode.badInput, message, options);
  }
}

export const isRetryableStatus = (s: number) => s === 408 || s === 429 || s >= 500;

/** Rejects after ms with a retryable timeout; the loser's request is left to its own timeout. */
export function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RekorError(`${what}: no answer within ${ms} ms`, true)), ms);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

/**
 * Maps what @sigstore/sign throws (InternalError wrapping HTTPError or a fetch error) to a
 * RekorError; `who` names the service in the message ("rekor <url>", "tsa <url>").
 */
export function classifySigstoreError(e: unknown, who: string): RekorError {
  if (e instanceof RekorError) return e;
  const cause = (e as { cause?: unknown })?.cause ?? e;
  const status = (cause as { statusCode?: unknown })?.statusCode;
  const msg = (cause as Error)?.message ?? String(cause);
  if (typeof status === 'number') {
    return new RekorError(`${who}: HTTP ${msg}`, isRetryableStatus(status), status, undefined, { cause: e });
  }
  // No HTTP status: connection refused or reset, DNS, a timeout. All worth retrying.
  return new RekorError(`${who}: ${msg}`, true, undefined, undefined, { cause: e });
}
