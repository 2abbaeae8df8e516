/**
 * Who may write and read: bearer tokens (hashed in the configuration), signed requests with
 * durable per-client counters (replays, stale counters and bad signatures refused, also after a
 * restart), read tokens, per-credential rate limits, the admin route, and tenant isolation.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signRequest } from '../../src/client/signed-request.js';
import { leafHash } from '../../src/merkle/hash.js';
import { bundleBody, clientKey, get, json, makeEnv, post, tokenAuth, type AppEnv } from './helpers.js';

let env: AppEnv;
const c1 = clientKey(1);
const c2 = clientKey(2);
let reloads = 0;

beforeAll(async () => {
  env = await makeEnv(
    [
      { name: 'sec', auth: tokenAuth({ tokens: ['write-token', 'second-token'], clients: [['c1', c1.publicKey]] }), limits: { ratePerSecond: 0.001, burst: 40 } },
      { name: 'priv', auth: tokenAuth({ tokens: ['priv-writer'], readTokens: ['read-token'], clients: [['c2', c2.publicKey]] }) },
      { name: 'other', auth: tokenAuth({ tokens: ['other-token'], clients: [['c1', clientKey(9).publicKey]] }) },
    ],
    {
      adminToken: 'admin-secret',
      reload: async () => {
        reloads++;
        return { tenants: env.registry.names() };
      },
    },
  );
});
afterAll(() => env.close());

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

async function expect401(r: Response | Promise<Response>): Promise<string> {
  const res = await r;
  const body = (await res.json()) as { code: string; error: string };
  expect(res.status, body.error).toBe(401);
  expect(body.code).toBe('unauthorized');
  expect(res.headers.get('www-authenticate')).toMatch(/Bearer/);
  expect(res.headers.get('cache-control')).toBeNull();
  return body.error;
}

function signed(key: { seed: Uint8Array }, clientID: string, urlPath: string, body: Uint8Array, counter: number, nonce?: string) {
  return signRequest({ clientID, seed: key.seed, method: 'POST', path: urlPath, body, counter, nonce });
}

describe('bearer tokens', () => {
  it('a listed token writes; none, a wrong one, another tenant\'s or a malformed header get 401', async () => {
    expect((await post(env.app, '/sec/append', 'tok 1', bearer('write-token'))).status).toBe(200);
    expect((await post(env.app, '/sec/append', 'tok 2', bearer('second-token'))).status).toBe(200);
    await expect401(post(env.app, '/sec/append', 'nope'));
    await expect401(post(env.app, '/sec/append', 'nope', bearer('wrong-token')));
    await expect401(post(env.app, '/sec/append', 'nope', bearer('other-token')));
    // (A trailing space is trimmed by header normalization, so 'Bearer write-token ' is the token.)
    await expect401(post(env.app, '/sec/append', 'nope', bearer('write-token x')));
    await expect401(post(env.app, '/sec/append', 'nope', { authorization: 'bearer write-token' }));
    await expect401(post(env.app, '/sec/append', 'nope', { authorization: 'Basic d3JpdGUtdG9rZW4=' }));
    await expect401(post(env.app, '/sec/append', 'nope', { authorization: 'Bearer ' }));
    await expect401(post(env.app, '/sec/append', 'nope', { authorization: `Bearer ${'x'.repeat(600)}` }));
    // The hash of the token is not the token.
    const { hashToken } = await import('../../src/http/auth.js');
    await expect401(post(env.app, '/sec/append', 'nope', bearer(hashToken('write-token'))));
    await expect401(post(env.app, '/sec/append-batch', bundleBody([Buffer.from('nope')]), bearer('wrong-token')));
    expect(env.registry.get('sec')!.log.treeSize).toBe(2);
  });

  it('rate limits are per credential', async () => {
    // burst 40 per credential; write-token has used 1.
    const bodies = Array.from({ length: 39 }, (_, i) => Buffer.from(`rl ${i}`));
    expect((await post(env.app, '/sec/append-batch', bundleBody(bodies), bearer('write-token'))).status).toBe(200);
    const over = await post(env.app, '/sec/append', 'rl over', bearer('write-token'));
    expect(over.status).toBe(429);
    expect(over.headers.get('retry-after')).toMatch(/^[1-9][0-9]*$/);
    // Another token of the same tenant still has its burst.
    expect((await post(env.app, '/sec/append', 'rl other', bearer('second-token'))).status).toBe(200);
  });
});

describe('signed requests', () => {
  let counter = 10;

  it('a correctly signed request writes; replaying it exactly gets 401', async () => {
    const body = Buffer.from('signed 1');
    const h = signed(c1, 'c1', '/sec/append', body, counter);
    const ok = await post(env.app, '/sec/append', body, h);
    expect(ok.status).toBe(200);
    const { index } = await json<{ index: number }>(ok);
    const size = env.registry.get('sec')!.log.treeSize;
    expect(await expect401(post(env.app, '/sec/append', body, h))).toMatch(/replayed or stale/);
    // A replay with a new nonce but the same counter (a re-signed copy) is refused too.
    await expect401(post(env.app, '/sec/append', body, signed(c1, 'c1', '/sec/append', body, counter)));
    expect(env.registry.get('sec')!.log.treeSize).toBe(size);
    expect(index).toBe(size - 1);
  });

  it('stale counters, bad signatures, unknown clients and malformed headers get 401', async () => {
    const body = Buffer.from('signed 2');
    await expect401(post(env.app, '/sec/append', body, signed(c1, 'c1', '/sec/append', body, counter - 1)));
    await expect401(post(env.app, '/sec/append', body, signed(c1, 'c1', '/sec/append', body, 0)));
    // Signed over another body, path, method, or by another key.
    await expect401(post(env.app, '/sec/append', body, signed(c1, 'c1', '/sec/append', Buffer.from('other body'), counter + 1)));
    await expect401(post(env.app, '/sec/append', body, signed(c1, 'c1', '/other/append', body, counter + 2)));
    await expect401(post(env.app, '/sec/append', body, signed(c1, 'c1', '/sec/append-batch', body, counter + 3)));
    await expect401(post(env.app, '/sec/append', body, { ...signed(c1, 'c1', '/sec/append', body, counter + 4), 'X-Tlog-Counter': String(counter + 5) }));
    await expect401(post(env.app, '/sec/append', body, signed(c2, 'c1', '/sec/append', body, counter + 6)));
    const { ed25519 } = await import('@noble/curves/ed25519.js');
    const sigOfGet = Buffer.from(
      ed25519.sign(
        (await import('../../src/client/signed-request.js')).signedRequestMessage({ method: 'GET', path: '/sec/append', body, nonce: 'ab'.repeat(16), counter: counter + 7 }),
        c1.seed,
      ),
    ).toString('base64');
    await expect401(post(env.app, '/sec/append', body, { 'X-Tlog-Client': 'c1', 'X-Tlog-Counter': String(counter + 7), 'X-Tlog-Nonce': 'ab'.repeat(16), 'X-Tlog-Signature': sigOfGet }));
    // Unknown client (c2 is registered at another tenant only).
    expect(await expect401(post(env.app, '/sec/append', body, signed(c2, 'c2', '/sec/append', body, 1)))).toMatch(/unknown client/);
    // Malformed counter, nonce and signature headers.
    const good = signed(c1, 'c1', '/sec/append', body, counter + 8);
    await expect401(post(env.app, '/sec/append', body, { ...good, 'X-Tlog-Counter': `0${counter + 8}` }));
    await expect401(post(env.app, '/sec/append', body, { ...good, 'X-Tlog-Counter': '-1' }));
    await expect401(post(env.app, '/sec/append', body, { ...good, 'X-Tlog-Counter': '99999999999999999999' }));
    await expect401(post(env.app, '/sec/append', body, { ...good, 'X-Tlog-Nonce': 'short' }));
    await expect401(post(env.app, '/sec/append', body, { ...good, 'X-Tlog-Nonce': good['X-Tlog-Nonce']!.toUpperCase() }));
    await expect401(post(env.app, '/sec/append', body, { ...good, 'X-Tlog-Signature': '' }));
    await expect401(post(env.app, '/sec/append', body, { ...good, 'X-Tlog-Signature': 'not base64 at all!' }));
    await expect401(post(env.app, '/sec/append', body, { ...good, 'X-Tlog-Signature': Buffer.alloc(64).toString('base64') }));
    // The same client id at another tenant has another key there.
    await expect401(post(env.app, '/other/append', body, signed(c1, 'c1', '/other/append', body, 100)));
    // None of the refused requests moved the counter: the next one above the last accepted works.
    counter += 1;
    expect((await post(env.app, '/sec/append', body, signed(c1, 'c1', '/sec/append', body, counter))).status).toBe(200);
  });

  it('concurrent signed requests: each counter is accepted once', async () => {
    const base = counter + 1;
    const reqs = Array.from({ length: 10 }, (_, i) => {
      const b = Buffer.from(`conc ${i}`);
      return post(env.app, '/sec/append', b, signed(c1, 'c1', '/sec/append', b, base + i));
    });
    // The same counters again, racing.
    const dup = Array.from({ length: 10 }, (_, i) => {
      const b = Buffer.from(`conc dup ${i}`);
      return post(env.app, '/sec/append', b, signed(c1, 'c1', '/sec/append', b, base + i));
    });
    const statuses = (await Promise.all([...reqs, ...dup])).map((r) => r.status);
    // A request is checked for its rate before its counter is used up (so a 429 can be retried
    // as it is): racing replays may meet the rate limit first.
    expect(statuses.every((s) => s === 200 || s === 401 || s === 429)).toBe(true);
    // No counter was accepted twice, and at least the first of them once.
    for (let i = 0; i < 10; i++) expect(statuses[i] === 200 && statuses[10 + i] === 200, `counter ${base + i}`).toBe(false);
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(1);
    counter = base + 9;
  });

  it('signed requests on the un-prefixed route (X-Module-ID) and with a query string', async () => {
    const body = Buffer.from('signed via module id');
    counter++;
    const r = await post(env.app, '/append', body, { 'x-module-id': 'sec', ...signed(c1, 'c1', '/append', body, counter) });
    expect(r.status).toBe(200);
    const batch = bundleBody([Buffer.from('signed batch a'), Buffer.from('signed batch b')]);
    counter++;
    const b = await post(env.app, '/sec/append-batch?proofs=1', batch, signed(c1, 'c1', '/sec/append-batch?proofs=1', batch, counter));
    expect(b.status).toBe(200);
    // The query is part of what is signed.
    counter++;
    await expect401(post(env.app, '/sec/append-batch?proofs=1', batch, signed(c1, 'c1', '/sec/append-batch', batch, counter)));
  });

  it('counters are durable: after a restart an old counter is refused, a higher one accepted', async () => {
    const body = Buffer.from('after restart');
    const last = env.registry.get('sec')!.counters.last('c1');
    expect(last).toBeGreaterThanOrEqual(counter - 1);
    await env.restart();
    expect(env.registry.get('sec')!.counters.last('c1')).toBe(last);
    await expect401(post(env.app, '/sec/append', body, signed(c1, 'c1', '/sec/append', body, last)));
    await expect401(post(env.app, '/sec/append', body, signed(c1, 'c1', '/sec/append', body, last - 5)));
    expect((await post(env.app, '/sec/append', body, signed(c1, 'c1', '/sec/append', body, last + 1))).status).toBe(200);
    counter = last + 1;
  });
});

describe('read tokens', () => {
  beforeAll(async () => {
    const r = await post(env.app, '/priv/append-batch', bundleBody(Array.from({ length: 260 }, (_, i) => Buffer.from(`priv ${i}`))), bearer('priv-writer'));
    expect(r.status).toBe(200);
  });

  const reads = () => [
    '/priv/checkpoint',
    '/priv/tile/0/000',
    '/priv/tile/entries/000',
    '/priv/tile/0/001.p/4',
    '/priv/read_since?index=0',
    '/priv/proof/inclusion?index=1',
    '/priv/proof/consistency?old=1',
    `/priv/proof/by-hash/${Buffer.from(leafHash(Buffer.from('priv 3'))).toString('hex')}`,
  ];

  it('every read needs a read (or write) token', async () => {
    for (const p of reads()) {
      await expect401(get(env.app, p));
      await expect401(get(env.app, p, bearer('wrong')));
      await expect401(get(env.app, p, bearer('write-token')));
      expect((await get(env.app, p, bearer('read-token'))).status, p).toBe(200);
      expect((await get(env.app, p, bearer('priv-writer'))).status, p).toBe(200);
    }
    // X-Module-ID reads too.
    await expect401(get(env.app, '/read_since?index=0', { 'x-module-id': 'priv' }));
    expect((await get(env.app, '/read_since?index=0', { 'x-module-id': 'priv', ...bearer('read-token') })).status).toBe(200);
  });

  it('a read token does not write; public tenants read without one', async () => {
    await expect401(post(env.app, '/priv/append', 'by reader', bearer('read-token')));
    const b = Buffer.from('signed to priv');
    expect((await post(env.app, '/priv/append', b, signed(c2, 'c2', '/priv/append', b, 1))).status).toBe(200);
    expect((await get(env.app, '/sec/checkpoint')).status).toBe(200);
    expect((await get(env.app, '/sec/read_since?index=0')).status).toBe(200);
  });
});

describe('admin', () => {
  it('POST /admin/reload needs the admin token', async () => {
    await expect401(env.app.request('/admin/reload', { method: 'POST' }));
    await expect401(env.app.request('/admin/reload', { method: 'POST', headers: bearer('write-token') }));
    await expect401(env.app.request('/admin/reload', { method: 'POST', headers: bearer('admin-secretx') }));
    expect(reloads).toBe(0);
    const r = await env.app.request('/admin/reload', { method: 'POST', headers: bearer('admin-secret') });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ tenants: ['sec', 'priv', 'other'] });
    expect(reloads).toBe(1);
  });
});

describe('tenant isolation', () => {
  it('data never crosses: entries, tiles, proofs, cursors and tokens stay with their tenant', async () => {
    const iso = await makeEnv([{ name: 'a' }, { name: 'b' }]);
    try {
      const aEntries = Array.from({ length: 300 }, (_, i) => Buffer.from(`tenant a ${i}`));
      expect((await post(iso.app, '/a/append-batch', bundleBody(aEntries))).status).toBe(200);
      expect((await post(iso.app, '/b/append', 'tenant b 0')).status).toBe(200);
      const a = iso.registry.get('a')!.log;
      const b = iso.registry.get('b')!.log;
      expect([a.treeSize, b.treeSize]).toEqual([300, 1]);
      // b holds none of a's entries: its tiles, bundles, cursors and lookups say so.
      expect((await get(iso.app, '/b/tile/0/000')).status).toBe(404);
      expect((await get(iso.app, '/b/tile/entries/000')).status).toBe(404);
      expect((await get(iso.app, '/b/tile/entries/000.p/1')).status).toBe(200);
      expect(Buffer.from(await (await get(iso.app, '/b/tile/entries/000.p/1')).arrayBuffer()).subarray(2).toString()).toBe('tenant b 0');
      expect((await get(iso.app, '/b/read_since?index=5')).status).toBe(400);
      const hexA = Buffer.from(leafHash(aEntries[7]!)).toString('hex');
      expect((await get(iso.app, `/b/proof/by-hash/${hexA}`)).status).toBe(404);
      expect((await get(iso.app, `/a/proof/by-hash/${hexA}`)).status).toBe(200);
      expect((await get(iso.app, '/proof/by-hash/' + hexA, { 'x-module-id': 'b' })).status).toBe(404);
      // Dedup is per tenant: a's entry appended to b is new there.
      const r = await json<{ index: number; duplicate: boolean }>(await post(iso.app, '/b/append', aEntries[7]!));
      expect(r).toMatchObject({ index: 1, duplicate: false });
      // The prefix wins over X-Module-ID.
      const viaPrefix = await json<{ index: number }>(await post(iso.app, '/a/append', 'prefix wins', { 'x-module-id': 'b' }));
      expect(viaPrefix.index).toBe(300);
      expect(b.treeSize).toBe(2);
      // Checkpoints carry their own origins and keys.
      expect((await (await get(iso.app, '/a/checkpoint')).text()).split('\n')[0]).toBe('example.com/a');
      expect((await (await get(iso.app, '/b/checkpoint')).text()).split('\n')[0]).toBe('example.com/b');
      const bPage = await json<{ entries: string[] }>(await get(iso.app, '/b/read_since?index=0'));
      expect(bPage.entries.map((e) => Buffer.from(e, 'base64').toString())).toEqual(['tenant b 0', 'tenant a 7']);
    } finally {
      await iso.close();
    }
  });
});
