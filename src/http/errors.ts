/**
 * The one place that maps error codes to HTTP statuses. Every error answer is JSON
 * `{ "error": "...", "code": "..." }`; internal errors never leak their details.
 */
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { ErrorCode, isTlogError } from '../errors.js';

const STATUS: Record<string, ContentfulStatusCode> = {
  [ErrorCode.badInput]: 400,
  [ErrorCode.tooLarge]: 413,
  [ErrorCode.notFound]: 404,
  [ErrorCode.conflict]: 409,
  [ErrorCode.verification]: 422,
  [ErrorCode.unavailable]: 503,
  [ErrorCode.locked]: 503,
};

export function errorResponse(c: Context, e: unknown): Response {
  if (isTlogError(e)) {
    const status = STATUS[e.code] ?? 500;
    if (status === 503) c.header('Retry-After', '1');
    if (status === 500) return c.json({ error: 'internal error', code: e.code }, 500);
    return c.json({ error: e.message, code: e.code }, status);
  }
  return c.json({ error: 'internal error', code: 'internal' }, 500);
}

export function jsonError(c: Context, status: ContentfulStatusCode, code: string, error: string): Response {
  return c.json({ error, code }, status);
}
