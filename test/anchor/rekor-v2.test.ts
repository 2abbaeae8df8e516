/**
 * Rekor v2 for real: sigstore/rekor-tiles v2.3.0 (cmd/rekor-server/posix: Tessera's POSIX
 * backend, no cloud services), built from the Go module proxy by test/interop/go/rekortiles and
 * run on loopback with an ECDSA P-256 log key. Its tiles and checkpoint are served from its
 * storage directory by a small static server, as a CDN would serve a v2 shard.
 *
 * Needs Go >= 1.26 on PATH; the first build downloads the modules and takes a few minutes.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleFromJSON } from '@sigstore/bundle';
import { toSignedEntity, Verifier } from '@sigstore/verify';
import { loadAnchorKey } from '../../src/anchor/key.js';
import { verifyReceipt } from '../../src/anchor/receipt.js';
import { rekorTrust, trustMaterial } from '../../src/anchor/trust.js';
import { repoRoot } from './dist.js';
import { makeLog, openAnchorer, until, type Fixture } from './helpers.js';

const moduleDir = path.join(repoRoot, 'test/interop/go/rekortiles');
const server = path.join(repoRoot, 'test/interop/go/bin/rekor-server-posix');
const PKG = 'github.com/sigstore/rekor-tiles/v2/cmd/rekor-server/posix';

function buildServer(): void {
  const version = spawnSync('go', ['version'], { encoding: 'utf8' });
  if (version.error || version.status !== 0) {
    throw new Error(`\`go\` is not on PATH: test/anchor/rekor-v2.test.ts builds rekor-tiles from ${moduleDir} and needs Go >= 1.26 (${version.error?.message ?? version.stderr})`);
  }
  const b = spawnSync('go', ['build', '-buildvcs=false', '-o', server, PKG], { cwd: moduleDir, encoding: 'utf8', timeout: 900_000 });
  if (b.error || b.status !== 0) throw new Error(`go build ${PKG} failed: ${b.error?.message ?? ''}\n${b.stderr}`);
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
    s.on('error', reject);
  });
}

let dir: string;
let proc: ChildProcess;
let logs = '';
let statics: http.Server;
let rekorUrl: string;
let readUrl: string;
let rekorPem: string;
let f: Fixture;
let ports: number[] = [];

/** Starts (or restarts, on the same ports and storage) the rekor-tiles server and waits for /healthz. */
async function startRekor(): Promise<void> {
  const [httpPort, grpcPort, metricsPort] = ports as [number, number, number];
  logs = '';
  proc = spawn(
    server,
    [
      'serve',
      '--storage-dir', path.join(dir, 'storage'),
      '--signer-filepath', path.join(dir, 'log-key.pem'),
      // The checkpoint origin; @sigstore/verify matches the signer name against the log URL.
      '--hostname', '127.0.0.1',
      '--http-address', '127.0.0.1', '--http-port', String(httpPort),
      '--grpc-address', '127.0.0.1', '--grpc-port', String(grpcPort),
      '--http-metrics-port', String(metricsPort),
      '--checkpoint-interval', '100ms', '--batch-max-age', '20ms',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const p = proc;
  p.stdout!.on('data', (d: Buffer) => (logs += d.toString()));
  p.stderr!.on('data', (d: Buffer) => (logs += d.toString()));
  await until('rekor-tiles healthz', async () => {
    if (p.exitCode !== null) throw new Error(`rekor-server exited ${p.exitCode}:\n${logs}`);
    try {
      return (await fetch(`${rekorUrl}/healthz`)).ok;
    } catch {
      return false;
    }
  }, 30_000);
}

async function stopRekor(): Promise<void> {
  const p = proc;
  if (p.exitCode !== null) return;
  await new Promise<void>((resolve) => {
    p.once('exit', () => resolve());
    p.kill('SIGTERM');
  });
}

beforeAll(async () => {
  buildServer();
  f = await makeLog('v2');
  dir = path.join(f.dir, 'rekor-tiles');
  const storage = path.join(dir, 'storage');
  mkdirSync(storage, { recursive: true });
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  writeFileSync(path.join(dir, 'log-key.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
  rekorPem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
  ports = [await freePort(), await freePort(), await freePort()];
  rekorUrl = `http://127.0.0.1:${ports[0]}`;
  await startRekor();
  // The read side of the shard: checkpoint and tiles, straight from the storage directory.
  statics = http.createServer((req, res) => {
    const rel = decodeURIComponent((req.url ?? '/').split('?')[0]!).replace(/^\/+/, '');
    const p = path.join(storage, rel);
    if (rel.includes('..') || !existsSync(p)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200).end(readFileSync(p));
  });
  await new Promise<void>((r) => statics.listen(0, '127.0.0.1', r));
  readUrl = `http://127.0.0.1:${(statics.address() as net.AddressInfo).port}`;
}, 900_000);

afterAll(async () => {
  proc?.kill('SIGTERM');
  statics?.close();
  await f?.cleanup();
});

const v2 = () => ({ apiVersion: 'v2' as const, url: rekorUrl, readUrl, publicKey: rekorPem });

async function rekorTreeSize(): Promise<number> {
  return Number((await (await fetch(`${readUrl}/checkpoint`)).text()).split('\n')[1]);
}

describe('anchoring in a real Rekor v2 (rekor-tiles, POSIX backend)', () => {
  it('anchors, and the receipt verifies with @sigstore/verify and offline', async () => {
    const a = await openAnchorer(f, v2());
    try {
      const note = f.log.checkpoint.note;
      const r = await a.anchorNow(note);
      expect(r.lastError).toBeNull();
      expect(r.state).toBe('done');
      const bundle = bundleFromJSON(JSON.parse(readFileSync(r.receipt!, 'utf8')));
      const entry = bundle.verificationMaterial.tlogEntries[0]!;
      expect(entry.kindVersion).toEqual({ kind: 'hashedrekord', version: '0.0.2' });
      expect(entry.inclusionPromise).toBeUndefined(); // v2 gives no SET
      const key = await loadAnchorKey(f.paths.stateDir);
      const v = new Verifier(trustMaterial(rekorTrust(rekorPem, rekorUrl), key.publicKey, key.keyID), { ctlogThreshold: 0, timestampThreshold: 0 });
      expect(() => v.verify(toSignedEntity(bundle, Buffer.from(note)))).not.toThrow();
      const s = await verifyReceipt(r.receipt!, { rekorPublicKey: rekorPem, logVerifiers: f.log.verifiers, anchorPublicKey: key.publicKeyPem });
      expect(s).toMatchObject({ treeSize: 3, signedEntryTimestamp: false, integratedTime: null, entryKind: 'hashedrekord/0.0.2' });

      // A tampered receipt fails.
      const j = JSON.parse(readFileSync(r.receipt!, 'utf8'));
      j.messageSignature.messageDigest.digest = Buffer.alloc(32, 1).toString('base64');
      const bad = path.join(path.dirname(r.receipt!), 'tampered', '003.sigstore.json');
      mkdirSync(path.dirname(bad), { recursive: true });
      writeFileSync(bad, JSON.stringify(j));
      await expect(verifyReceipt(bad, { rekorPublicKey: rekorPem, checkpointNote: note })).rejects.toThrow(/anchor receipt/);
      rmSync(path.dirname(bad), { recursive: true });
    } finally {
      await a.stop();
    }
  });

  it('a duplicate gets 409 with x-log-index; the receipt is rebuilt from the tiles; still one entry', async () => {
    const sizeBefore = await rekorTreeSize();
    const a = await openAnchorer(f, v2());
    const first = (await a.list())[0]!;
    await a.stop();
    rmSync(path.join(f.paths.stateDir, 'anchor-outbox'), { recursive: true });
    rmSync(first.receipt!);
    const b = await openAnchorer(f, v2());
    try {
      const again = await b.anchorNow(f.log.checkpoint.note);
      expect(again.lastError).toBeNull();
      expect(again.state).toBe('done');
      expect(again.rekorLogIndex).toBe(first.rekorLogIndex);
      await verifyReceipt(again.receipt!, { rekorPublicKey: rekorPem, logVerifiers: f.log.verifiers });
      expect(await rekorTreeSize()).toBe(sizeBefore);
    } finally {
      await b.stop();
    }
  });

  it('Rekor down: pending; after its restart the timer anchors; each checkpoint its own entry', async () => {
    const a = await openAnchorer(f, v2());
    try {
      await Promise.all(f.log.appendMany(Array.from({ length: 10 }, (_, i) => Buffer.from(`v2 ${i}`))));
      const sizeBefore = await rekorTreeSize();
      await stopRekor();
      const r1 = await a.anchorNow(f.log.checkpoint.note);
      expect(r1.state).toBe('pending');
      expect(r1.lastError).toMatch(/rekor/);
      await startRekor();
      a.start();
      const r = await until('anchored after restart', async () => (await a.list()).find((j) => j.treeSize === 13 && j.state === 'done'));
      expect(await rekorTreeSize()).toBe(sizeBefore + 1);
      for (const x of await a.list()) await verifyReceipt(x.receipt!, { rekorPublicKey: rekorPem, logVerifiers: f.log.verifiers });
    } finally {
      await a.stop();
    }
  });
});
