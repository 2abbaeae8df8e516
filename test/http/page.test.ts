/**
 * The pages and the keys route without a browser (page-browser.test.ts renders them in
 * Chromium): who sees what, the exact bytes of /<t>/vkeys, escaping, headers, and what the page
 * says of witnesses and anchors in each state.
 */
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Anchorer, resolveAnchorConfig } from '../../src/anchor/index.js';
import { ago, esc, PAGE_HEADERS, shellWord } from '../../src/http/page-html.js';
import { Cosigner } from '../../src/witness-client/cosigner.js';
import { parsePolicy } from '../../src/note/witness-policy.js';
import { generatePrivateKey, SignatureType } from '../../src/note/keys.js';
import { keyPair } from '../../src/note/signers.js';
import { silentLogger } from '../../src/log/log.js';
import { get, makeEnv, tokenAuth, type AppEnv } from './helpers.js';

let env: AppEnv | undefined;
afterEach(async () => {
  await env?.close();
  env = undefined;
});

const READ = 'tlog_test_read_token';

describe('GET /<t>/vkeys', () => {
  it('is the verifier keys file, byte for byte, as text/plain', async () => {
    env = await makeEnv([{ name: 'audit' }]);
    const r = await get(env.app, '/audit/vkeys');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(r.headers.get('access-control-allow-origin')).toBe('*');
    const file = readFileSync(path.join(env.roots.checkpointsRoot, 'audit', 'vkeys'));
    expect(Buffer.from(await r.arrayBuffer()).equals(file)).toBe(true);
    expect(file.toString().trimEnd().split('\n')).toEqual(env.registry.get('audit')!.log.verifierKeys());
  });

  it('leaves the tlog-tiles and API routes as they were', async () => {
    env = await makeEnv([{ name: 'audit' }]);
    expect((await get(env.app, '/audit/checkpoint')).status).toBe(200);
    expect((await get(env.app, '/audit/tile/0/000')).status).toBe(404);
    expect((await get(env.app, '/audit/read_since?index=0')).status).toBe(200);
    // A tenant named like a route keeps its own page.
    await env.close();
    env = await makeEnv([{ name: 'vkeys' }, { name: 'checkpoint' }]);
    expect((await (await get(env.app, '/vkeys/vkeys')).text()).split('\n')[0]).toMatch(/^example\.com\/vkeys\+/);
    expect(await (await get(env.app, '/checkpoint/')).text()).toContain('<h1 id="origin">example.com/checkpoint</h1>');
    expect((await (await get(env.app, '/checkpoint/checkpoint')).text()).split('\n')[0]).toBe('example.com/checkpoint');
  });
});

describe('who sees which page', () => {
  it('an unknown tenant is the JSON 404 of every other route', async () => {
    env = await makeEnv([{ name: 'audit' }]);
    for (const p of ['/nope/', '/nope/vkeys']) {
      const r = await get(env.app, p);
      expect(r.status).toBe(404);
      expect(await r.json()).toMatchObject({ code: 'not_found' });
    }
  });

  it('a private tenant: 401 without its read token or with another, the page with it; / names it only then', async () => {
    env = await makeEnv([{ name: 'open' }, { name: 'secret', origin: 'example.com/secret', auth: tokenAuth({ readTokens: [READ] }) }]);
    const refused: Record<string, string>[] = [{}, { authorization: 'Bearer not-the-token' }, { authorization: `Basic ${READ}` }];
    for (const headers of refused) {
      for (const p of ['/secret/', '/secret/vkeys', '/secret/checkpoint']) {
        const r = await get(env.app, p, headers);
        expect(r.status, `${p} ${JSON.stringify(headers)}`).toBe(401);
        const body = await r.text();
        expect(JSON.parse(body)).toMatchObject({ code: 'unauthorized' });
        expect(body).not.toContain('example.com/secret');
      }
      const index = await (await get(env.app, '/', headers)).text();
      expect(index).toContain('href="/open/"');
      expect(index).not.toContain('secret');
    }
    const auth = { authorization: `Bearer ${READ}` };
    const page = await get(env.app, '/secret/', auth);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<h1 id="origin">example.com/secret</h1>');
    expect((await get(env.app, '/secret/vkeys', auth)).status).toBe(200);
    expect(await (await get(env.app, '/', auth)).text()).toContain('href="/secret/"');
  });

  it('/ with no readable tenant says so', async () => {
    env = await makeEnv([{ name: 'secret', auth: tokenAuth({ readTokens: [READ] }) }]);
    const r = await get(env.app, '/');
    expect(r.status).toBe(200);
    expect(await r.text()).toContain('No public logs here.');
  });
});

