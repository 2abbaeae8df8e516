/**
 * The log's page in a real browser: Debian's Chromium, driven by playwright-core, against the
 * service on loopback. A tenant with entries, a witness policy (one witness that cosigned, one
 * that never did) and a Rekor v1 anchor (the fake Rekor); a tenant whose origin needs escaping;
 * a private tenant. What the browser renders is compared with what the API reports.
 *
 * Needs Chromium at /usr/bin/chromium (`apt-get install chromium`; .ci/run installs it), or
 * TLOG_CHROMIUM naming another build. TLOG_PAGE_SCREENSHOT=<file.png> also saves the page of the
 * anchored tenant (docs/page.png is made that way).
 */
import { serve } from '@hono/node-server';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Anchorer, resolveAnchorConfig } from '../../src/anchor/index.js';
import { createApp } from '../../src/http/app.js';
import { Log, silentLogger } from '../../src/log/log.js';
import { logPaths } from '../../src/tile-store/paths.js';
import { generatePrivateKey, SignatureType } from '../../src/note/keys.js';
import { keyPair } from '../../src/note/signers.js';
import { parsePolicy } from '../../src/note/witness-policy.js';
import { OPEN_AUTH, TenantRegistry } from '../../src/tenants/registry.js';
import { Cosigner } from '../../src/witness-client/cosigner.js';
import type { RunningWitness } from '../../witness/serve.js';
import { FakeRekorV1 } from '../anchor/fake-rekor-v1.js';
import { capturingLogger, tokenAuth } from './helpers.js';
import { ensureDist, tlogBin } from '../helpers/dist.js';
import { removeDir, tempDataRoots } from '../helpers/temp-dirs.js';
import { runLoopbackWitness } from '../witness/helpers.js';

const CHROMIUM = process.env.TLOG_CHROMIUM ?? '/usr/bin/chromium';
/** Flags that keep Chromium off the network it has no business with (a closed network refuses it). */
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
/** An origin with every character HTML escapes (c2sp.org/signed-note allows all but spaces and "+"). */
const ODD_ORIGIN = `example.com/<i>"odd"</i>&'x'`;
const READ_TOKEN = 'tlog_test_page_read_token';

