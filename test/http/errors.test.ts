/**
 * Every error status through app.request(): 400 for bad and non-canonical parameters and bodies,
 * 404 for unknown tenants and routes (JSON errors), 413 for entries and bodies over the limits,
 * 429 with Retry-After for rate limits, 503 with Retry-After for back-pressure. Nothing is queued
 * by a refused request.
 */
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, TlogError } from '../../src/errors.js';
import { errorResponse } from '../../src/http/errors.js';
import { bundleBody, get, json, makeEnv, post, type AppEnv } from './helpers.js';

let env: AppEnv;

beforeAll(async () => {
  env = await makeEnv([
    { name: 'main' },
    { name: 'small', limits: { maxBodyBytes: 1000 } },
    { name: 'slow', limits: { ratePerSecond: 1, burst: 3 } },
    { name: 'tight', limits: { maxPending: 4 } },
  ]);
  // Some entries to ask about.
  await post(env.app, '/main/append-batch', bundleBody(Array.from({ length: 10 }, (_, i) => Buffer.from(`e${i}`))));
});
afterAll(() => env.close());

async function expectError(r: Response | Promise<Response>, status: number, code?: string): Promise<{ error: string; code: string }> {
  const res = await r;
  const body = await res.text();
  expect(res.status, body).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  const j = JSON.parse(body) as { error: string; code: string };
  expect(typeof j.error).toBe('string');
  if (code) expect(j.code).toBe(code);
  return j;
}

describe('400: bad parameters and bodies', () => {
  const badInts = ['', '-1', '01', '00', '+1', '1e3', '0x10', ' 1', '1 ', '1.0', '1.5', 'NaN', 'Infinity', '99999999999999999', '٣', '1%00'];
  it.each([
    'read_since?index=',
    'read_since?limit=',
    'proof/inclusion?index=0&tree_size=',
    'proof/inclusion?index=',
    'proof/consistency?old=',
    'proof/consistency?old=1&new=',
  ])('non-canonical integers in %s', async (q) => {
    for (const v of badInts) await expectError(get(env.app, `/main/${q}${encodeURIComponent(v)}`), 400, 'bad_input');
  });

  it('a canonical integer of 16 digits above 2^53 - 1 is too large; 17 digits are not an integer we read', async () => {
    expect((await expectError(get(env.app, '/main/read_since?index=9007199254740992'), 400, 'bad_input')).error).toBe('index is too large');
    expect((await expectError(get(env.app, '/main/read_since?index=9999999999999999'), 400, 'bad_input')).error).toBe('index is too large');
    expect((await expectError(get(env.app, '/main/read_since?index=10000000000000000'), 400, 'bad_input')).error).toBe(
      'index must be a canonical non-negative integer',
    );
  });

  it('missing required parameters, limit 0, out-of-range indexes and sizes', async () => {
    await expectError(get(env.app, '/main/proof/inclusion'), 400, 'bad_input');
    await expectError(get(env.app, '/main/proof/consistency'), 400, 'bad_input');
    await expectError(get(env.app, '/main/read_since?index=0&limit=0'), 400, 'bad_input');
    await expectError(get(env.app, '/main/read_since?index=11'), 400);
    await expectError(get(env.app, '/main/proof/inclusion?index=10'), 400);
    await expectError(get(env.app, '/main/proof/inclusion?index=3&tree_size=3'), 400);
    await expectError(get(env.app, '/main/proof/inclusion?index=0&tree_size=11'), 400);
    await expectError(get(env.app, '/main/proof/consistency?old=5&new=4'), 400);
    await expectError(get(env.app, '/main/proof/consistency?old=11'), 400);
    await expectError(get(env.app, '/main/proof/consistency?old=1&new=9007199254740991'), 400);
    // A huge limit is clamped, not refused.
    expect((await get(env.app, '/main/read_since?index=0&limit=9007199254740991')).status).toBe(200);
  });

  it('by-hash wants 64 lowercase hex digits', async () => {
    for (const h of ['abc', 'A'.repeat(64), 'g'.repeat(64), '0'.repeat(63), '0'.repeat(65), `${'0'.repeat(62)}%20`]) {
      const r = await get(env.app, `/main/proof/by-hash/${h}`);
      expect([400, 404], h).toContain(r.status);
      expect(r.status === 400 || h.length !== 64).toBe(true);
    }
    await expectError(get(env.app, `/main/proof/by-hash/${'A'.repeat(64)}`), 400, 'bad_input');
  });

  it('empty entries, malformed batches and unknown content types', async () => {
    await expectError(post(env.app, '/main/append', new Uint8Array(0)), 400, 'bad_input');
    await expectError(post(env.app, '/main/append-batch', new Uint8Array(0)), 400, 'bad_input');
    await expectError(post(env.app, '/main/append-batch', Uint8Array.of(0, 5, 1, 2)), 400, 'bad_input'); // truncated entry
    await expectError(post(env.app, '/main/append-batch', Uint8Array.of(0, 1, 9, 0)), 400, 'bad_input'); // truncated length
    await expectError(post(env.app, '/main/append-batch', Uint8Array.of(0, 0)), 400, 'bad_input'); // empty entry
    const J = { 'content-type': 'application/json' };
    await expectError(post(env.app, '/main/append-batch', '{', J), 400, 'bad_input');
    await expectError(post(env.app, '/main/append-batch', '{"entries": 5}', J), 400, 'bad_input');
    await expectError(post(env.app, '/main/append-batch', '"abc"', J), 400, 'bad_input');
    await expectError(post(env.app, '/main/append-batch', 'null', J), 400, 'bad_input');
    await expectError(post(env.app, '/main/append-batch', '[]', J), 400, 'bad_input');
    await expectError(post(env.app, '/main/append-batch', '[1]', J), 400, 'bad_input');
    await expectError(post(env.app, '/main/append-batch', '["not base64!"]', J), 400, 'bad_input');
    await expectError(post(env.app, '/main/append-batch', '["YQ"]', J), 400, 'bad_input'); // unpadded
    await expectError(post(env.app, '/main/append-batch', '[""]', J), 400, 'bad_input'); // empty entry
    await expectError(post(env.app, '/main/append-batch', 'x', { 'content-type': 'text/plain' }), 400, 'bad_input');
    // Nothing of the refused requests was appended.
    expect(env.registry.get('main')!.log.treeSize).toBe(10);
  });

  it('a batch with one bad entry queues none of it', async () => {
    const J = { 'content-type': 'application/json' };
    await expectError(post(env.app, '/main/append-batch', JSON.stringify(['b2s=', '', 'b2s=']), J), 400);
    await expectError(post(env.app, '/main/append-batch', JSON.stringify(['bmV3', Buffer.alloc(65536).toString('base64')]), J), 413);
    expect(env.registry.get('main')!.log.treeSize).toBe(10);
  });
});

