/**
 * A private tenant (one with read tokens) shows nothing of itself without credentials: /healthz
 * gives aggregate health and the public tenants' figures, and a private tenant's only for its
 * read token or the admin token; /metrics leaves out a private tenant's series unless the
 * scrape carries the admin token; /<t>/anchors and the receipt files need the read token.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashToken, hasAdminToken } from '../../src/http/auth.js';
import { bearer, get, json, makeEnv, post, tokenAuth, type AppEnv } from './helpers.js';

let env: AppEnv;

beforeAll(async () => {
  env = await makeEnv(
    [
      { name: 'pub', auth: tokenAuth({ tokens: ['pub-w'] }) },
      { name: 'priv', origin: 'secret.example/priv', auth: tokenAuth({ tokens: ['priv-w'], readTokens: ['priv-r'] }) },
      { name: 'hush', auth: tokenAuth({ tokens: ['hush-w'], readTokens: ['hush-r'] }) },
      { name: 'gone', auth: tokenAuth({ tokens: ['gone-w'] }) },
    ],
    { adminToken: 'admin-secret' },
  );
  for (const [t, tok] of [
    ['pub', 'pub-w'],
    ['priv', 'priv-w'],
    ['hush', 'hush-w'],
    ['gone', 'gone-w'],
  ] as const) {
    expect((await post(env.app, `/${t}/append`, `entry of ${t}`, bearer(tok))).status).toBe(200);
  }
  expect((await get(env.app, '/priv/checkpoint', bearer('priv-r'))).status).toBe(200);
});
afterAll(() => env.close());

type Health = { status: string; tenantCount: number; degradedCount: number; tenants: Record<string, { treeSize: number; pending: number }> };

describe('/healthz', () => {
  it('without credentials: aggregate health and public tenants only, no private name', async () => {
    for (const headers of [{}, bearer('wrong'), bearer('pub-w')]) {
      const r = await get(env.app, '/healthz', headers);
      expect(r.status).toBe(200);
      const text = await r.text();
      const h = JSON.parse(text) as Health;
      expect(h.status).toBe('ok');
      expect(h.tenantCount).toBe(4);
      expect(h.degradedCount).toBe(0);
      expect(Object.keys(h.tenants).sort()).toEqual(['gone', 'pub']);
      expect(text).not.toMatch(/priv|hush/);
    }
  });

  it("a private tenant's read (or write) token shows that tenant; the admin token shows all", async () => {
    const withRead = await json<Health>(await get(env.app, '/healthz', bearer('priv-r')));
    expect(Object.keys(withRead.tenants).sort()).toEqual(['gone', 'priv', 'pub']);
    expect(withRead.tenants.priv).toMatchObject({ treeSize: 1, pending: 0 });
    const withWrite = await json<Health>(await get(env.app, '/healthz', bearer('hush-w')));
    expect(Object.keys(withWrite.tenants).sort()).toEqual(['gone', 'hush', 'pub']);
    const admin = await json<Health>(await get(env.app, '/healthz', bearer('admin-secret')));
    expect(Object.keys(admin.tenants).sort()).toEqual(['gone', 'hush', 'priv', 'pub']);
    expect(admin.tenantCount).toBe(4);
  });

  it('a private tenant that cannot write makes the aggregate degraded without naming it', async () => {
    const log = env.registry.get('hush')!.log;
    // As the log reports a full disk (test/log/disk-full.test.ts makes a real one).
    Object.defineProperty(log, 'cannotWrite', { configurable: true, get: () => 'disk full: 0 bytes free' });
    try {
      const r = await get(env.app, '/healthz');
      expect(r.status).toBe(503);
      const text = await r.text();
      expect(JSON.parse(text)).toMatchObject({ status: 'degraded', tenantCount: 4, degradedCount: 1 });
      expect(text).not.toMatch(/hush|disk full/);
      const admin = await json<Health>(await get(env.app, '/healthz', bearer('admin-secret')));
      expect(admin.tenants.hush).toMatchObject({ writable: false, cannotWrite: 'disk full: 0 bytes free' });
    } finally {
      delete (log as unknown as Record<string, unknown>).cannotWrite;
    }
    expect((await get(env.app, '/healthz')).status).toBe(200);
  });
});

describe('/metrics', () => {
  const tenantsIn = (text: string) => new Set([...text.matchAll(/[{,]tenant="([^"]*)"/g)].map((m) => m[1]));

  it("no private tenant's series without the admin token (a read token is not enough); all with it", async () => {
    for (const headers of [{}, bearer('priv-r'), bearer('wrong')]) {
      const text = await (await get(env.app, '/metrics', headers)).text();
      const seen = tenantsIn(text);
      expect(seen.has('pub')).toBe(true);
      expect(seen.has('priv')).toBe(false);
      expect(seen.has('hush')).toBe(false);
      expect(text).not.toMatch(/priv|hush/);
      // The exposition is still well-formed: every sample line has a name and a value.
      for (const line of text.split('\n').filter((l) => l && !l.startsWith('#')))
        expect(line).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? ([-+0-9.eE]+|NaN|[+-]Inf)$/);
    }
    const all = tenantsIn(await (await get(env.app, '/metrics', bearer('admin-secret'))).text());
    for (const t of ['pub', 'priv', 'hush', 'gone']) expect(all.has(t), t).toBe(true);
  });

  it('a tenant no longer served: its series only for the admin token', async () => {
    expect(tenantsIn(await (await get(env.app, '/metrics')).text()).has('gone')).toBe(true);
    await env.registry.remove('gone');
    expect(tenantsIn(await (await get(env.app, '/metrics')).text()).has('gone')).toBe(false);
    expect(tenantsIn(await (await get(env.app, '/metrics', bearer('admin-secret'))).text()).has('gone')).toBe(true);
  });
});

describe('/<t>/anchors', () => {
  it("a private tenant's receipts list and files need its read token", async () => {
    const anon = await get(env.app, '/priv/anchors');
    expect(anon.status).toBe(401);
    const text = await anon.text();
    expect(JSON.parse(text)).toMatchObject({ code: 'unauthorized' });
    expect(text).not.toContain('secret.example');
    expect((await get(env.app, '/priv/anchors', bearer('hush-r'))).status).toBe(401);
    const ok = await get(env.app, '/priv/anchors', bearer('priv-r'));
    expect(ok.status).toBe(200);
    expect(await json(ok)).toMatchObject({ tenant: 'priv', origin: 'secret.example/priv', receipts: [] });
    expect((await get(env.app, '/priv/anchors/anchor-key.pem')).status).toBe(401);
    // Past the credentials, the file lookup: none here.
    expect((await get(env.app, '/priv/anchors/anchor-key.pem', bearer('priv-r'))).status).toBe(404);
  });

  it("a public tenant's are public; an unknown tenant is a 404", async () => {
    expect(await json(await get(env.app, '/pub/anchors'))).toMatchObject({ tenant: 'pub', origin: 'example.com/pub' });
    expect((await get(env.app, '/nobody/anchors')).status).toBe(404);
  });
});

describe('the admin token', () => {
  it('is the exact token, compared by hash (in constant time)', () => {
    const h = hashToken('admin-secret');
    const asked = (authorization?: string) =>
      ({ req: { header: (n: string) => (n === 'authorization' ? authorization : undefined) } }) as Parameters<typeof hasAdminToken>[0];
    expect(hasAdminToken(asked('Bearer admin-secret'), h)).toBe(true);
    for (const a of [undefined, '', 'Bearer ', 'Bearer admin-secre', 'Bearer admin-secretx', 'bearer admin-secret', `Bearer ${h}`, 'Basic YWRtaW4tc2VjcmV0'])
      expect(hasAdminToken(asked(a), h), String(a)).toBe(false);
    // No admin token configured: nobody is admin.
    expect(hasAdminToken(asked('Bearer admin-secret'), undefined)).toBe(false);
  });
});
