/**
 * Rekor v2 for real: the rekor-tiles server (rekor-tiles.ts) and Sigstore's RFC 3161 timestamp
 * authority (timestamp-authority.ts) on loopback, both built from the Go module proxy. A v2 log
 * gives no signed entry timestamp, so each anchor's time is attested by the TSA: a good anchor,
 * the TSA down, a forged timestamp, a timestamp from an untrusted TSA and one over other bytes,
 * Rekor down and back, restarts with jobs pending, a tenant of `tlog serve`; an ECDSA and an
 * Ed25519 (like the public v2 shards) log key. Needs Go on PATH; the first build downloads
 * modules (and the go1.27 toolchain the TSA asks for) for a few minutes.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleFromJSON } from '@sigstore/bundle';
import { toSignedEntity, Verifier } from '@sigstore/verify';
import type { Anchorer } from '../../src/anchor/anchorer.js';
import { resolveAnchorConfig } from '../../src/anchor/config.js';
import { loadAnchorKey } from '../../src/anchor/key.js';
import { Outbox, type AnchorJob } from '../../src/anchor/outbox.js';
import { verifyReceipt } from '../../src/anchor/receipt.js';
import { rekorV2Witness } from '../../src/anchor/rekor.js';
import { rekorTrust, trustMaterial } from '../../src/anchor/trust.js';
import { tsaTrust } from '../../src/anchor/tsa.js';
import { hashToken } from '../../src/http/auth.js';
import { makeLog, openAnchorer, type Fixture } from './helpers.js';
import { buildRekorTiles, RekorTiles } from './rekor-tiles.js';
import { buildTimestampAuthority, forgeGenTime, TimestampAuthority, TsaProxy } from './timestamp-authority.js';
import { until } from '../helpers/wait.js';
import { ensureDist } from '../helpers/dist.js';
import { runTlog, serveSpawner, stopServe } from '../helpers/tlog-cli.js';

let f: Fixture;
let rekor: RekorTiles;
let tsa: TimestampAuthority;
/** A second, real TSA that no tenant trusts. */
let stranger: TimestampAuthority;
/** In front of `tsa`: counts the timestamps it hands out, and tampers when told. */
let proxy: TsaProxy;

beforeAll(async () => {
  ensureDist();
  buildRekorTiles();
  buildTimestampAuthority();
  f = await makeLog('v2');
  rekor = new RekorTiles(path.join(f.dir, 'rekor-tiles'));
  tsa = new TimestampAuthority(path.join(f.dir, 'tsa'), 'file', 'tlog-worm test TSA');
  stranger = new TimestampAuthority(path.join(f.dir, 'stranger'), 'memory');
  await Promise.all([rekor.start(), tsa.start(), stranger.start()]);
  proxy = new TsaProxy(() => tsa.url);
  await proxy.start();
}, 900_000);

afterAll(async () => {
  await proxy?.close();
  await Promise.all([rekor?.close(), tsa?.stop(), stranger?.stop()]);
  await f?.cleanup();
});

const tsaCfg = (url = proxy.url) => ({ tsa: { url, certChain: tsa.chainPem } });
const open = (g: Fixture, cfg = tsaCfg()) => openAnchorer(g, rekor.config(), {}, cfg);
const job = async (g: Fixture, size: number): Promise<AnchorJob> => (await new Outbox(g.paths.stateDir).get(size))!;
const receiptOf = (g: Fixture, name: string) => path.join(g.paths.historyDir, 'anchors', name);
type Json = Record<string, any>;
const stampsOf = (j: Json): Json[] => j.verificationMaterial.timestampVerificationData.rfc3161Timestamps;

