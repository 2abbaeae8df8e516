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

/** What an error answer says: its status, the headers it adds, and the JSON body. */
export interface ErrorAnswer {
  readonly status: ContentfulStatusCode;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: { readonly error: string; readonly code: string };
}

/**
 * The answer to `e`: a TlogError's status and message, with Retry-After on 429 and 503 and
 * WWW-Authenticate on 401; anything else is a 500 that says nothing more (`logInternal` gets it).
 */
export function errorAnswer(e: unknown, logInternal: (err: unknown) => void): ErrorAnswer {
  if (isTlogError(e)) {
    const status = STATUS[e.code] ?? 500;
    const headers: Record<string, string> = {};
    if (status === 503 || status === 429) {
      const wait = e.retryAfterSeconds ?? DEFAULT_RETRY_AFTER[e.code] ?? 1;
      headers['Retry-After'] = String(Math.max(1, Math.ceil(wait)));
    }
    if (status === 401) headers['WWW-Authenticate'] = 'Bearer, TlogSig';
    if (status !== 500) return { status, headers, body: { error: e.message, code: e.code } };
  }
  logInternal(e);
  return { status: 500, headers: {}, body: { error: 'internal error', code: 'internal' } };
}

/** The log line of an internal error (its message and stack; never sent to the client). */
export function internalErrorFields(e: unknown): { err: unknown } {
  return { err: e instanceof Error ? { message: e.message, stack: e.stack } : String(e) };
}

export function errorResponse(c: Context, e: unknown): Response {
  const a = errorAnswer(e, (err) => c.get('log')?.error({ ...c.get('logFields'), ...internalErrorFields(err) }, 'internal error'));
  for (const [name, value] of Object.entries(a.headers)) c.header(name, value);
  return c.json(a.body, a.status);
}

export function jsonError(c: Context, status: ContentfulStatusCode, code: string, error: string): Response {
  return c.json({ error, code }, status);
}
