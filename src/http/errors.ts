/**
 * The one place that maps error codes to HTTP statuses. Every error answer is JSON
 * `{ "error": "...", "code": "..." }`; internal errors never leak their details.
 */
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { ErrorCode, isTlogError } from '../errors.js';

const STATUS: Record<string, ContentfulStatusCode> = {
  [ErrorCode.badInput]: 400,
  [ErrorCode.unauthorized]: 401,
  [ErrorCode.notFound]: 404,
  [ErrorCode.timeout]: 408,
  [ErrorCode.conflict]: 409,
  [ErrorCode.retired]: 410,
  [ErrorCode.tooLarge]: 413,
  [ErrorCode.verification]: 422,
  [ErrorCode.rateLimited]: 429,
  [ErrorCode.unavailable]: 503,
  [ErrorCode.locked]: 503,
  [ErrorCode.diskFull]: 503,
};

/** Seconds to wait before retrying, when the error does not say: space takes longer to come back than a queue to drain. */
const DEFAULT_RETRY_AFTER: Partial<Record<string, number>> = { [ErrorCode.diskFull]: 10 };

export function statusOf(e: unknown): number {
  return isTlogError(e) ? (STATUS[e.code] ?? 500) : 500;
}

export function errorResponse(c: Context, e: unknown): Response {
  if (isTlogError(e)) {
    const status = STATUS[e.code] ?? 500;
    if (status === 503 || status === 429) {
      const wait = e.retryAfterSeconds ?? DEFAULT_RETRY_AFTER[e.code] ?? 1;
      c.header('Retry-After', String(Math.max(1, Math.ceil(wait))));
    }
    if (status === 401) c.header('WWW-Authenticate', 'Bearer, TlogSig');
    if (status !== 500) return c.json({ error: e.message, code: e.code }, status);
  }
  c.get('log')?.error({ ...c.get('logFields'), err: e instanceof Error ? { message: e.message, stack: e.stack } : String(e) }, 'internal error');
  return c.json({ error: 'internal error', code: 'internal' }, 500);
}

export function jsonError(c: Context, status: ContentfulStatusCode, code: string, error: string): Response {
  return c.json({ error, code }, status);
}