describe('anchoring in a real Rekor v2 with time from a real TSA (ECDSA log key)', () => {
  it('a good anchor: the receipt carries the TSA time, verifies offline and with @sigstore/verify; `tlog anchor verify` says when and who', async () => {
    const a = await open(f);
    try {
      const note = f.log.committed.note;
      const before = Date.now();
      const r = await a.anchorNow(note);
      const after = Date.now();
      expect(r.lastError).toBeNull();
      expect(r.state).toBe('done');
      const json = JSON.parse(readFileSync(r.receipt!, 'utf8')) as Json;
      const bundle = bundleFromJSON(json);
      const entry = bundle.verificationMaterial.tlogEntries[0]!;
      expect(entry.kindVersion).toEqual({ kind: 'hashedrekord', version: '0.0.2' });
      expect(entry.inclusionPromise).toBeUndefined(); // v2 gives no SET
      expect(bundle.verificationMaterial.timestampVerificationData?.rfc3161Timestamps).toHaveLength(1);
      // Sigstore's own verifier, with the TSA as trust material, wants one verified timestamp.
      const key = await loadAnchorKey(f.paths.stateDir);
      const trust = trustMaterial(rekorTrust(rekor.publicKeyPem, rekor.url), key.publicKey, key.keyID, [tsaTrust(tsa.chainPem)]);
      expect(() => new Verifier(trust, { ctlogThreshold: 0, timestampThreshold: 1 }).verify(toSignedEntity(bundle, Buffer.from(note)))).not.toThrow();

      const s = await verifyReceipt(r.receipt!, {
        rekorPublicKey: rekor.publicKeyPem,
        logVerifiers: f.log.verifiers,
        anchorPublicKey: key.publicKeyPem,
        tsaCertChains: [tsa.chainPem],
      });
      expect(s).toMatchObject({
        treeSize: 3,
        signedEntryTimestamp: false,
        integratedTime: null,
        entryKind: 'hashedrekord/0.0.2',
        timeEvidence: 'rfc3161-timestamp',
        attestedBy: 'O=tlog-worm tests, CN=tlog-worm test TSA',
      });
      // The TSA shares our clock: its time lies within the anchoring call (genTime has whole seconds).
      expect(Date.parse(s.attestedAt)).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
      expect(Date.parse(s.attestedAt)).toBeLessThanOrEqual(after);
      expect(r.attestedAt).toBe(s.attestedAt);
      expect(r.attestedBy).toBe(s.attestedBy);

      const keyFile = path.join(f.dir, 'rekor-v2.pem');
      writeFileSync(keyFile, rekor.publicKeyPem);
      const ok = runTlog(['anchor', 'verify', r.receipt!, '--rekor-key', keyFile, '--tsa-chain', tsa.chainFile], { timeoutMs: 60_000 });
      expect(ok.stderr).toBe('');
      expect(ok.code).toBe(0);
      expect(ok.stdout).toContain(`anchored at ${s.attestedAt}, attested by O=tlog-worm tests, CN=tlog-worm test TSA (RFC 3161 timestamp ok)`);
      const json2 = JSON.parse(
        runTlog(['anchor', 'verify', r.receipt!, '--rekor-key', keyFile, '--tsa-chain', tsa.chainFile, '--json'], { timeoutMs: 60_000 }).stdout,
      ) as Json;
      expect(json2).toMatchObject({ attestedAt: s.attestedAt, timeEvidence: 'rfc3161-timestamp', checkpointSignedByLog: true, anchorKeyPinned: true });
      // Without the TSA chain, or trusting another TSA, the time cannot be verified: refused.
      const none = runTlog(['anchor', 'verify', r.receipt!, '--rekor-key', keyFile], { timeoutMs: 60_000 });
      expect(none.code).not.toBe(0);
      expect(none.stderr.trim().split('\n')).toHaveLength(1);
      expect(none.stderr).toMatch(/give the certificate chain of the timestamp authority/);
      const strangerChain = path.join(f.dir, 'stranger-chain.pem');
      writeFileSync(strangerChain, stranger.chainPem);
      const other = runTlog(['anchor', 'verify', r.receipt!, '--rekor-key', keyFile, '--tsa-chain', strangerChain], { timeoutMs: 60_000 });
      expect(other.code).not.toBe(0);
      expect(other.stderr).toMatch(/not the configured one/);
    } finally {
      await a.stop();
    }
  });

  it('a receipt whose time evidence is tampered with is refused', async () => {
    const receipt = receiptOf(f, '003.sigstore.json');
    const original = JSON.parse(readFileSync(receipt, 'utf8')) as Json;
    const dir = path.join(f.dir, 'tampered', 'anchors');
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, '003.checkpoint'), readFileSync(receiptOf(f, '003.checkpoint')));
    // A timestamp from the stranger TSA over the very same signature.
    const sig = Buffer.from(original.messageSignature.signature, 'base64');
    const strangers = await fetch(`${stranger.url}/api/v1/timestamp`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ artifactHash: createHash('sha256').update(sig).digest('base64'), hashAlgorithm: 'sha256' }),
    });
    const strangerStamp = Buffer.from(await strangers.arrayBuffer()).toString('base64');
    const cases: [string, (j: Json) => void, RegExp][] = [
      ['no timestamp', (j) => (j.verificationMaterial.timestampVerificationData.rfc3161Timestamps = []), /without an RFC 3161 timestamp has no attested time/],
      ['no timestampVerificationData', (j) => delete j.verificationMaterial.timestampVerificationData, /without an RFC 3161 timestamp has no attested time/],
      ['the timestamp twice', (j) => stampsOf(j).push(stampsOf(j)[0]!), /want one RFC 3161 timestamp, got 2/],
      [
        'a forged time',
        (j) => (stampsOf(j)[0]!.signedTimestamp = forgeGenTime(Buffer.from(stampsOf(j)[0]!.signedTimestamp, 'base64')).toString('base64')),
        /timestamp could not be verified/,
      ],
      ['a timestamp from an untrusted TSA', (j) => (stampsOf(j)[0]!.signedTimestamp = strangerStamp), /not the configured one/],
    ];
    for (const [what, mutate, why] of cases) {
      const j = structuredClone(original);
      mutate(j);
      writeFileSync(path.join(dir, '003.sigstore.json'), JSON.stringify(j));
      await expect(
        verifyReceipt(path.join(dir, '003.sigstore.json'), { rekorPublicKey: rekor.publicKeyPem, tsaCertChains: [tsa.chainPem] }),
        what,
      ).rejects.toThrow(why);
    }
    // The untouched copy verifies: the refusals above are the mutations'.
    writeFileSync(path.join(dir, '003.sigstore.json'), JSON.stringify(original));
    await verifyReceipt(path.join(dir, '003.sigstore.json'), { rekorPublicKey: rekor.publicKeyPem, tsaCertChains: [tsa.chainPem] });
    rmSync(path.dirname(dir), { recursive: true });
  });

  it('a duplicate gets 409 with x-log-index; the receipt is rebuilt from the tiles; still one entry', async () => {
    const sizeBefore = await rekor.treeSize();
    const a = await open(f);
    const first = (await a.list())[0]!;
    await a.stop();
    rmSync(path.join(f.paths.stateDir, 'anchor-outbox'), { recursive: true });
    rmSync(first.receipt!);
    const b = await open(f);
    try {
      const again = await b.anchorNow(f.log.committed.note);
      expect(again.lastError).toBeNull();
      expect(again.state).toBe('done');
      expect(again.rekorLogIndex).toBe(first.rekorLogIndex);
      await verifyReceipt(again.receipt!, { rekorPublicKey: rekor.publicKeyPem, logVerifiers: f.log.verifiers, tsaCertChains: [tsa.chainPem] });
      expect(await rekor.treeSize()).toBe(sizeBefore);
    } finally {
      await b.stop();
    }
  });
});