describe('404: unknown tenants and routes', () => {
  it('unknown tenant: JSON 404 on every route', async () => {
    for (const p of [
      '/nobody/checkpoint',
      '/nobody/tile/0/000',
      '/nobody/read_since',
      '/nobody/proof/inclusion?index=0',
      `/nobody/proof/by-hash/${'0'.repeat(64)}`,
      '/nobody/proof/consistency?old=0',
    ]) {
      const j = await expectError(get(env.app, p), 404, 'not_found');
      expect(j.error).toMatch(/unknown tenant|no such/);
    }
    await expectError(post(env.app, '/nobody/append', 'x'), 404, 'not_found');
    await expectError(post(env.app, '/nobody/append-batch', bundleBody([Buffer.from('x')])), 404, 'not_found');
    // Names that cannot be tenants.
    for (const p of ['/MAIN/checkpoint', '/-main/checkpoint', '/main%00/checkpoint', `/${'a'.repeat(64)}/checkpoint`]) {
      expect((await get(env.app, p)).status, p).toBe(404);
    }
  });

  it('unknown routes and wrong methods: JSON 404, no Cache-Control', async () => {
    // (GET / and GET /main/ are the pages: page.test.ts.)
    for (const [m, p] of [
      ['POST', '/'],
      ['GET', '/main'],
      ['POST', '/main/'],
      ['GET', '/main/append'],
      ['PUT', '/main/append'],
      ['DELETE', '/main/checkpoint'],
      ['POST', '/main/checkpoint'],
      ['GET', '/main/tile'],
      ['GET', '/main/nothing'],
      ['POST', '/admin/reload'],
    ] as const) {
      const r = await env.app.request(p, { method: m, ...(m === 'GET' ? {} : { body: 'x' }) });
      expect([404, 405], `${m} ${p}`).toContain(r.status);
      expect(r.headers.get('cache-control'), `${m} ${p}`).toBeNull();
      expect(r.headers.get('content-type')).toMatch(/^application\/json/);
    }
  });
});