describe('the page', () => {
  it('is sent with a CSP that allows no script, nosniff, and no caching', async () => {
    env = await makeEnv([{ name: 'audit' }]);
    for (const p of ['/', '/audit/']) {
      const r = await get(env.app, p);
      for (const [k, v] of Object.entries(PAGE_HEADERS)) expect(r.headers.get(k), `${p} ${k}`).toBe(v);
      const html = await r.text();
      expect(html).not.toMatch(/<script|\son[a-z]+=|javascript:/i);
    }
    expect(PAGE_HEADERS['Content-Security-Policy']).toMatch(/^default-src 'none'; style-src 'sha256-[A-Za-z0-9+/]{43}='/);
  });

  it('escapes the origin wherever it appears', async () => {
    const origin = `example.com/<script>alert("x")</script>&'`;
    env = await makeEnv([{ name: 'odd', origin }]);
    const html = await (await get(env.app, '/odd/')).text();
    expect(html).not.toContain('<script>');
    expect(html).toContain('<h1 id="origin">example.com/&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;</h1>');
    expect(html).toContain('<title>example.com/&lt;script&gt;');
    const index = await (await get(env.app, '/')).text();
    expect(index).not.toContain('<script>');
  });

  it("says how old the checkpoint is, from the timestamp of the log's own ML-DSA-44 signature", async () => {
    env = await makeEnv([{ name: 'audit' }]);
    const t = env.registry.get('audit')!;
    await Promise.all(t.log.appendMany([Buffer.from('a'), Buffer.from('b'), Buffer.from('c')]));
    const html = await (await get(env.app, '/audit/')).text();
    expect(html).toContain('<td id="tree-size">3</td>');
    const m = /<td id="checkpoint-age"><span class="age" data-seconds="(\d+)">\d+ s ago<\/span> <time datetime="([^"]+)">/.exec(html);
    expect(m).not.toBeNull();
    // The time shown is the one signed into the checkpoint (not the time of the request).
    const seconds = Date.parse(m![2]!) / 1000;
    expect(Number.isInteger(seconds)).toBe(true);
    expect(Math.abs(Date.now() / 1000 - seconds)).toBeLessThan(600);
  });

  it('witnesses: never cosigned, and the error of the last attempt', async () => {
    env = await makeEnv([{ name: 'audit' }]);
    const t = env.registry.get('audit')!;
    const w = (n: string) => keyPair(generatePrivateKey(`witness.example/${n}`, SignatureType.cosignatureV1)).vkey;
    // Port 9 (discard) on loopback: nothing listens, the connection is refused.
    const policy = parsePolicy(`witness down ${w('down')} http://127.0.0.1:9\nwitness quiet ${w('quiet')}\ngroup g any down quiet\nquorum g\n`);
    t.cosigner = new Cosigner(t.log, policy, { mode: 'fail-open', timeoutMs: 2000, logger: silentLogger });
    await t.log.append(Buffer.from('x'));
    await t.cosigner.tick();
    const html = await (await get(env.app, '/audit/')).text();
    const row = (name: string) => new RegExp(`<tr class="witness" data-witness="${name}">.*?</tr>`).exec(html)?.[0] ?? '';
    expect(row('down')).toContain('never cosigned');
    expect(row('down')).toMatch(/last attempt failed: witness http:\/\/127\.0\.0\.1:9/);
    expect(row('quiet')).toContain('never cosigned');
    expect(row('quiet')).not.toContain('last attempt failed');
    expect(html).toContain('Quorum: <code>g</code> (fail-open');
    expect(html).toContain('POST /audit/cosignature');
  });

  it('anchoring configured but nothing anchored yet; no anchoring, no section', async () => {
    env = await makeEnv([{ name: 'audit' }, { name: 'plain' }]);
    expect(await (await get(env.app, '/plain/')).text()).not.toContain('Rekor anchor');
    const t = env.registry.get('audit')!;
    // A Rekor never contacted: no anchor is asked for.
    const rekorKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }) as string;
    t.anchorer = await Anchorer.open({
      paths: t.log.paths,
      config: resolveAnchorConfig({ rekor: { url: 'http://127.0.0.1:9', publicKey: rekorKey } }),
      logVerifiers: t.log.verifiers,
      latest: () => t.log.published.note,
    });
    try {
      const html = await (await get(env.app, '/audit/')).text();
      expect(html).toContain('<p id="anchor">No checkpoint anchored yet.</p>');
    } finally {
      await t.anchorer.stop();
    }
  });
});

describe('page helpers', () => {
  it('esc escapes the five characters HTML gives meaning', () => {
    expect(esc(`<a href="x">&'`)).toBe('&lt;a href=&quot;x&quot;&gt;&amp;&#39;');
    expect(esc(42)).toBe('42');
  });

  it('shellWord leaves plain words alone and single-quotes the rest', () => {
    expect(shellWord('http://127.0.0.1:8080/audit')).toBe('http://127.0.0.1:8080/audit');
    expect(shellWord(`a'b c`)).toBe(`'a'\\''b c'`);
    expect(shellWord('$(rm -rf /)')).toBe(`'$(rm -rf /)'`);
  });

  it('ago names the largest whole unit, at each boundary', () => {
    expect(ago(0)).toBe('0 s ago');
    expect(ago(119)).toBe('119 s ago');
    expect(ago(120)).toBe('2 min ago');
    expect(ago(7199)).toBe('119 min ago');
    expect(ago(7200)).toBe('2 h ago');
    expect(ago(172799)).toBe('47 h ago');
    expect(ago(172800)).toBe('2 d ago');
    expect(ago(-1)).toBe('in the future (clock skew)');
  });
});
