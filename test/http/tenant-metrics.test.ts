/**
 * /metrics for operators: the per-tenant gauges read at scrape time (tree size, pending, last
 * integration, published checkpoint, each witness's last cosignature, anchors pending, journal
 * bytes, free disk, writable), the service-wide histograms (batch size, batch time, append
 * latency), names after Prometheus' conventions, and bounded cardinality with 100 tenants.
 */
import { statfsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Anchorer } from '../../src/anchor/anchorer.js';
import { resolveAnchorConfig } from '../../src/anchor/config.js';
import { createApp } from '../../src/http/app.js';
import { createLogger, Metrics } from '../../src/http/observe.js';
import { Log, silentLogger } from '../../src/log/log.js';
import { logPaths } from '../../src/tile-store/paths.js';
import { generatePrivateKey, SignatureType } from '../../src/note/keys.js';
import { parseNote } from '../../src/note/note.js';
import { keyPair } from '../../src/note/signers.js';
import { OPEN_AUTH, TenantRegistry } from '../../src/tenants/registry.js';
import { Cosigner, withSignatures } from '../../src/witness-client/cosigner.js';
import { parsePolicy } from '../../src/note/witness-policy.js';
import { FakeRekorV1 } from '../anchor/fake-rekor-v1.js';
import { bundleBody, get, makeEnv, post, type AppEnv } from './helpers.js';
import { dataRootsIn, makeTempDir, removeDir } from '../helpers/temp-dirs.js';