describe('413: too large', () => {
  it('an entry over 65535 bytes, in /append and in a batch', async () => {
    await expectError(post(env.app, '/main/append', new Uint8Array(65536)), 413, 'too_large');
    expect((await post(env.app, '/main/append', new Uint8Array(65535).fill(7))).status).toBe(200);
    await expectError(
      post(env.app, '/main/append-batch', JSON.stringify([Buffer.alloc(65536, 1).toString('base64')]), { 'content-type': 'application/json' }),
      413,
      'too_large',
    );
  });

  it('a body over the tenant limit, with or without an honest Content-Length', async () => {
    await expectError(post(env.app, '/small/append', new Uint8Array(1001)), 413, 'too_large');
    expect((await post(env.app, '/small/append', new Uint8Array(1000).fill(1))).status).toBe(200);
    await expectError(post(env.app, '/small/append-batch', bundleBody([new Uint8Array(600).fill(2), new Uint8Array(600).fill(3)])), 413, 'too_large');
    // A body streamed without Content-Length is counted as it is read.
    const stream = new ReadableStream<Uint8Array>({
      start(ctl) {
        for (let i = 0; i < 5; i++) ctl.enqueue(new Uint8Array(400).fill(i + 1));
        ctl.close();
      },
    });
    const r = await env.app.request('/small/append', {
      method: 'POST',
      body: stream,
      headers: { 'content-type': 'application/octet-stream' },
      duplex: 'half',
    } as RequestInit);
    expect(r.status).toBe(413);
    expect(env.registry.get('small')!.log.treeSize).toBe(1);
  });
});

describe('429 and 503: rate limits and back-pressure, with Retry-After', () => {
  it('429 with Retry-After once a credential has used its burst; no Cache-Control', async () => {
    const statuses: number[] = [];
    let retry: string | null = null;
    for (let i = 0; i < 5; i++) {
      const r = await post(env.app, '/slow/append', `rate ${i}`);
      statuses.push(r.status);
      if (r.status === 429) {
        retry = r.headers.get('retry-after');
        expect(r.headers.get('cache-control')).toBeNull();
        expect(await json(r)).toMatchObject({ code: 'rate_limited' });
      }
    }
    expect(statuses.slice(0, 3)).toEqual([200, 200, 200]);
    expect(statuses.slice(3)).toEqual([429, 429]);
    expect(Number(retry)).toBeGreaterThanOrEqual(1);
    // A batch larger than the burst waits proportionally.
    const big = await post(env.app, '/slow/append-batch', bundleBody(Array.from({ length: 10 }, (_, i) => Buffer.from(`rb ${i}`))));
    expect(big.status).toBe(429);
    expect(Number(big.headers.get('retry-after'))).toBeGreaterThanOrEqual(9);
    expect(env.registry.get('slow')!.log.treeSize).toBe(3);
  });

  it('503 with Retry-After when more entries wait than the tenant allows', async () => {
    const batch = await post(env.app, '/tight/append-batch', bundleBody(Array.from({ length: 5 }, (_, i) => Buffer.from(`bp ${i}`))));
    expect(batch.status).toBe(503);
    expect(Number(batch.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(batch.headers.get('cache-control')).toBeNull();
    expect(await json(batch)).toMatchObject({ code: 'unavailable' });
    // Many concurrent single appends: the ones admitted all land, the rest get 503.
    const rs = await Promise.all(Array.from({ length: 60 }, (_, i) => post(env.app, '/tight/append', `concurrent ${i}`)));
    const ok = rs.filter((r) => r.status === 200).length;
    const busy = rs.filter((r) => r.status === 503);
    expect(ok + busy.length).toBe(60);
    expect(busy.length).toBeGreaterThan(0);
    for (const r of busy) expect(r.headers.get('retry-after')).toMatch(/^[1-9][0-9]*$/);
    expect(env.registry.get('tight')!.log.treeSize).toBe(ok);
  });
});

describe('Retry-After from the error itself', () => {
  /** The Retry-After of the answer to a route that throws `e`. */
  async function retryAfterOf(e: TlogError): Promise<string | null> {
    const app = new Hono();
    app.onError((err, c) => errorResponse(c, err));
    app.get('/', () => {
      throw e;
    });
    return (await app.request('/')).headers.get('retry-after');
  }

  it("is the error's retryAfterSeconds, rounded up to a whole second and at least 1", async () => {
    expect(await retryAfterOf(new TlogError(ErrorCode.rateLimited, 'slow down', { retryAfterSeconds: 2.5 }))).toBe('3');
    expect(await retryAfterOf(new TlogError(ErrorCode.unavailable, 'busy', { retryAfterSeconds: 7 }))).toBe('7');
    expect(await retryAfterOf(new TlogError(ErrorCode.unavailable, 'busy', { retryAfterSeconds: 0.2 }))).toBe('1');
  });

  it("falls back to the code's default when the error does not say, and is absent below 429", async () => {
    expect(await retryAfterOf(new TlogError(ErrorCode.unavailable, 'busy'))).toBe('1');
    expect(await retryAfterOf(new TlogError(ErrorCode.diskFull, 'no room'))).toBe('10');
    expect(await retryAfterOf(new TlogError(ErrorCode.badInput, 'bad', { retryAfterSeconds: 5 }))).toBeNull();
  });
});
