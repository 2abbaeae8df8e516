/**
 * The process killed mid-job (SIGKILL of a child running the compiled Anchorer), then restarted:
 * - after the job was recorded, before the upload;
 * - after Rekor logged the entry, before the answer reached us (between upload and receipt);
 * - after the receipt was stored, before the job was marked done.
 * Each ends with exactly one Rekor entry for the checkpoint, the job done, and a verified receipt.
 * The second case runs against our Rekor v1 and against the real rekor-tiles (Rekor v2).
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Outbox } from '../../src/anchor/outbox.js';
import { verifyReceipt } from '../../src/anchor/receipt.js';
import type { FakeRekorV1 } from './fake-rekor-v1.js';
import { ensureDist, repoRoot } from '../helpers/dist.js';
import { downRekorV1AndLog, upRekorV1AndLog, type Fixture } from './helpers.js';
import { buildRekorTiles, RekorTiles } from './rekor-tiles.js';
import { buildTimestampAuthority, TimestampAuthority } from './timestamp-authority.js';
import { makeTempDir } from '../helpers/temp-dirs.js';

const CHILD = path.join(repoRoot, 'test/anchor/fixtures/anchor-child.mjs');

let rekor: FakeRekorV1;
let f: Fixture;
let keyFile: string;

beforeAll(() => ensureDist(), 240_000);

// The child opens the log itself: this process lets go of it (one writer per log).
beforeEach(async () => ({ rekor, f, keyFile } = await upRekorV1AndLog({ tenant: 'crash', forAnotherProcess: true })));
afterEach(() => downRekorV1AndLog({ rekor, f }));

interface Run {
  lines: string[];
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** Runs the child; `killWhen` sees each stdout line (and the fake's commit) and says when to SIGKILL. */
function runChild(hold?: string, killOn?: (line: string) => boolean, url = rekor.url, extra: string[] = []): { done: Promise<Run>; kill: () => void } {
  const args = [
    CHILD,
    '--tiles',
    f.roots.tilesRoot,
    '--checkpoints',
    f.roots.checkpointsRoot,
    '--state',
    f.roots.stateRoot,
    '--tenant',
    'crash',
    '--rekor-url',
    url,
    '--rekor-key',
    keyFile,
    ...extra,
  ];
  if (hold) args.push('--hold', hold);
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let stderr = '';
  let buf = '';
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      lines.push(line);
      if (killOn?.(line)) child.kill('SIGKILL');
    }
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<Run>((resolve) => child.on('exit', (code, signal) => resolve({ lines, code, signal, stderr })));
  return { done, kill: () => child.kill('SIGKILL') };
}

async function expectOneVerifiedAnchor(): Promise<void> {
  const jobs = await new Outbox(f.paths.stateDir).all();
  expect(jobs.map((j) => j.state)).toEqual(['done']);
  expect(rekor.entriesWithDigest(jobs[0]!.digest)).toHaveLength(1);
  expect(rekor.entries).toHaveLength(1);
  await verifyReceipt(path.join(f.paths.historyDir, jobs[0]!.receipt!), { rekorPublicKey: rekor.publicKeyPem, logVerifiers: f.log.verifiers });
}

async function restartToDone(): Promise<Run> {
  const r = await runChild().done;
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(r.lines.at(-1)).toMatch(/^done .*"state":"done"/);
  return r;
}

describe('SIGKILL mid-job, then restart', () => {
  it('after the job is recorded, before the upload', async () => {
    const r = await runChild('after-enqueue', (l) => l.startsWith('enqueued')).done;
    expect(r.signal).toBe('SIGKILL');
    expect(rekor.entries).toHaveLength(0);
    expect((await new Outbox(f.paths.stateDir).all()).map((j) => j.state)).toEqual(['pending']);
    await restartToDone();
    await expectOneVerifiedAnchor();
  });

  it('between upload and receipt: Rekor logged the entry, the answer never arrived', async () => {
    let kill: () => void = () => {};
    let committed = 0;
    rekor.onCommit = async () => {
      committed++;
      kill(); // dies before Rekor's 201 is even sent
      await new Promise((r) => setTimeout(r, 100));
    };
    const c = runChild();
    kill = c.kill;
    const r = await c.done;
    expect(r.signal).toBe('SIGKILL');
    expect(committed).toBe(1);
    expect(r.lines).toContain('enqueued 3');
    expect((await new Outbox(f.paths.stateDir).all()).map((j) => j.state)).toEqual(['pending']);
    rekor.onCommit = null;
    await restartToDone();
    // The restart re-sent the identical entry: 409, then the GET of the existing one.
    expect(rekor.requests.filter((q) => q.method === 'POST').map((q) => q.status)).toEqual([201, 409]);
    await expectOneVerifiedAnchor();
  });

  it('after the receipt is stored, before the job is marked done', async () => {
    const r = await runChild('after-receipt', (l) => l.startsWith('receipt-stored')).done;
    expect(r.signal).toBe('SIGKILL');
    expect((await new Outbox(f.paths.stateDir).all()).map((j) => j.state)).toEqual(['pending']);
    const before = rekor.requests.length;
    await restartToDone();
    // The stored receipt verified: nothing was sent to Rekor again.
    expect(rekor.requests.length).toBe(before);
    await expectOneVerifiedAnchor();
  });
});