describe('time evidence refused: nothing stored, nothing sent to Rekor', () => {
  const cases: [string, string, (g: Fixture) => Promise<Anchorer>, RegExp][] = [
    ['a forged timestamp', 'forged', (g) => ((proxy.tamper = 'forge-time'), open(g)), /@sigstore\/verify: timestamp could not be verified/],
    ['a timestamp from an untrusted TSA', 'untrusted', (g) => open(g, tsaCfg(stranger.url)), /not the configured one/],
    ['a timestamp over other bytes', 'other-bytes', (g) => ((proxy.tamper = 'other-bytes'), open(g)), /timestamps other bytes/],
  ];
  for (const [what, tenant, openIt, why] of cases) {
    it(`${what} is refused; the job stays pending and succeeds once the TSA is honest`, async () => {
      const g = await makeLog(tenant, 2);
      const sizeBefore = await rekor.treeSize();
      const a = await openIt(g);
      try {
        const r = await a.anchorNow(g.log.committed.note);
        expect(r.state).toBe('pending');
        expect(r.lastError).toMatch(why);
        expect(r.nextAttemptAt).not.toBeNull();
        expect((await job(g, 2)).timestamp).toBeUndefined();
        expect(existsSync(receiptOf(g, '002.sigstore.json'))).toBe(false);
        expect(existsSync(receiptOf(g, '002.checkpoint'))).toBe(false);
        expect(await rekor.treeSize()).toBe(sizeBefore);
      } finally {
        await a.stop();
        proxy.tamper = 'none';
      }
      // The same job, now with the honest TSA: done, one Rekor entry.
      const b = await open(g);
      try {
        const r = await b.anchorNow(g.log.committed.note);
        expect(r.state).toBe('done');
        await verifyReceipt(r.receipt!, { rekorPublicKey: rekor.publicKeyPem, logVerifiers: g.log.verifiers, tsaCertChains: [tsa.chainPem] });
        expect(await rekor.treeSize()).toBe(sizeBefore + 1);
      } finally {
        await b.stop();
        await g.cleanup();
      }
    });
  }

  it("a TSA time before the job's signature was made is refused (our clock an hour ahead)", async () => {
    const g = await makeLog('too-early', 2);
    const sizeBefore = await rekor.treeSize();
    const a = await openAnchorer(g, rekor.config(), { now: () => Date.now() + 3_600_000 }, tsaCfg());
    try {
      const r = await a.anchorNow(g.log.committed.note);
      expect(r.state).toBe('pending');
      expect(r.lastError).toMatch(/the TSA's time \S+ is not between the signature \(\S+\) and now \(\S+\), give or take 5 minutes/);
      expect((await job(g, 2)).timestamp).toBeUndefined();
      expect(existsSync(receiptOf(g, '002.sigstore.json'))).toBe(false);
      expect(await rekor.treeSize()).toBe(sizeBefore);
    } finally {
      await a.stop();
      await g.cleanup();
    }
  });
});

describe('outages and restarts', () => {
  it('the TSA down: the job waits in the outbox, appends go on; back, the timer finishes it', async () => {
    const g = await makeLog('tsa-down', 2);
    const a = await open(g);
    const sizeBefore = await rekor.treeSize();
    try {
      await tsa.stop();
      const r = await a.anchorNow(g.log.committed.note);
      expect(r.state).toBe('pending');
      expect(r.lastError).toMatch(/^tsa http:\/\/127\.0\.0\.1:\d+/);
      expect((await job(g, 2)).timestamp).toBeUndefined();
      // The log does not wait for its anchoring.
      const appended = await Promise.all(g.log.appendMany(Array.from({ length: 5 }, (_, i) => Buffer.from(`while the TSA is down ${i}`))));
      expect(appended.map((x) => x.index)).toEqual([2, 3, 4, 5, 6]);
      expect(await rekor.treeSize()).toBe(sizeBefore);
      await tsa.start();
      a.start();
      const done = await until('anchored after the TSA is back', async () => (await a.list()).find((j) => j.treeSize === 2 && j.state === 'done'));
      const s = await verifyReceipt(done.receipt!, { rekorPublicKey: rekor.publicKeyPem, logVerifiers: g.log.verifiers, tsaCertChains: [tsa.chainPem] });
      expect(s.attestedBy).toBe('O=tlog-worm tests, CN=tlog-worm test TSA');
    } finally {
      await a.stop();
      await g.cleanup();
    }
  });

  it('Rekor down and back: the timestamp is taken once and kept; each checkpoint its own entry', async () => {
    const a = await open(f);
    try {
      await Promise.all(f.log.appendMany(Array.from({ length: 10 }, (_, i) => Buffer.from(`v2 ${i}`))));
      const sizeBefore = await rekor.treeSize();
      const stampsBefore = proxy.passed;
      await rekor.stop();
      const r1 = await a.anchorNow(f.log.committed.note);
      expect(r1.state).toBe('pending');
      expect(r1.lastError).toMatch(/^rekor /);
      const recorded = (await job(f, 13)).timestamp;
      expect(recorded).toBeDefined();
      // A retry while Rekor is still down does not ask the TSA again.
      await a.anchorNow(f.log.committed.note);
      expect(proxy.passed).toBe(stampsBefore + 1);
      await rekor.start();
      a.start();
      const r = await until('anchored after restart', async () => (await a.list()).find((j) => j.treeSize === 13 && j.state === 'done'));
      expect(proxy.passed).toBe(stampsBefore + 1);
      expect(r.rekorLogIndex).toBe(sizeBefore);
      expect(await rekor.treeSize()).toBe(sizeBefore + 1);
      expect(stampsOf(JSON.parse(readFileSync(r.receipt!, 'utf8'))).map((t) => t.signedTimestamp)).toEqual([recorded]);
      for (const x of await a.list())
        await verifyReceipt(x.receipt!, { rekorPublicKey: rekor.publicKeyPem, logVerifiers: f.log.verifiers, tsaCertChains: [tsa.chainPem] });
    } finally {
      await a.stop();
    }
  });

  it('a restart with jobs pending (Rekor down, then the TSA too): the new process finishes them all', async () => {
    const g = await makeLog('restart', 1);
    const sizeBefore = await rekor.treeSize();
    const stampsBefore = proxy.passed;
    await rekor.stop();
    const a = await open(g);
    expect((await a.anchorNow(g.log.committed.note)).state).toBe('pending'); // size 1: timestamped, not in Rekor
    await tsa.stop();
    await g.log.append(Buffer.from('second'));
    expect((await a.anchorNow(g.log.committed.note)).state).toBe('pending'); // size 2: neither
    await a.stop();
    expect((await job(g, 1)).timestamp).toBeDefined();
    expect((await job(g, 2)).timestamp).toBeUndefined();
    await Promise.all([rekor.start(), tsa.start()]);
    const b = await open(g);
    try {
      b.start();
      const all = await until('both jobs done after the restart', async () => {
        const l = await b.list();
        return l.length === 2 && l.every((j) => j.state === 'done') ? l : null;
      });
      expect(proxy.passed).toBe(stampsBefore + 2);
      expect(await rekor.treeSize()).toBe(sizeBefore + 2);
      for (const x of all) {
        const s = await verifyReceipt(x.receipt!, { rekorPublicKey: rekor.publicKeyPem, logVerifiers: g.log.verifiers, tsaCertChains: [tsa.chainPem] });
        expect(x.attestedAt).toBe(s.attestedAt);
      }
    } finally {
      await b.stop();
      await g.cleanup();
    }
  });

  it("rekor v2 client: a 429 carries its Retry-After into the job (the TSA's timestamp kept)", async () => {
    const stub = http.createServer((_req, res) => {
      res.writeHead(429, { 'Retry-After': '7', 'Content-Type': 'application/json' });
      res.end('{"code":8,"message":"slow down"}');
    });
    await new Promise<void>((r) => stub.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(stub.address() as AddressInfo).port}`;
    const g = await makeLog('throttled', 1);
    try {
      const a = await openAnchorer(g, { ...rekor.config(), url }, {}, tsaCfg());
      try {
        const t = Date.now();
        const r = await a.anchorNow(g.log.committed.note);
        expect(r.state).toBe('pending');
        expect(r.lastError).toMatch(/HTTP 429/);
        expect(Date.parse(r.nextAttemptAt!)).toBeGreaterThanOrEqual(t + 7000 - 5);
        expect((await job(g, 1)).timestamp).toBeDefined();
      } finally {
        await a.stop();
      }
      // And the witness alone says what it saw.
      const key = await loadAnchorKey(g.paths.stateDir);
      const w = rekorV2Witness(resolveAnchorConfig({ rekor: { ...rekor.config(), url }, ...tsaCfg() }), { logID: Buffer.alloc(32), spki: key.spki });
      const content = {
        $case: 'messageSignature' as const,
        messageSignature: { messageDigest: { algorithm: 1, digest: Buffer.alloc(32) }, signature: Buffer.from('x') },
      };
      await expect(w.testify(content, key.publicKeyPem)).rejects.toMatchObject({ retryable: true, status: 429, retryAfterMs: 7000 });
    } finally {
      stub.close();
      await g.cleanup();
    }
  });
});

describe('a tenant of `tlog serve` anchoring in Rekor v2 with a TSA', () => {
  const spawnServe = serveSpawner();

  async function serve(config: string): Promise<{ base: string; stop: () => Promise<number | null> }> {
    const p = await spawnServe(['--config', config], { cwd: path.dirname(config), env: { TLOG_LOG_LEVEL: 'warn' } });
    return { base: `${p.url}/timed`, stop: () => stopServe(p) };
  }

  it('configured by URL and chain file; GET /<t>/anchors reports the attested time; a job left pending is finished by `tlog anchor now`', async () => {
    const dir = path.join(f.dir, 'serve');
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'rekor.pem'), rekor.publicKeyPem);
    writeFileSync(path.join(dir, 'tsa-chain.pem'), readFileSync(tsa.chainFile));
    const token = 'tlog_test_v2_anchor_token';
    writeFileSync(
      path.join(dir, 'tlog.yaml'),
      [
        'listen: 127.0.0.1:0',
        'tenants:',
        '  - name: timed',
        '    origin: example.com/timed',
        '    credentials:',
        `      tokens: ["${hashToken(token)}"]`,
        '    anchoring:',
        '      intervalHours: 0.0001',
        '      tickSeconds: 0.2',
        '      timeoutSeconds: 2',
        '      rekor:',
        '        apiVersion: v2',
        `        url: ${rekor.url}`,
        `        readUrl: ${rekor.readUrl}`,
        '        publicKeyFile: rekor.pem',
        '      tsa:',
        `        url: ${proxy.url}`,
        '        certChainFile: tsa-chain.pem',
        '',
      ].join('\n'),
    );
    const append = async (base: string, n: number) => {
      for (let i = 0; i < n; i++) {
        const res = await fetch(`${base}/append`, { method: 'POST', body: `timed entry ${Math.random()}`, headers: { Authorization: `Bearer ${token}` } });
        expect(res.status).toBe(200);
      }
    };
    type Listed = { treeSize: number; verified: boolean; attestedAt: string | null; attestedBy: string | null; receipt: string; refused?: string };
    const listed = async (base: string) => ((await (await fetch(`${base}/anchors`)).json()) as { receipts: Listed[] }).receipts;

    let s = await serve(path.join(dir, 'tlog.yaml'));
    await append(s.base, 3);
    const first = await until('a verified receipt for size 3', async () => (await listed(s.base)).find((x) => x.treeSize === 3 && x.verified));
    expect(first.attestedBy).toBe('O=tlog-worm tests, CN=tlog-worm test TSA');
    const file = path.join(dir, 'checkpoints/timed/anchors/003.sigstore.json');
    const summary = await verifyReceipt(file, { rekorPublicKey: rekor.publicKeyPem, tsaCertChains: [tsa.chainPem] });
    expect(first.attestedAt).toBe(summary.attestedAt);

    // Rekor goes down; a new checkpoint's job is timestamped but waits (backoff: 30 s and more).
    await rekor.stop();
    await append(s.base, 2);
    const stateDir = path.join(dir, '.tlog/timed');
    await until('a pending job for size 5 with its timestamp', async () => {
      const j = await new Outbox(stateDir).get(5);
      return j?.state === 'pending' && j.timestamp !== undefined && j.lastError !== null;
    });
    expect(await s.stop()).toBe(0);
    // Rekor is back; the operator anchors by hand: the pending job is retried at once, with the
    // timestamp it already has (the TSA is not asked again).
    await rekor.start();
    const stamps = proxy.passed;
    const now = runTlog(
      [
        'anchor',
        'now',
        '--tenant',
        'timed',
        '--rekor-version',
        'v2',
        '--rekor-url',
        rekor.url,
        '--rekor-read-url',
        rekor.readUrl,
        '--rekor-key',
        'rekor.pem',
        '--tsa-url',
        proxy.url,
        '--tsa-chain',
        'tsa-chain.pem',
      ],
      { cwd: dir, timeoutMs: 60_000 },
    );
    expect(now.stderr).toBe('');
    expect(now.code).toBe(0);
    expect(now.stdout).toMatch(/^anchored timed at size 5: rekor entry \d+\n {2}anchored at \S+Z, attested by O=tlog-worm tests, CN=tlog-worm test TSA\n/);
    expect(proxy.passed).toBe(stamps);
    s = await serve(path.join(dir, 'tlog.yaml'));
    const second = (await listed(s.base)).find((x) => x.treeSize === 5)!;
    expect(second.verified).toBe(true);
    expect(Date.parse(second.attestedAt!)).toBeGreaterThanOrEqual(Date.parse(first.attestedAt!));

    // A receipt changed on disk is no longer vouched for.
    const j = JSON.parse(readFileSync(file, 'utf8')) as Json;
    stampsOf(j)[0]!.signedTimestamp = forgeGenTime(Buffer.from(stampsOf(j)[0]!.signedTimestamp, 'base64')).toString('base64');
    writeFileSync(file, JSON.stringify(j));
    const after = (await listed(s.base)).find((x) => x.treeSize === 3)!;
    expect(after).toMatchObject({ verified: false, attestedAt: null, attestedBy: null, refused: 'the receipt is not the one this service verified' });
    expect(await s.stop()).toBe(0);
  });
});

describe('a real Rekor v2 with an Ed25519 log key (like the public v2 shards)', () => {
  it('anchors and verifies; the log ID is the signed-note key hash over the origin', async () => {
    const g = await makeLog('v2ed', 2);
    const ed = new RekorTiles(path.join(g.dir, 'rekor-tiles'), 'ed25519');
    try {
      await ed.start();
      const a = await openAnchorer(g, ed.config(), {}, tsaCfg());
      try {
        const r = await a.anchorNow(g.log.committed.note);
        expect(r.lastError).toBeNull();
        expect(r.state).toBe('done');
        await verifyReceipt(r.receipt!, {
          rekorPublicKey: ed.publicKeyPem,
          rekorOrigin: ed.origin,
          logVerifiers: g.log.verifiers,
          tsaCertChains: [tsa.chainPem],
        });
        // Without the origin the log ID cannot match.
        await expect(
          verifyReceipt(r.receipt!, { rekorPublicKey: ed.publicKeyPem, rekorOrigin: 'elsewhere.example', tsaCertChains: [tsa.chainPem] }),
        ).rejects.toThrow(/anchor receipt/);
      } finally {
        await a.stop();
      }
    } finally {
      await ed.close();
      await g.cleanup();
    }
  });
});
