/**
 * Cluster mode: a request for a tenant this node does not hold is forwarded to the node that
 * does (the holder named in the tenant's lease carries its advertised URL, cluster/node.ts).
 *
 * Forwarded, not redirected (307): a client talks to one address (a load balancer in front of
 * every node, or any node) and never needs to reach the others; a body is streamed once, as it
 * comes (a 307 makes the client send it again, and fetch() cannot follow a redirect with a
 * streamed body at all); an RFC 9421 signature over @authority or @target-uri still verifies,
 * because the original Host is kept. The holder checks the credentials, as it would for a
 * request sent to it directly: it alone keeps the signed-request counters. The cost is one more
 * hop on loopback or the local network for 2 of 3 requests, bodies included.
 *
 * Bytes pass through untouched both ways (node:http, not fetch(), which would decode a gzip
 * answer and drop its Content-Encoding meaning). A request that was already forwarded once
 * (X-Tlog-Forwarded-By) and finds the tenant not held here is not forwarded again: two nodes
 * that disagree for a moment about the holder answer 503 + Retry-After instead of looping.
 * Nobody holding the tenant (a take-over in progress, the store unreachable) is 503 +
 * Retry-After too.
 */
import http, { type IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import type { Context, MiddlewareHandler } from 'hono';
import type { TenantRoute } from '../cluster/node.js';
import { TlogError, ErrorCode } from '../errors.js';
import { incomingOf } from './node-io.js';

export const FORWARDED_BY = 'x-tlog-forwarded-by';

/** RFC 9110 7.6.1: connection-specific fields, never forwarded. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });

const TENANT_PREFIX = /^\/([a-z0-9][a-z0-9_-]{0,62})\//;

/** The tenant a request names: its path prefix, else X-Module-ID (app.ts tenantOf decides conflicts). */
function requestTenant(c: Context): string | undefined {
  const m = TENANT_PREFIX.exec(c.req.path);
  return m ? m[1] : c.req.header('x-module-id');
}

function unavailable(why: string): TlogError {
  return new TlogError(ErrorCode.unavailable, why, { retryAfterSeconds: 1 });
}

export function clusterRouting(
  route: (tenant: string) => TenantRoute | null,
  selfUrl: () => string,
  holderUnreachable: (tenant: string) => void = () => {},
): MiddlewareHandler {
  return async (c, next) => {
    const self = selfUrl();
    const tenant = requestTenant(c);
    const r = tenant === undefined ? null : route(tenant);
    if (r === null || r.kind === 'local') return next();
    if (r.kind === 'none') throw unavailable(r.why);
    const by = c.req.header(FORWARDED_BY);
    if (by !== undefined) throw unavailable(`tenant ${tenant} is not held by this node (${self}); it was forwarded here by ${by.slice(0, 200)}`);
    return forward(c, r.url, self, () => holderUnreachable(tenant!));
  };
}

function forwardHeaders(h: IncomingHttpHeaders, self: string, client: string | undefined): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  out[FORWARDED_BY] = self;
  if (client) out['x-forwarded-for'] = h['x-forwarded-for'] ? `${h['x-forwarded-for']}, ${client}` : client;
  return out;
}

/** Streams the request to `base` (the holder) and its answer back. */
function forward(c: Context, base: string, self: string, unreachable: () => void): Promise<Response> {
  const incoming = incomingOf(c);
  if (!incoming) throw unavailable('forwarding needs the node server');
  const target = new URL(incoming.url ?? '/', base);
  return new Promise<Response>((resolve, reject) => {
    const req = http.request(
      target,
      { method: incoming.method, headers: forwardHeaders(incoming.headers, self, incoming.socket.remoteAddress), agent },
      (res) => {
        const headers = new Headers();
        const raw = res.rawHeaders;
        for (let i = 0; i + 1 < raw.length; i += 2) if (!HOP_BY_HOP.has(raw[i]!.toLowerCase())) headers.append(raw[i]!, raw[i + 1]!);
        const status = res.statusCode ?? 502;
        const empty = incoming.method === 'HEAD' || status === 204 || status === 304;
        if (empty) res.resume();
        resolve(new Response(empty ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>), { status, headers }));
      },
    );
    req.on('error', (e) => {
      unreachable();
      reject(unavailable(`the holder of this tenant (${base}) cannot be reached: ${e.message}`));
    });
    incoming.pipe(req);
  });
}