/** Every sample line: name, labels, value. */
function samples(text: string): { name: string; labels: Record<string, string>; value: number; line: string }[] {
  return text
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((line) => {
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (!m) throw new Error(`not a sample line: ${line}`);
      const labels: Record<string, string> = {};
      for (const [, k, v] of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[k!] = v!;
      return { name: m[1]!, labels, value: Number(m[3]), line };
    });
}

/** The value of one series, or undefined when it has no sample. */
function value(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const want = Object.entries(labels);
  return samples(text).find((s) => s.name === name && Object.keys(s.labels).length === want.length && want.every(([k, v]) => s.labels[k] === v))?.value;
}

const scrape = async (env: { app: AppEnv['app'] }) => (await get(env.app, '/metrics')).text();

const PER_TENANT = [
  'tlog_tree_size',
  'tlog_published_tree_size',
  'tlog_pending_entries',
  'tlog_last_integration_timestamp_seconds',
  'tlog_checkpoint_timestamp_seconds',
  'tlog_journal_bytes',
  'tlog_disk_free_bytes',
  'tlog_tenant_writable',
  'tlog_appends_total',
  'tlog_duplicates_total',
];

describe('per-tenant gauges and service-wide histograms', () => {
  let env: AppEnv;
  let rekor: FakeRekorV1;
  beforeAll(async () => {
    env = await makeEnv([{ name: 'alpha' }, { name: 'wit' }]);
    rekor = new FakeRekorV1();
    await rekor.up();
  });
  afterAll(async () => {
    await rekor.down();
    await env.close();
  });

  it('names follow the Prometheus conventions: base units as suffixes, counters _total, histograms with buckets', async () => {
    await post(env.app, '/alpha/append', 'naming');
    const text = await scrape(env);
    const types = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
    const ours = [...types].filter(([n]) => n.startsWith('tlog_'));
    for (const name of [...PER_TENANT, 'tlog_tenants', 'tlog_http_requests_total', 'tlog_batch_entries', 'tlog_integration_seconds', 'tlog_append_seconds']) {
      expect(types.has(name), name).toBe(true);
    }
    for (const [name, type] of ours) {
      expect(name, name).toMatch(/^tlog_[a-z0-9]+(_[a-z0-9]+)*$/);
      // Base units only (seconds, bytes), spelled out, as the last word (before _total).
      expect(name, name).not.toMatch(/_(ms|milliseconds|us|microseconds|ns|minutes|hours|kb|kib|mb|mib|gb|percent)(_|$)/);
      if (/seconds/.test(name)) expect(name, name).toMatch(/_seconds(_total)?$/);
      if (/bytes/.test(name)) expect(name, name).toMatch(/_bytes(_total)?$/);
      if (type === 'counter') expect(name, name).toMatch(/_total$/);
      else expect(name, name).not.toMatch(/_total$/);
      if (/timestamp/.test(name)) expect(name, name).toMatch(/_timestamp_seconds$/);
      if (type === 'histogram') {
        expect(text, name).toMatch(new RegExp(`^${name}_bucket\\{le="\\+Inf"\\} [0-9]+$`, 'm'));
        expect(text, name).toMatch(new RegExp(`^${name}_sum [0-9.e+-]+$`, 'm'));
        expect(text, name).toMatch(new RegExp(`^${name}_count [0-9]+$`, 'm'));
      }
    }
    // The histograms are batch size, batch time, the batch's write and commit, append latency.
    expect(
      ours
        .filter(([, t]) => t === 'histogram')
        .map(([n]) => n)
        .sort(),
    ).toEqual(['tlog_append_seconds', 'tlog_batch_entries', 'tlog_batch_write_seconds', 'tlog_commit_seconds', 'tlog_integration_seconds'].sort());
  });

  it('tree size, pending, integration, checkpoint and journal move with appends; histograms count them', async () => {
    const t = env.registry.get('alpha')!;
    const before = await scrape(env);
    const size0 = value(before, 'tlog_tree_size', { tenant: 'alpha' })!;
    expect(size0).toBe(t.log.treeSize);
    expect(value(before, 'tlog_last_integration_timestamp_seconds', { tenant: 'alpha' })).toBe(t.log.lastIntegrationAt / 1000);
    const appendsBefore = value(before, 'tlog_append_seconds_count')!;
    const batchesBefore = value(before, 'tlog_batch_entries_count')!;

    const sentAt = Date.now() / 1000;
    const r = await post(env.app, '/alpha/append-batch', bundleBody([0, 1, 2].map((i) => Buffer.from(`move-${i}`))));
    expect(r.status).toBe(200);
    const after = await scrape(env);
    expect(value(after, 'tlog_tree_size', { tenant: 'alpha' })).toBe(size0 + 3);
    expect(value(after, 'tlog_published_tree_size', { tenant: 'alpha' })).toBe(size0 + 3);
    expect(value(after, 'tlog_pending_entries', { tenant: 'alpha' })).toBe(0);
    expect(value(after, 'tlog_appends_total', { tenant: 'alpha' })).toBe(size0 + 3);
    // The batch committed after the request was sent; the checkpoint was signed then too (whole seconds).
    expect(value(after, 'tlog_last_integration_timestamp_seconds', { tenant: 'alpha' })).toBeGreaterThanOrEqual(sentAt);
    expect(value(after, 'tlog_checkpoint_timestamp_seconds', { tenant: 'alpha' })).toBeGreaterThanOrEqual(Math.floor(sentAt));
    expect(value(after, 'tlog_checkpoint_timestamp_seconds', { tenant: 'alpha' })).toBe(t.publishedAt);
    // The batch's record went to a preallocated journal segment.
    expect(value(after, 'tlog_journal_bytes', { tenant: 'alpha' })).toBeGreaterThan(0);
    expect(value(after, 'tlog_journal_bytes', { tenant: 'alpha' })).toBe(t.log.journalBytes);
    // One append-batch request is one latency sample; its entries went in one batch or more.
    expect(value(after, 'tlog_append_seconds_count')).toBe(appendsBefore + 1);
    expect(value(after, 'tlog_batch_entries_count')).toBeGreaterThan(batchesBefore);
    expect(value(after, 'tlog_batch_entries_sum')! - value(before, 'tlog_batch_entries_sum')!).toBe(3);

    // A duplicate counts as one, and adds nothing to the tree.
    await post(env.app, '/alpha/append', 'move-0');
    const dup = await scrape(env);
    expect(value(dup, 'tlog_duplicates_total', { tenant: 'alpha' })).toBeGreaterThanOrEqual(1);
    expect(value(dup, 'tlog_tree_size', { tenant: 'alpha' })).toBe(size0 + 3);
  });

  it("free disk is the filesystem's; writable drops to 0 when the log cannot write", async () => {
    const t = env.registry.get('alpha')!;
    const text = await scrape(env);
    const fs = statfsSync(t.log.paths.tilesDir);
    const free = value(text, 'tlog_disk_free_bytes', { tenant: 'alpha' })!;
    expect(free).toBeGreaterThan(0);
    expect(free).toBeLessThanOrEqual(fs.blocks * fs.bsize);
    expect(value(text, 'tlog_tenant_writable', { tenant: 'alpha' })).toBe(1);
    // As the log reports a full disk (test/log/disk-full.test.ts makes a real one).
    Object.defineProperty(t.log, 'cannotWrite', { configurable: true, get: () => 'disk full: 0 bytes free' });
    try {
      expect(value(await scrape(env), 'tlog_tenant_writable', { tenant: 'alpha' })).toBe(0);
    } finally {
      delete (t.log as unknown as Record<string, unknown>).cannotWrite;
    }
    expect(value(await scrape(env), 'tlog_tenant_writable', { tenant: 'alpha' })).toBe(1);
  });

  it("a witness's cosignature timestamp: 0 until it cosigns, then the time it signed", async () => {
    const t = env.registry.get('wit')!;
    const wk = keyPair(generatePrivateKey('witness.example/pusher', SignatureType.cosignatureV1));
    t.cosigner = new Cosigner(t.log, parsePolicy(`witness P ${wk.vkey}\nquorum P\n`), { mode: 'fail-open', logger: silentLogger });
    try {
      expect(value(await scrape(env), 'tlog_witness_cosignature_timestamp_seconds', { tenant: 'wit', witness: 'P' })).toBe(0);
      expect(value(await scrape(env), 'tlog_witness_cosignature_timestamp_seconds', { tenant: 'alpha', witness: 'P' })).toBeUndefined();
      await t.log.append(Buffer.from('to be cosigned'));
      const note = t.log.committed.note;
      const before = Math.floor(Date.now() / 1000);
      const pushed = withSignatures(note, [{ name: wk.signer.name, keyID: wk.signer.keyID, signature: wk.signer.sign(parseNote(note).text) }]);
      const after = Math.floor(Date.now() / 1000);
      expect((await post(env.app, '/wit/cosignature', pushed)).status).toBe(200);
      const at = value(await scrape(env), 'tlog_witness_cosignature_timestamp_seconds', { tenant: 'wit', witness: 'P' })!;
      expect(at).toBeGreaterThanOrEqual(before);
      expect(at).toBeLessThanOrEqual(after);
    } finally {
      await t.cosigner.stop();
      t.cosigner = null;
    }
    expect(value(await scrape(env), 'tlog_witness_cosignature_timestamp_seconds', { tenant: 'wit', witness: 'P' })).toBeUndefined();
  });

  it('anchors pending: 1 while Rekor fails, 0 once the job is done', async () => {
    const t = env.registry.get('wit')!;
    const a = await Anchorer.open({
      paths: t.log.paths,
      config: resolveAnchorConfig({
        rekor: { url: rekor.url, publicKey: rekor.publicKeyPem },
        timeoutMs: 5000,
        initialBackoffMs: 1,
        maxBackoffMs: 10,
        tickMs: 60_000,
      }),
      logVerifiers: t.log.verifiers,
      latest: () => t.log.published.note,
    });
    t.anchorer = a;
    try {
      expect(value(await scrape(env), 'tlog_anchor_jobs_pending', { tenant: 'wit' })).toBe(0);
      expect(value(await scrape(env), 'tlog_anchor_jobs_pending', { tenant: 'alpha' })).toBeUndefined();
      rekor.fail({ kind: 'status', status: 500 });
      expect((await a.anchorNow(t.log.published.note)).state).toBe('pending');
      expect(value(await scrape(env), 'tlog_anchor_jobs_pending', { tenant: 'wit' })).toBe(1);
      expect((await a.anchorNow(t.log.published.note)).state).toBe('done');
      expect(value(await scrape(env), 'tlog_anchor_jobs_pending', { tenant: 'wit' })).toBe(0);
    } finally {
      await a.stop();
      t.anchorer = null;
    }
  });

  it('tenants by state; a tenant no longer served leaves every gauge', async () => {
    const text = await scrape(env);
    expect(value(text, 'tlog_tenants', { state: 'serving' })).toBe(2);
    expect(value(text, 'tlog_tenants', { state: 'opening' })).toBe(0);
    env.registry.markOpening('later');
    expect(value(await scrape(env), 'tlog_tenants', { state: 'opening' })).toBe(1);
    env.registry.forgetOpening('later');
    await env.registry.remove('wit');
    const gone = await scrape(env);
    expect(value(gone, 'tlog_tenants', { state: 'serving' })).toBe(1);
    expect(samples(gone).filter((s) => s.labels.tenant === 'wit' && s.name.startsWith('tlog_') && !s.name.endsWith('_total'))).toEqual([]);
  });
});

describe('cardinality', () => {
  const N = 100;
  let dir: string;
  const registry = new TenantRegistry();
  beforeAll(async () => {
    dir = makeTempDir('tlog-cardinality-');
    const roots = dataRootsIn(dir);
    const logs = await Promise.all(Array.from({ length: N }, (_, i) => Log.init(logPaths(roots, `t${i}`), `example.com/t${i}`, { logger: silentLogger })));
    for (const log of logs) await registry.add(log, OPEN_AUTH);
  }, 300_000);
  afterAll(async () => {
    await registry.closeAll();
    removeDir(dir);
  });

  it(`${N} tenants, each appended to, read and refused: ${PER_TENANT.length} series each, and the rest does not grow with them`, async () => {
    const metrics = new Metrics(false);
    const app = createApp(registry, { logger: createLogger({ level: 'silent' }), metrics });
    for (let i = 0; i < N; i++) {
      expect((await post(app, `/t${i}/append`, `entry of t${i}`)).status).toBe(200);
      expect((await post(app, `/t${i}/append`, `entry of t${i}`)).status).toBe(200); // a duplicate
      await get(app, `/t${i}/checkpoint`);
      await get(app, `/t${i}/tile/0/000.p/1`);
      await get(app, `/t${i}/proof/inclusion?index=9`); // 400
      await get(app, `/t${i}/nosuch`); // 404
    }
    const text = await (await get(app, '/metrics')).text();
    const all = samples(text);
    const byTenant = new Map<string, string[]>();
    for (const s of all) if (s.labels.tenant !== undefined) byTenant.set(s.labels.tenant, [...(byTenant.get(s.labels.tenant) ?? []), s.name]);
    expect(byTenant.size).toBe(N);
    for (const [tenant, names] of byTenant) expect(names.sort(), tenant).toEqual([...PER_TENANT].sort());
    // What is not per tenant: requests by route and status, the histograms, the signer, tenants by state.
    const shared = all.filter((s) => s.labels.tenant === undefined);
    expect(shared.length).toBeLessThan(100);
    expect(all.length).toBe(N * PER_TENANT.length + shared.length);
    // 100 tenants were 5,201 series and 293 KB before (a tenant label on every request counter
    // and histogram); with the default process metrics added, about 1,100 series and 100 KB now.
    expect(Buffer.byteLength(text)).toBeLessThan(N * 1024);
  });
});
