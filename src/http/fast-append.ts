/**
 * The hot write routes, `POST /<t>/append` and `POST /<t>/add`, served from node's request and
 * response before hono sees them. Per single append, hono's request and context objects, its
 * router and middleware chain and node-server's response handling cost about as much CPU as the
 * rest of the HTTP layer; these two routes answer fixed shapes and need none of it.
 *
 * Only requests whose headers alone settle them take this path: an exact `/<t>/append` or
 * `/<t>/add` target (no query), a known tenant that takes appends, a bearer token it accepts or
 * the open tenant without credentials, a declared size within the limits, no X-Module-ID, and
 * the service neither stopping nor a cluster node nor tracing. Everything else, refusals before
 * the body included, goes on to hono (api.ts), which answers it; nothing has been read then, so
 * both paths give the same answers. From the body on, this file does what api.ts's append route
 * does, with the same functions: the body within the limits and the in-flight budget, the
 * pending and rate limits, the append, the answer (answer.ts), the same error JSON and headers
 * (errors.ts), X-Request-Id, CORS, the request metric under the route's pattern, the log line.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger as PinoLogger } from 'pino';
import type { AppendResult } from '../log/log.js';
import type { Tenant, TenantRegistry } from '../tenants/registry.js';
import { appendAnswerParts, type AnswerParts } from './answer.js';
import { admit, BodyGrowth, entryLimit } from './api.js';
import { headerOnlyWriteCredential } from './auth.js';
import type { BodyBudget, BodyLease } from './body-budget.js';
import { errorAnswer, internalErrorFields, statusOf } from './errors.js';
import { bodyPendingOn, lingerAfterAnswer, readIncoming } from './node-io.js';
import { logRequest, requestLogging, type Metrics, type RequestLogging } from './observe.js';

/** Serves the request and returns true, or returns false having done nothing (hono serves it). */
export type FastRoute = (incoming: IncomingMessage, outgoing: ServerResponse) => boolean;

/** The targets served here; the tenant pattern is app.ts's. */
const HOT_TARGET = /^\/([a-z0-9][a-z0-9_-]{0,62})\/(append|add)$/;

const JSON_TYPE = 'application/json';
/** What hono's c.text() sets. */
const TEXT_TYPE = 'text/plain; charset=UTF-8';

export interface FastAppendOptions {
  readonly tenants: TenantRegistry;
  readonly metrics: Metrics;
  readonly bodies: BodyBudget;
  readonly logger: PinoLogger;
  readonly stopping?: () => boolean;
}

export function fastAppend(o: FastAppendOptions): FastRoute {
  return (incoming, outgoing) => {
    if (incoming.method !== 'POST' || o.stopping?.()) return false;
    const target = HOT_TARGET.exec(incoming.url ?? '');
    if (target === null) return false;
    const h = incoming.headers;
    if (h.host === undefined || h['x-module-id'] !== undefined) return false;
    const t = o.tenants.get(target[1]!);
    if (t === undefined || t.retired) return false;
    const credential = headerOnlyWriteCredential(t, h, incoming.socket?.remoteAddress);
    if (credential === null) return false;
    const limit = entryLimit(t);
    const declared = Number(h['content-length'] ?? NaN);
    if (declared > limit.max) return false;
    const lease = o.bodies.lease();
    if (declared > 0 && !lease.cover(declared)) {
      lease.release();
      return false;
    }
    // From here on the request is ours.
    const t0 = performance.now();
    const logging = requestLogging(o.logger, h['x-request-id'] as string | undefined, h.traceparent as string | undefined);
    void append(o, incoming, outgoing, { t, credential, lease, growth: new BodyGrowth(limit, lease), add: target[2] === 'add', logging, t0 });
    return true;
  };
}

interface Request {
  readonly t: Tenant;
  readonly credential: string;
  readonly lease: BodyLease;
  readonly growth: BodyGrowth;
  /** /add (the index as text), else /append (the JSON answer). */
  readonly add: boolean;
  readonly logging: RequestLogging;
  readonly t0: number;
}

/** api.ts's append route from the body on, then what observe() does when a request ends. Never rejects. */
async function append(o: FastAppendOptions, incoming: IncomingMessage, outgoing: ServerResponse, r: Request): Promise<void> {
  const { t, logging } = r;
  let status = 500;
  let body: string | AnswerParts;
  // All the answer's headers, given to writeHead at once (node then sets none of them one by one).
  const headers: Record<string, string | number> = { 'X-Request-Id': logging.requestId, 'Access-Control-Allow-Origin': '*', 'Content-Type': JSON_TYPE };
  try {
    const entry = await readIncoming(incoming, r.growth.mayGrow);
    if (entry === null) {
      headers.Connection = 'close';
      lingerAfterAnswer(incoming, outgoing);
      throw r.growth.refusal!;
    }
    const release = admit(t, r.credential, 1);
    let pending: Promise<AppendResult>;
    let queuedAt: number;
    try {
      queuedAt = performance.now();
      pending = t.log.append(entry);
    } finally {
      release();
    }
    const result = await pending;
    o.metrics.observeAppend((performance.now() - queuedAt) / 1000);
    o.metrics.countAppends(t.name, result.duplicate ? 0 : 1, result.duplicate ? 1 : 0);
    status = 200;
    if (r.add) {
      headers['Content-Type'] = TEXT_TYPE;
      body = String(result.index);
    } else body = appendAnswerParts(result);
  } catch (e) {
    status = statusOf(e);
    // A refusal while the body still comes closes the connection (app.ts's onError does the same).
    if (bodyPendingOn(incoming)) {
      headers.Connection = 'close';
      lingerAfterAnswer(incoming, outgoing);
    }
    const a = errorAnswer(e, (err) => logging.log.error({ ...(logging.requestLines ? {} : logging.fields), ...internalErrorFields(err) }, 'internal error'));
    Object.assign(headers, a.headers);
    headers['Content-Type'] = JSON_TYPE;
    body = JSON.stringify(a.body);
  } finally {
    r.lease.release();
  }
  o.metrics.countRequest(r.add ? '/:tenant/add' : '/:tenant/append', status);
  if (logging.requestLines) logRequest(logging.log, 'POST', incoming.url!, status, r.t0, t.name);
  if (o.stopping?.()) headers.Connection = 'close';
  if (outgoing.destroyed) return;
  if (typeof body === 'string') {
    headers['Content-Length'] = Buffer.byteLength(body);
    outgoing.writeHead(status, headers);
    outgoing.end(body);
    return;
  }
  // Node corks the socket from the first write to the end: one writev for the headers and the parts.
  headers['Content-Length'] = body.length;
  outgoing.writeHead(status, headers);
  outgoing.write(body.head);
  outgoing.write(body.checkpoint);
  outgoing.end(body.tail);
}
