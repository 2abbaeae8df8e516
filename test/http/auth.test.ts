/**
 * Who may write and read: bearer tokens (hashed in the configuration), signed requests with
 * durable per-client counters (replays, stale counters and bad signatures refused, also after a
 * restart), read tokens, per-credential rate limits, the admin route, and tenant isolation.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signHttpRequest, signLegacyRequest } from '../../src/client/signed-request.js';
import { leafHash } from '../../src/merkle/hash.js';
import { signedRequestMessageV1 } from '../../src/signed-write/legacy-message.js';
import { bearer, bundleBody, clientKey, get, json, makeEnv, post, tokenAuth, type AppEnv } from './helpers.js';

let env: AppEnv;
const c1 = clientKey(1);
const c2 = clientKey(2);
/** A key registered under the same client id in tenants ta and tb. */
const c3 = clientKey(3);
let reloads = 0;

beforeAll(async () => {
  env = await makeEnv(
    [
      {
        name: 'sec',
        auth: tokenAuth({ tokens: ['write-token', 'second-token'], clients: [['c1', c1.publicKey]] }),
        limits: { ratePerSecond: 0.001, burst: 40 },
      },
      { name: 'priv', auth: tokenAuth({ tokens: ['priv-writer'], readTokens: ['read-token'], clients: [['c2', c2.publicKey]] }) },
      { name: 'other', auth: tokenAuth({ tokens: ['other-token'], clients: [['c1', clientKey(9).publicKey]] }) },
      { name: 'ta', auth: tokenAuth({ clients: [['shared', c3.publicKey]] }) },
      { name: 'tb', auth: tokenAuth({ clients: [['shared', c3.publicKey]] }) },
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

async function expect401(r: Response | Promise<Response>): Promise<string> {
  const res = await r;
  const body = (await res.json()) as { code: string; error: string };
  expect(res.status, body.error).toBe(401);
  expect(body.code).toBe('unauthorized');
  expect(res.headers.get('www-authenticate')).toMatch(/Bearer/);
  expect(res.headers.get('cache-control')).toBeNull();
  return body.error;
}

/** An RFC 9421 signed POST of `body` to `urlPath` for the tenant with `origin`. */
function signed(
  key: { seed: Uint8Array },
  clientID: string,
  urlPath: string,
  body: Uint8Array,
  counter: number,
  o: { origin?: string; method?: string; nonce?: string } = {},
) {
  return signHttpRequest({
    clientID,
    seed: key.seed,
    origin: o.origin ?? 'example.com/sec',
    method: o.method ?? 'POST',
    url: urlPath,
    body,
    counter,
    nonce: o.nonce,
  });
}

/** A request whose body records whether anything read it. */
function watchedPost(url: string, headers: Record<string, string>): { response: Promise<Response>; pulled: () => boolean } {
  let pulled = false;
  const body = new ReadableStream<Uint8Array>(
    {
      pull(ctl) {
        pulled = true;
        ctl.enqueue(new Uint8Array([1, 2, 3]));
        ctl.close();
      },
    },
    { highWaterMark: 0 },
  ); // pulled only when something reads
  const init = { method: 'POST', body, headers: { ...headers, 'content-type': 'application/octet-stream' }, duplex: 'half' } as RequestInit;
  return { response: Promise.resolve(env.app.request(url, init)), pulled: () => pulled };
}

describe('bearer tokens', () => {
  it("a listed token writes; none, a wrong one, another tenant's or a malformed header get 401", async () => {
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

describe('signed requests (RFC 9421)', () => {
  let counter = 10;

  it('a correctly signed request writes; replaying it exactly gets 401', async () => {
    const body = Buffer.from('signed 1');
    const h = await signed(c1, 'c1', '/sec/append', body, counter);
    const ok = await post(env.app, '/sec/append', body, h);
    expect(ok.status).toBe(200);
    const { index } = await json<{ index: number }>(ok);
    const size = env.registry.get('sec')!.log.treeSize;
    expect(await expect401(post(env.app, '/sec/append', body, h))).toMatch(/replayed or stale/);
    // A replay with a new nonce but the same counter (a re-signed copy) is refused too.
    await expect401(post(env.app, '/sec/append', body, await signed(c1, 'c1', '/sec/append', body, counter)));
    expect(env.registry.get('sec')!.log.treeSize).toBe(size);
    expect(index).toBe(size - 1);
  });

  it('stale counters, bad signatures, unknown clients and malformed headers get 401', async () => {
    const body = Buffer.from('signed 2');
    const size = env.registry.get('sec')!.log.treeSize;
    expect(await expect401(post(env.app, '/sec/append', body, await signed(c1, 'c1', '/sec/append', body, counter)))).toMatch(/not above its last counter 10/);
    await expect401(post(env.app, '/sec/append', body, await signed(c1, 'c1', '/sec/append', body, 0)));
    // Signed over another body (its Content-Digest does not match), path, method, or by another key.
    expect(await expect401(post(env.app, '/sec/append', body, await signed(c1, 'c1', '/sec/append', Buffer.from('other body'), counter + 1)))).toMatch(
      /Content-Digest sha256 does not match/,
    );
    expect(await expect401(post(env.app, '/sec/append', body, await signed(c1, 'c1', '/other/append', body, counter + 2)))).toMatch(/does not verify/);
    await expect401(post(env.app, '/sec/append', body, await signed(c1, 'c1', '/sec/append-batch', body, counter + 3)));
    await expect401(post(env.app, '/sec/append', body, await signed(c1, 'c1', '/sec/append', body, counter + 3, { method: 'PUT' })));
    await expect401(post(env.app, '/sec/append', body, { ...(await signed(c1, 'c1', '/sec/append', body, counter + 4)), 'Tlog-Counter': String(counter + 5) }));
    await expect401(post(env.app, '/sec/append', body, await signed(c2, 'c1', '/sec/append', body, counter + 6)));
    // A Content-Digest changed to match another body: the signature covers the header.
    const other = Buffer.from('smuggled');
    const { contentDigest } = await import('../../src/signed-write/profile.js');
    await expect401(
      post(env.app, '/sec/append', other, { ...(await signed(c1, 'c1', '/sec/append', body, counter + 7)), 'Content-Digest': contentDigest(other) }),
    );
    // Unknown client (c2 is registered at another tenant only).
    expect(await expect401(post(env.app, '/sec/append', body, await signed(c2, 'c2', '/sec/append', body, 1)))).toMatch(/unknown client/);
    // Malformed counter and signature headers.
    const good = await signed(c1, 'c1', '/sec/append', body, counter + 8);
    for (const bad of [`0${counter + 8}`, '-1', '1000000000000000', '', '1, 2']) {
      expect(await expect401(post(env.app, '/sec/append', body, { ...good, 'Tlog-Counter': bad })), bad).toMatch(/Tlog-Counter must be/);
    }
    await expect401(post(env.app, '/sec/append', body, { ...good, Signature: '' }));
    await expect401(post(env.app, '/sec/append', body, { ...good, Signature: 'tlog=not a byte sequence' }));
    await expect401(post(env.app, '/sec/append', body, { ...good, Signature: `tlog=:${Buffer.alloc(64).toString('base64')}:` }));
    await expect401(post(env.app, '/sec/append', body, { ...good, Signature: `other=${good.Signature!.slice(5)}` }));
    // The same client id at another tenant has another key there.
    await expect401(post(env.app, '/other/append', body, await signed(c1, 'c1', '/other/append', body, 100, { origin: 'example.com/other' })));
    // None of the refused requests wrote or moved the counter: the next one above the last accepted works.
    expect(env.registry.get('sec')!.log.treeSize).toBe(size);
    counter += 1;
    expect((await post(env.app, '/sec/append', body, await signed(c1, 'c1', '/sec/append', body, counter))).status).toBe(200);
  });

  it('a signed request names its tenant: the same bytes with X-Module-ID of another tenant sharing the key get 401', async () => {
    const body = Buffer.from('for tenant a only');
    const h = await signed(c3, 'shared', '/append', body, 1, { origin: 'example.com/ta' });
    expect((await post(env.app, '/append', body, { ...h, 'x-module-id': 'ta' })).status).toBe(200);
    expect(await expect401(post(env.app, '/append', body, { ...h, 'x-module-id': 'tb' }))).toMatch(/made for another tenant/);
    expect(env.registry.get('tb')!.log.treeSize).toBe(0);
    expect(env.registry.get('tb')!.counters.last('shared')).toBe(-1);
    // Signed for tb, the same client writes there.
    expect(
      (await post(env.app, '/append', body, { ...(await signed(c3, 'shared', '/append', body, 1, { origin: 'example.com/tb' })), 'x-module-id': 'tb' })).status,
    ).toBe(200);
  });

  it('a refused signature is refused before the body is read', async () => {
    const headers = await signed(c1, 'c1', '/sec/append', Buffer.from([1, 2, 3]), counter + 1);
    for (const h of [
      { ...headers, 'Tlog-Counter': String(counter) },
      { ...headers, Signature: `tlog=:${Buffer.alloc(64).toString('base64')}:` },
      { ...headers, 'Signature-Input': headers['Signature-Input']!.replace('keyid="c1"', 'keyid="c9"') },
    ]) {
      const w = watchedPost('/sec/append', h);
      await expect401(w.response);
      expect(w.pulled()).toBe(false);
    }
    // The accepted one is read (and its digest checked) once the signature verified.
    const w = watchedPost('/sec/append', headers);
    expect((await w.response).status).toBe(200);
    expect(w.pulled()).toBe(true);
    counter += 1;
  });

  it('concurrent signed requests: each counter is accepted once', async () => {
    const base = counter + 1;
    const reqs = await Promise.all(
      Array.from({ length: 10 }, async (_, i) => {
        const b = Buffer.from(`conc ${i}`);
        return [b, await signed(c1, 'c1', '/sec/append', b, base + i)] as const;
      }),
    );
    // The same counters again, racing.
    const dups = await Promise.all(
      Array.from({ length: 10 }, async (_, i) => {
        const b = Buffer.from(`conc dup ${i}`);
        return [b, await signed(c1, 'c1', '/sec/append', b, base + i)] as const;
      }),
    );
    const statuses = (await Promise.all([...reqs, ...dups].map(([b, h]) => post(env.app, '/sec/append', b, h)))).map((r) => r.status);
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
    const r = await post(env.app, '/append', body, { 'x-module-id': 'sec', ...(await signed(c1, 'c1', '/append', body, counter)) });
    expect(r.status).toBe(200);
    const batch = bundleBody([Buffer.from('signed batch a'), Buffer.from('signed batch b')]);
    counter++;
    const b = await post(env.app, '/sec/append-batch?proofs=1', batch, await signed(c1, 'c1', '/sec/append-batch?proofs=1', batch, counter));
    expect(b.status).toBe(200);
    // The query is part of what is signed.
    counter++;
    await expect401(post(env.app, '/sec/append-batch?proofs=1', batch, await signed(c1, 'c1', '/sec/append-batch', batch, counter)));
  });

  it('counters are durable: after a restart an old counter is refused, a higher one accepted', async () => {
    const body = Buffer.from('after restart');
    const last = env.registry.get('sec')!.counters.last('c1');
    expect(last).toBeGreaterThanOrEqual(counter - 1);
    await env.restart();
    expect(env.registry.get('sec')!.counters.last('c1')).toBe(last);
    await expect401(post(env.app, '/sec/append', body, await signed(c1, 'c1', '/sec/append', body, last)));
    await expect401(post(env.app, '/sec/append', body, await signed(c1, 'c1', '/sec/append', body, last - 5)));
    expect((await post(env.app, '/sec/append', body, await signed(c1, 'c1', '/sec/append', body, last + 1))).status).toBe(200);
    counter = last + 1;
  });
});

describe('X-Tlog-* signed requests (deprecated, message v2)', () => {
  const legacy = (key: { seed: Uint8Array }, clientID: string, path: string, body: Uint8Array, counter: number, origin = 'example.com/sec', nonce?: string) =>
    signLegacyRequest({ clientID, seed: key.seed, origin, method: 'POST', path, body, counter, nonce });
  // Above every counter the RFC 9421 tests use.
  let counter = 1_000_000;

  it('a v2 request writes once; a v1 one gets 401 saying how to upgrade', async () => {
    const body = Buffer.from('legacy v2');
    const h = legacy(c1, 'c1', '/sec/append', body, counter);
    expect((await post(env.app, '/sec/append', body, h)).status).toBe(200);
    expect(await expect401(post(env.app, '/sec/append', body, h))).toMatch(/replayed or stale/);
    const { ed25519 } = await import('@noble/curves/ed25519.js');
    const nonce = 'ab'.repeat(16);
    const v1 = Buffer.from(ed25519.sign(signedRequestMessageV1({ method: 'POST', path: '/sec/append', body, nonce, counter: counter + 1 }), c1.seed)).toString(
      'base64',
    );
    const old = { 'X-Tlog-Client': 'c1', 'X-Tlog-Counter': String(counter + 1), 'X-Tlog-Nonce': nonce, 'X-Tlog-Signature': v1 };
    expect(await expect401(post(env.app, '/sec/append', body, old))).toMatch(/v1 message, which does not name the tenant.*RFC 9421/);
    // The counter was not used up by the refused request.
    counter++;
    expect((await post(env.app, '/sec/append', body, legacy(c1, 'c1', '/sec/append', body, counter))).status).toBe(200);
  });

  it('a v2 request names its tenant: the same bytes with X-Module-ID of another tenant sharing the key get 401', async () => {
    const body = Buffer.from('legacy for ta');
    const h = legacy(c3, 'shared', '/append', body, 100, 'example.com/ta');
    expect((await post(env.app, '/append', body, { ...h, 'x-module-id': 'ta' })).status).toBe(200);
    expect(await expect401(post(env.app, '/append', body, { ...h, 'x-module-id': 'tb' }))).toMatch(/does not verify/);
    expect(env.registry.get('tb')!.counters.last('shared')).toBeLessThan(100);
  });

  it('stale counters, bad signatures, unknown clients and malformed headers get 401', async () => {
    const body = Buffer.from('legacy 2');
    await expect401(post(env.app, '/sec/append', body, legacy(c1, 'c1', '/sec/append', body, counter)));
    await expect401(post(env.app, '/sec/append', body, legacy(c1, 'c1', '/sec/append', Buffer.from('other body'), counter + 1)));
    await expect401(post(env.app, '/sec/append', body, legacy(c1, 'c1', '/other/append', body, counter + 2)));
    await expect401(post(env.app, '/sec/append', body, legacy(c1, 'c1', '/sec/append', body, counter + 3, 'example.com/other')));
    await expect401(post(env.app, '/sec/append', body, { ...legacy(c1, 'c1', '/sec/append', body, counter + 4), 'X-Tlog-Counter': String(counter + 5) }));
    await expect401(post(env.app, '/sec/append', body, legacy(c2, 'c1', '/sec/append', body, counter + 6)));
    expect(await expect401(post(env.app, '/sec/append', body, legacy(c2, 'c2', '/sec/append', body, 1)))).toMatch(/unknown client/);
    const good = legacy(c1, 'c1', '/sec/append', body, counter + 8);
    for (const bad of [`0${counter + 8}`, '-1', '99999999999999999999', '9007199254740993']) {
      expect(await expect401(post(env.app, '/sec/append', body, { ...good, 'X-Tlog-Counter': bad })), bad).toMatch(/canonical decimal/);
    }
    await expect401(post(env.app, '/sec/append', body, { ...good, 'X-Tlog-Nonce': 'short' }));
    await expect401(post(env.app, '/sec/append', body, { ...good, 'X-Tlog-Nonce': good['X-Tlog-Nonce']!.toUpperCase() }));
    await expect401(post(env.app, '/sec/append', body, { ...good, 'X-Tlog-Signature': '' }));
    await expect401(post(env.app, '/sec/append', body, { ...good, 'X-Tlog-Signature': 'not base64 at all!' }));
    await expect401(post(env.app, '/sec/append', body, { ...good, 'X-Tlog-Signature': Buffer.alloc(64).toString('base64') }));
    counter += 1;
    expect((await post(env.app, '/sec/append', body, legacy(c1, 'c1', '/sec/append', body, counter))).status).toBe(200);
  });
});

describe('X-Module-ID', () => {
  it('naming another tenant than the path is a 400 JSON error, for writes and reads; naming the same one is fine', async () => {
    const size = env.registry.get('sec')!.log.treeSize;
    for (const r of [
      await post(env.app, '/sec/append', 'conflict', { ...bearer('write-token'), 'x-module-id': 'other' }),
      await post(env.app, '/sec/append', 'conflict', { ...bearer('write-token'), 'x-module-id': 'nope' }),
      await get(env.app, '/sec/read_since?index=0', { 'x-module-id': 'priv' }),
      await get(env.app, '/sec/checkpoint', { 'x-module-id': 'other' }),
    ]) {
      expect(r.status).toBe(400);
      expect(await r.json()).toEqual({ code: 'bad_input', error: expect.stringMatching(/path names tenant "sec" but X-Module-ID names/) });
    }
    expect(env.registry.get('sec')!.log.treeSize).toBe(size);
    expect((await post(env.app, '/sec/append', 'same tenant', { ...bearer('second-token'), 'x-module-id': 'sec' })).status).toBe(200);
    expect((await get(env.app, '/sec/checkpoint', { 'x-module-id': 'sec' })).status).toBe(200);
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
    expect((await post(env.app, '/priv/append', b, await signed(c2, 'c2', '/priv/append', b, 1, { origin: 'example.com/priv' }))).status).toBe(200);
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
    expect(await r.json()).toEqual({ tenants: ['sec', 'priv', 'other', 'ta', 'tb'] });
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
      expect(
        Buffer.from(await (await get(iso.app, '/b/tile/entries/000.p/1')).arrayBuffer())
          .subarray(2)
          .toString(),
      ).toBe('tenant b 0');
      expect((await get(iso.app, '/b/read_since?index=5')).status).toBe(400);
      const hexA = Buffer.from(leafHash(aEntries[7]!)).toString('hex');
      expect((await get(iso.app, `/b/proof/by-hash/${hexA}`)).status).toBe(404);
      expect((await get(iso.app, `/a/proof/by-hash/${hexA}`)).status).toBe(200);
      expect((await get(iso.app, '/proof/by-hash/' + hexA, { 'x-module-id': 'b' })).status).toBe(404);
      // Dedup is per tenant: a's entry appended to b is new there.
      const r = await json<{ index: number; duplicate: boolean }>(await post(iso.app, '/b/append', aEntries[7]!));
      expect(r).toMatchObject({ index: 1, duplicate: false });
      // A prefix and an X-Module-ID naming another tenant: neither is chosen.
      expect((await post(iso.app, '/a/append', 'which one', { 'x-module-id': 'b' })).status).toBe(400);
      expect([a.treeSize, b.treeSize]).toEqual([300, 2]);
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