describe('SIGKILL between upload and receipt against the real Rekor v2', () => {
  let tiles: RekorTiles;
  let tsa: TimestampAuthority;
  let proxy: http.Server;
  let proxyUrl: string;
  let onAnswer: (() => Promise<void>) | null = null;
  const posts: number[] = [];

  beforeAll(async () => {
    buildRekorTiles();
    buildTimestampAuthority();
    const work = makeTempDir('tlog-rekor-tiles-');
    tiles = new RekorTiles(path.join(work, 'rt'));
    await tiles.start();
    tsa = new TimestampAuthority(path.join(work, 'tsa'), 'memory');
    await tsa.start();
    // In front of rekor-tiles: forwards everything, and can hold Rekor's answer to a POST.
    proxy = http.createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const up = await fetch(tiles.url + req.url, {
        method: req.method,
        headers: { 'content-type': req.headers['content-type'] ?? 'application/json' },
        body: req.method === 'POST' ? Buffer.concat(chunks) : undefined,
      });
      const body = Buffer.from(await up.arrayBuffer());
      if (req.method === 'POST') posts.push(up.status);
      if (req.method === 'POST' && onAnswer) await onAnswer();
      const headers: Record<string, string> = {};
      up.headers.forEach((v, k) => (headers[k] = v));
      delete headers['content-length'];
      delete headers['transfer-encoding'];
      res.writeHead(up.status, headers).end(body);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  }, 900_000);

  afterAll(async () => {
    proxy?.close();
    await tiles?.close();
    await tsa?.stop();
  });

  it('Rekor v2 logged the entry, the child died before its answer; the restart gets 409 and rebuilds the receipt', async () => {
    writeFileSync(keyFile, tiles.publicKeyPem);
    const v2args = [
      '--rekor-version',
      'v2',
      '--rekor-read-url',
      tiles.readUrl,
      '--rekor-origin',
      tiles.origin,
      '--tsa-url',
      tsa.url,
      '--tsa-chain',
      tsa.chainFile,
    ];
    const sizeBefore = await tiles.treeSize();
    let c: ReturnType<typeof runChild> | null = null;
    onAnswer = async () => {
      c?.kill();
      await new Promise((r) => setTimeout(r, 100));
    };
    c = runChild(undefined, undefined, proxyUrl, v2args);
    const r = await c.done;
    expect(r.signal).toBe('SIGKILL');
    expect(posts).toEqual([201]);
    expect(await tiles.treeSize()).toBe(sizeBefore + 1);
    onAnswer = null;
    const again = await runChild(undefined, undefined, proxyUrl, v2args).done;
    expect(again.stderr).toBe('');
    expect(again.lines.at(-1)).toMatch(/^done .*"state":"done"/);
    expect(posts).toEqual([201, 409]);
    expect(await tiles.treeSize()).toBe(sizeBefore + 1);
    const jobs = await new Outbox(f.paths.stateDir).all();
    expect(jobs.map((j) => j.state)).toEqual(['done']);
    const s = await verifyReceipt(path.join(f.paths.historyDir, jobs[0]!.receipt!), {
      rekorPublicKey: tiles.publicKeyPem,
      logVerifiers: f.log.verifiers,
      tsaCertChains: [tsa.chainPem],
    });
    // The timestamp recorded before the killed upload is the one in the rebuilt receipt.
    expect(s.timeEvidence).toBe('rfc3161-timestamp');
    expect(jobs[0]!.attestedAt).toBe(s.attestedAt);
    const receipt = JSON.parse(readFileSync(path.join(f.paths.historyDir, jobs[0]!.receipt!), 'utf8'));
    expect(receipt.verificationMaterial.timestampVerificationData.rfc3161Timestamps.map((t: { signedTimestamp: string }) => t.signedTimestamp)).toEqual([
      jobs[0]!.timestamp,
    ]);
  });
});