let dir: string;
let registry: TenantRegistry;
let witness: RunningWitness;
let rekor: FakeRekorV1;
let anchorer: Anchorer;
let server: ReturnType<typeof serve>;
let base: string;
let browser: Browser;
let context: BrowserContext;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium (as .ci/run does), or set TLOG_CHROMIUM`);
  ensureDist();
  const made = tempDataRoots('tlog-page-');
  dir = made.dir;
  const roots = made.roots;
  registry = new TenantRegistry();

  // "audit": entries, witnessed (fail-open) and anchored.
  const audit = await Log.init(logPaths(roots, 'audit'), 'logs.example.com/audit', { logger: silentLogger, publishMode: 'cosigned' });
  const t = await registry.add(audit, OPEN_AUTH);
  await Promise.all(audit.appendMany(Array.from({ length: 1234 }, (_, i) => Buffer.from(`audit entry ${i}`))));
  witness = await runLoopbackWitness({
    name: 'witness.example/w1',
    origin: audit.origin,
    logKeys: [audit.verifierKeys()[0]!],
    dataDir: path.join(dir, 'witness'),
  });
  const absent = keyPair(generatePrivateKey('witness.example/w2', SignatureType.cosignatureV1)).vkey;
  const policy = parsePolicy(`witness w1 ${witness.vkeys.cosignatureV1} ${witness.url}\nwitness w2 ${absent}\ngroup any1 any w1 w2\nquorum any1\n`);
  t.cosigner = new Cosigner(audit, policy, { mode: 'fail-open', logger: silentLogger });
  await t.cosigner.tick();
  rekor = new FakeRekorV1();
  await rekor.up();
  anchorer = await Anchorer.open({
    paths: audit.paths,
    config: resolveAnchorConfig({ rekor: { url: rekor.url, publicKey: rekor.publicKeyPem }, timeoutMs: 5000 }),
    logVerifiers: audit.verifiers,
    latest: () => audit.published.note,
  });
  t.anchorer = anchorer;
  const anchored = await anchorer.anchorNow(audit.published.note);
  expect(anchored.state).toBe('done');

  // "odd": an origin that needs escaping everywhere it appears.
  const odd = await Log.init(logPaths(roots, 'odd'), ODD_ORIGIN, { logger: silentLogger });
  await registry.add(odd, OPEN_AUTH);
  await odd.append(Buffer.from('odd entry'));

  // "secret": reads need a read token.
  const secret = await Log.init(logPaths(roots, 'secret'), 'logs.example.com/secret', { logger: silentLogger });
  await registry.add(secret, tokenAuth({ readTokens: [READ_TOKEN] }));
  await secret.append(Buffer.from('secret entry'));

  // createApp serves the anchoring receipts itself.
  const app = createApp(registry, { logger: capturingLogger().logger });
  server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 });
  await new Promise((r) => server.once('listening', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  context = await browser.newContext();
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await new Promise((r) => server?.close(r));
  await anchorer?.stop();
  await registry?.closeAll();
  await witness?.close();
  await rekor?.down();
  if (dir) removeDir(dir);
});

/** Opens a page, failing on any console error (a style the CSP blocked, a missing resource). */
async function open(ctx: BrowserContext, url: string) {
  const page = await ctx.newPage();
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  const res = await page.goto(url);
  return { page, res: res!, errors };
}

const text = async (r: Response) => await r.text();

describe('GET /<tenant>/ in Chromium', () => {
  it('renders the origin, keys, tree size, witnesses and anchor the API reports', async () => {
    const { page, res, errors } = await open(context, `${base}/audit/`);
    expect(res.status()).toBe(200);
    const h = res.headers();
    expect(h['content-type']).toBe('text/html; charset=utf-8');
    expect(h['x-content-type-options']).toBe('nosniff');
    expect(h['content-security-policy']).toMatch(/default-src 'none'/);
    expect(h['content-security-policy']).not.toMatch(/script-src|unsafe-inline/);

    const checkpoint = (await text(await fetch(`${base}/audit/checkpoint`))).split('\n');
    const vkeys = (await text(await fetch(`${base}/audit/vkeys`))).trimEnd().split('\n');
    expect(await page.textContent('#origin')).toBe(checkpoint[0]);
    expect(await page.locator('code.vkey').allTextContents()).toEqual(vkeys);
    expect(await page.textContent('#tree-size')).toBe(checkpoint[1]);
    expect(checkpoint[1]).toBe('1234');
    expect(await page.textContent('#root-hash')).toBe(checkpoint[2]);
    expect(await page.textContent('#checkpoint-age')).toMatch(/^\d+ s ago \(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\)$/);

    // The style sheet applied (its CSP hash matches), so the keys select whole on a click.
    expect(
      await page
        .locator('code.vkey')
        .first()
        .evaluate((e) => getComputedStyle(e).userSelect),
    ).toBe('all');
    expect(errors).toEqual([]);

    // Witnesses: w1 cosigned the published checkpoint, w2 never did.
    expect(await page.textContent('tr.witness[data-witness="w1"] td.last')).toMatch(/^size 1234, \d+ s ago/);
    expect(await page.textContent('tr.witness[data-witness="w2"] td.last')).toBe('never cosigned');

    // The anchor is the one GET /<t>/anchors lists, and its link leads to that Rekor entry.
    const anchors = (await (await fetch(`${base}/audit/anchors`)).json()) as { receipts: { treeSize: number; rekorLogIndex: number; verified: boolean }[] };
    const last = anchors.receipts.at(-1)!;
    expect(last.verified).toBe(true);
    expect(await page.textContent('#anchor-size')).toBe(String(last.treeSize));
    const href = (await page.getAttribute('#rekor-entry', 'href'))!;
    expect(href).toBe(`${rekor.url}/api/v1/log/entries?logIndex=${last.rekorLogIndex}`);
    const entry = (await (await fetch(href)).json()) as Record<string, { logIndex: number }>;
    expect(Object.values(entry)[0]!.logIndex).toBe(last.rekorLogIndex);
    expect(await page.textContent('#anchor')).toMatch(/anchored \d+ s ago/);

    const shot = process.env.TLOG_PAGE_SCREENSHOT;
    if (shot) await page.screenshot({ path: shot, fullPage: true });
    await page.close();
  });

  it('escapes an origin full of HTML, and its verify line works as printed', async () => {
    const { page, res, errors } = await open(context, `${base}/odd/`);
    expect(res.status()).toBe(200);
    expect(await page.textContent('#origin')).toBe(ODD_ORIGIN);
    expect(await page.title()).toBe(ODD_ORIGIN);
    expect(await page.locator('h1 i').count()).toBe(0);
    const vkeys = (await text(await fetch(`${base}/odd/vkeys`))).trimEnd().split('\n');
    expect(await page.locator('code.vkey').allTextContents()).toEqual(vkeys);
    expect(errors).toEqual([]);
    // The verify line, run by a POSIX shell with `tlog` as our CLI: the quoting holds. (Not
    // execFileSync: the service answering it runs in this process.)
    const line = (await page.textContent('#verify-command'))!;
    expect(line.startsWith(`tlog verify --url ${base}/odd --vkey '`)).toBe(true);
    const { stdout } = await promisify(execFile)('sh', ['-c', line.replace(/^tlog /, `"${process.execPath}" "${tlogBin}" `)], { encoding: 'utf8' });
    expect(stdout).toMatch(/^ok: example\.com\/<i>"odd"<\/i>&'x' size 1 /);
    await page.close();
  });

  it('lists the public tenants at /, with the tree sizes the API reports', async () => {
    const { page, res } = await open(context, `${base}/`);
    expect(res.status()).toBe(200);
    const names = await page.locator('tr.tenant td:first-child').allTextContents();
    expect(names).toEqual(['audit', 'odd']);
    const sizes = await page.locator('tr.tenant td.size').allTextContents();
    for (const [i, n] of names.entries()) {
      expect(sizes[i]).toBe((await text(await fetch(`${base}/${n}/checkpoint`))).split('\n')[1]);
    }
    await page.click('text=audit');
    expect(await page.textContent('#origin')).toBe('logs.example.com/audit');
    await page.close();
  });

  it('shows a private tenant nothing without its read token, and everything with it', async () => {
    const { page, res } = await open(context, `${base}/secret/`);
    expect(res.status()).toBe(401);
    expect(res.headers()['content-type']).toMatch(/^application\/json/);
    expect(JSON.parse(await page.locator('body').innerText())).toMatchObject({ code: 'unauthorized' });
    expect(await page.content()).not.toContain('logs.example.com/secret');
    // The same answer as its other reads.
    expect((await fetch(`${base}/secret/checkpoint`)).status).toBe(401);
    expect((await fetch(`${base}/secret/vkeys`)).status).toBe(401);
    const index = await open(context, `${base}/`);
    expect(await index.page.content()).not.toContain('secret');
    await page.close();
    await index.page.close();

    const withToken = await browser.newContext({ extraHTTPHeaders: { Authorization: `Bearer ${READ_TOKEN}` } });
    try {
      const p = await open(withToken, `${base}/secret/`);
      expect(p.res.status()).toBe(200);
      expect(await p.page.textContent('#origin')).toBe('logs.example.com/secret');
      const cp = (await text(await fetch(`${base}/secret/checkpoint`, { headers: { Authorization: `Bearer ${READ_TOKEN}` } }))).split('\n');
      expect(await p.page.textContent('#tree-size')).toBe(cp[1]);
      const root = await open(withToken, `${base}/`);
      expect(await root.page.locator('tr.tenant td:first-child').allTextContents()).toEqual(['audit', 'odd', 'secret']);
      // Its verify line names the read token's variable; run as printed with the token, it
      // verifies; without it, `tlog verify` fails with one line saying a read token is needed.
      const line = (await p.page.textContent('#verify-command'))!;
      expect(line.startsWith(`TLOG_READ_TOKEN=<read token> tlog verify --url ${base}/secret --vkey `)).toBe(true);
      const cli = (l: string) => l.replace(/tlog verify /, `"${process.execPath}" "${tlogBin}" verify `);
      const run = promisify(execFile);
      const ok = await run('sh', ['-c', cli(line.replace('<read token>', READ_TOKEN))], { encoding: 'utf8' });
      expect(ok.stdout).toMatch(/^ok: logs\.example\.com\/secret size /);
      const refused = await run('sh', ['-c', cli(line.replace('TLOG_READ_TOKEN=<read token> ', ''))], { encoding: 'utf8' }).then(
        () => null,
        (e: { code: number; stderr: string }) => e,
      );
      expect(refused?.code).toBe(1);
      expect(refused?.stderr).toMatch(/HTTP 401 \(reads of this log need a read token\)/);
    } finally {
      await withToken.close();
    }
  });
});
