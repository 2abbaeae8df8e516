/**
 * The single-append route served before hono (src/http/fast-append.ts): which requests it takes
 * (only those whose headers settle them; every other one is hono's, whose answers
 * socket-parity.test.ts compares), and that what it answers itself once it has taken a request
 * is what the hono route answers: refusals after the body (limits, rate, internal errors),
 * metrics and log lines.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, fastRouteOf } from '../../src/http/app.js';
import { createHttpServer } from '../../src/http/connections.js';
import { bearer, makeEnv, rawExchange, tokenAuth, type AppEnv } from './helpers.js';

let env: AppEnv;
let server: ReturnType<typeof createHttpServer>;
let base: string;
let port: number;
/** The targets of the requests the fast route took, in order. */
const taken: string[] = [];

beforeAll(async () => {
  env = await makeEnv([
    { name: 'pub' },
    { name: 'tok', auth: tokenAuth({ tokens: ['w'] }) },
    { name: 'small', limits: { maxBodyBytes: 10 } },
    { name: 'slow', limits: { ratePerSecond: 0.001, burst: 1 } },
    { name: 'old' },
  ]);
  env.registry.get('old')!.retired = true;
  const fast = fastRouteOf(env.app)!;
  expect(fast).toBeTypeOf('function');
  server = createHttpServer(env.app.fetch, {}, (req: IncomingMessage, res: ServerResponse) => {
    const took = fast(req, res);
    if (took) taken.push(`${req.method} ${req.url}`);
    return took;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  base = `http://127.0.0.1:${port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  await env.close();
});

const append = (path: string, body: string, headers: Record<string, string> = {}) => fetch(base + path, { method: 'POST', body, headers });

describe('which requests it takes', () => {
  it('appends and adds to an open tenant, and with an accepted token', async () => {
    taken.length = 0;
    expect((await append('/pub/append', 'a')).status).toBe(200);
    expect((await append('/pub/add', 'b')).status).toBe(200);
    expect((await append('/tok/append', 'c', bearer('w'))).status).toBe(200);
    expect(taken).toEqual(['POST /pub/append', 'POST /pub/add', 'POST /tok/append']);
  });

  it.each([
    ['no credentials', '/tok/append', {}, 401],
    ['a token not accepted', '/tok/append', bearer('nope'), 401],
    ['a signed request', '/tok/append', { 'signature-input': 'tlog=();created=1', signature: 'tlog=:AAAA:' }, 401],
    ['the deprecated signature headers', '/tok/append', { 'x-tlog-client': 'c' }, 401],
    ['a retired tenant', '/old/append', {}, 410],
    ['an unknown tenant', '/nope/append', {}, 404],
    ['X-Module-ID', '/pub/append', { 'x-module-id': 'pub' }, 200],
    ['a query', '/pub/append?proofs=1', {}, 200],
    ['a declared length over the limit', '/small/append', {}, 413],
    ['another route', '/pub/append-batch', {}, 400],
  ] as const)('leaves to hono: %s', async (_name, path, headers, status) => {
    taken.length = 0;
    const r = await append(path, path === '/small/append' ? 'x'.repeat(11) : `left ${path} ${JSON.stringify(headers)}`, headers);
    expect(r.status, await r.text()).toBe(status);
    expect(taken).toEqual([]);
  });
});

it('leaves to hono while the service stops: 503, Connection: close, nothing appended', async () => {
  let stopping = false;
  const app = createApp(env.registry, { logger: env.logger, metrics: env.metrics, stopping: () => stopping });
  const fast = fastRouteOf(app)!;
  const took: string[] = [];
  const s = createHttpServer(app.fetch, {}, (req: IncomingMessage, res: ServerResponse) => {
    const t = fast(req, res);
    if (t) took.push(`${req.method} ${req.url}`);
    return t;
  });
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  try {
    const url = `http://127.0.0.1:${(s.address() as AddressInfo).port}/pub/append`;
    expect((await fetch(url, { method: 'POST', body: 'before the stop' })).status).toBe(200);
    expect(took).toEqual(['POST /pub/append']);
    stopping = true;
    const size = env.registry.get('pub')!.log.treeSize;
    const r = await fetch(url, { method: 'POST', body: 'after the stop' });
    expect(r.status).toBe(503);
    expect(r.headers.get('connection')).toBe('close');
    expect(took).toEqual(['POST /pub/append']);
    expect(env.registry.get('pub')!.log.treeSize).toBe(size);
  } finally {
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
});

describe('what it answers itself', () => {
  it('a rate limit passed: 429 with Retry-After, the JSON error, counted under the route', async () => {
    taken.length = 0;
    expect((await append('/slow/append', 'first')).status).toBe(200);
    const r = await append('/slow/append', 'second');
    expect(r.status).toBe(429);
    expect(r.headers.get('retry-after')).toMatch(/^[1-9][0-9]*$/);
    expect(r.headers.get('content-type')).toBe('application/json');
    expect(r.headers.get('access-control-allow-origin')).toBe('*');
    expect(r.headers.get('x-request-id')).toMatch(/^[0-9a-f]{16}$/);
    expect(await r.json()).toEqual({ error: 'rate limit of tenant slow exceeded for this credential', code: 'rate_limited' });
    expect(taken).toEqual(['POST /slow/append', 'POST /slow/append']);
    const metrics = await env.metrics.exposition(() => true);
    expect(metrics).toMatch(/^tlog_http_requests_total\{route="\/:tenant\/append",status="429"\} 1$/m);
  });

  it('a chunked body over the limit: 413 with Connection: close, nothing appended', async () => {
    taken.length = 0;
    const size = env.registry.get('small')!.log.treeSize;
    const a = await rawExchange(
      port,
      'POST /small/append HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n' + 'b\r\n' + 'x'.repeat(11) + '\r\n0\r\n\r\n',
    );
    expect(a.status).toBe(413);
    expect(a.headers.connection).toBe('close');
    expect(JSON.parse(a.body)).toEqual({ error: "body is over this tenant's limit of 10 bytes", code: 'too_large' });
    expect(a.closed).toBe(true);
    expect(taken).toEqual(['POST /small/append']);
    expect(env.registry.get('small')!.log.treeSize).toBe(size);
  });

  it('an internal error: 500 that says nothing more, and a log line with the error and the request id', async () => {
    const log = env.registry.get('pub')!.log;
    const real = log.append;
    log.append = () => Promise.reject(new Error('boom from the engine'));
    try {
      taken.length = 0;
      const r = await append('/pub/append', 'never', { 'x-request-id': 'boom-1' });
      expect(r.status).toBe(500);
      expect(await r.json()).toEqual({ error: 'internal error', code: 'internal' });
      expect(taken).toEqual(['POST /pub/append']);
      const line = env.logLines.find((l) => l.msg === 'internal error' && l.reqId === 'boom-1');
      expect((line?.err as { message?: string } | undefined)?.message).toBe('boom from the engine');
    } finally {
      log.append = real;
    }
  });

  it('the request line at info level, as hono logs it', async () => {
    const r = await append('/pub/add', 'logged', { 'x-request-id': 'line-1', traceparent: `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01` });
    expect(r.status).toBe(200);
    const line = env.logLines.find((l) => l.msg === 'request' && l.reqId === 'line-1');
    expect(line).toMatchObject({ method: 'POST', path: '/pub/add', status: 200, tenant: 'pub', traceId: 'a'.repeat(32), parentId: 'b'.repeat(16) });
    expect(line!.ms).toBeTypeOf('number');
  });
});
