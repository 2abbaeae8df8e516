/**
 * The log side of witnessing: the cosigning loop against our witness (witness/) on
 * loopback, fail-open / fail-closed, witnesses that are down, slow or answer garbage, and
 * cosignatures pushed to the log.
 */
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Log, silentLogger } from '../../src/log/log.js';
import { logPaths, type LogPaths } from '../../src/tile-store/paths.js';
import { generatePrivateKey, parseVerifierKey, SignatureType } from '../../src/note/keys.js';
import { parseNote } from '../../src/note/note.js';
import { keyPair } from '../../src/note/signers.js';
import { verifyCheckpoint } from '../../src/note/verified-checkpoint.js';
import { parsePolicy } from '../../src/note/witness-policy.js';
import { Cosigner, withSignatures } from '../../src/witness-client/cosigner.js';
import type { RunningWitness } from '../../witness/serve.js';
import { dataRootsIn, makeTempDir, removeDir } from '../helpers/temp-dirs.js';
import { entry } from '../vectors.js';
import { runLoopbackWitness } from '../witness/helpers.js';

const ORIGIN = 'example.com/witnessed';
let dir: string;
let paths: LogPaths;
const servers: { close(): void }[] = [];

beforeEach(() => {
  dir = makeTempDir('tlog-cosign-');
  paths = logPaths(dataRootsIn(dir), 'default');
});
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
  removeDir(dir);
});

const edKey = (name: string) => keyPair(generatePrivateKey(name, SignatureType.cosignatureV1));

async function startWitness(log: Log, name = 'witness.example/w1'): Promise<RunningWitness> {
  return runLoopbackWitness({ name, origin: ORIGIN, logKeys: [log.verifierKeys()[0]!], dataDir: path.join(dir, `witness-${name.replace(/\W/g, '_')}`) });
}

function policyFor(w: RunningWitness, quorum = 'w1'): string {
  const keys = Object.values(w.vkeys as Record<string, string>);
  const lines = keys.map((k, i) => `witness w1k${i} ${k} ${w.url}`);
  return `${lines.join('\n')}\ngroup w1 all ${keys.map((_, i) => `w1k${i}`).join(' ')}\nquorum ${quorum}\n`;
}

/** A hono app on loopback (a misbehaving witness). */
async function fakeWitness(handler: (body: string) => Promise<Response> | Response): Promise<string> {
  const app = new Hono();
  app.post('/add-checkpoint', async (c) => handler(await c.req.text()));
  const s = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 });
  servers.push(s);
  await new Promise((r) => s.once('listening', r));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

/** A loopback URL whose port refuses connections: one the OS handed out, closed again. */
async function refusingUrl(): Promise<string> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return `http://127.0.0.1:${port}`;
}

describe('the cosigning loop', () => {
  it('gets Ed25519 and ML-DSA-44 cosignatures from our witness and publishes the cosigned checkpoint', async () => {
    const log = await Log.init(paths, ORIGIN, { publishMode: 'cosigned' });
    const w = await startWitness(log);
    try {
      const policy = parsePolicy(policyFor(w));
      const cosigner = new Cosigner(log, policy, { mode: 'fail-closed', logger: silentLogger });
      await Promise.all(log.appendMany(Array.from({ length: 300 }, (_, i) => entry(i))));
      // Committed, but not published until witnessed (fail-closed).
      expect(log.committed.treeSize).toBe(300);
      expect(log.published.treeSize).toBe(0);
      await cosigner.tick();
      expect(log.published.treeSize).toBe(300);
      const v = verifyCheckpoint(log.published.note, log.verifiers, policy);
      expect(v.witnesses.sort()).toEqual(['w1k0', 'w1k1']);
      // Grow, and a second loop that does not know the witness's size learns it from a 409.
      await Promise.all(log.appendMany(Array.from({ length: 50 }, (_, i) => entry(300 + i))));
      const fresh = new Cosigner(log, policy, { mode: 'fail-closed', logger: silentLogger });
      await fresh.tick();
      expect(log.published.treeSize).toBe(350);
      expect(verifyCheckpoint(log.published.note, log.verifiers, policy).witnesses).toHaveLength(2);
    } finally {
      await w.close();
      await log.close();
    }
  });

  it('never stalls appends when the witness is down, slow or answers garbage; fail-closed holds, fail-open publishes', async () => {
    const log = await Log.init(paths, ORIGIN, { publishMode: 'cosigned' });
    const wk = edKey('witness.example/fake');
    // The slow witness answers only when the test says so (after every round ended).
    let answerSlow: () => void = () => {};
    const slowAnswer = new Promise<void>((r) => (answerSlow = r));
    let slowAnswered = false;
    const slow = await fakeWitness(async () => {
      await slowAnswer;
      slowAnswered = true;
      return new Response('too late');
    });
    const garbage = await fakeWitness(
      () => new Response('\u2014 witness.example/fake AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n'),
    );
    const down = await refusingUrl();
    for (const url of [down, slow, garbage]) {
      const policy = parsePolicy(`witness W ${wk.vkey} ${url}\nquorum W\n`);
      const closed = new Cosigner(log, policy, { mode: 'fail-closed', timeoutMs: 300, logger: silentLogger });
      const before = log.published.treeSize;
      const round = closed.tick();
      // Appends go through while the witness round is pending.
      const r = await log.append(entry(log.treeSize + 1000));
      expect(r.treeSize).toBe(log.treeSize);
      // The round ends by itself (its timeout), without waiting for the slow witness's answer.
      await round;
      expect(slowAnswered).toBe(false);
      expect(log.published.treeSize).toBe(before);
      const open = new Cosigner(log, policy, { mode: 'fail-open', timeoutMs: 300, logger: silentLogger });
      await open.tick();
      expect(log.published.treeSize).toBe(log.treeSize);
      // Published with the log's signatures only: no unverified line was kept.
      expect(parseNote(log.published.note).signatures).toHaveLength(2);
    }
    answerSlow();
    await log.close();
  });

  it('catches a witness up after it was down', async () => {
    const log = await Log.init(paths, ORIGIN, { publishMode: 'cosigned' });
    let w = await startWitness(log);
    const policy = parsePolicy(policyFor(w));
    const url = w.url;
    const cosigner = new Cosigner(log, policy, { mode: 'fail-closed', timeoutMs: 1000, logger: silentLogger });
    await log.append(entry(0));
    await cosigner.tick();
    expect(log.published.treeSize).toBe(1);
    await w.close();
    await Promise.all(log.appendMany(Array.from({ length: 100 }, (_, i) => entry(i + 1))));
    await cosigner.tick();
    expect(log.published.treeSize).toBe(1);
    w = await runLoopbackWitness({
      name: 'witness.example/w1',
      origin: ORIGIN,
      logKeys: [log.verifierKeys()[0]!],
      dataDir: w.dataDir,
      listen: url.replace('http://', ''),
    });
    await cosigner.tick();
    expect(log.published.treeSize).toBe(101);
    await w.close();
    await log.close();
  });
});

/** An engine Logger that keeps every line with its level. */
function recordingLogger() {
  const lines: { level: string; msg: string; obj: Record<string, unknown> }[] = [];
  const at = (level: string) => (obj: object, msg?: string) => void lines.push({ level, msg: msg ?? '', obj: obj as Record<string, unknown> });
  return { lines, logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } };
}

describe('what the cosigning loop logs', () => {
  it("a witness's ML-DSA-44 line that the policy does not list is expected: one debug line, never a warning", async () => {
    const log = await Log.init(paths, ORIGIN, { publishMode: 'cosigned' });
    const w = await startWitness(log);
    try {
      // A policy with the witness's Ed25519 key only (as Sigsum-style policies list them).
      const policy = parsePolicy(`witness w1 ${w.vkeys.cosignatureV1} ${w.url}\nquorum w1\n`);
      const { lines, logger } = recordingLogger();
      const cosigner = new Cosigner(log, policy, { mode: 'fail-closed', logger });
      for (let round = 0; round < 3; round++) {
        await log.append(entry(round));
        await cosigner.tick();
        expect(log.published.treeSize).toBe(round + 1);
      }
      expect(lines.filter((l) => l.level === 'warn')).toEqual([]);
      const debug = lines.filter((l) => l.level === 'debug');
      expect(debug).toHaveLength(1);
      expect(debug[0]!.msg).toMatch(/does not list/);
      const mldsaKeyID = parseVerifierKey(w.vkeys.mldsa44).keyID.toString(16).padStart(8, '0');
      expect(debug[0]!.obj).toMatchObject({ witness: w.url, key: `witness.example/w1+${mldsaKeyID}` });
    } finally {
      await w.close();
      await log.close();
    }
  });

  it('a line from a listed key that does not verify is still a warning, every round', async () => {
    const log = await Log.init(paths, ORIGIN, { publishMode: 'cosigned' });
    const wk = edKey('witness.example/liar');
    const liar = edKey('witness.example/liar');
    // Signed by another key under the listed key's name and key ID: it cannot verify.
    const url = await fakeWitness((body) => {
      const text = parseNote(body.slice(body.indexOf('\n\n') + 2)).text;
      const sig = Buffer.concat([Buffer.from(wk.signer.keyID.toString(16).padStart(8, '0'), 'hex'), Buffer.from(liar.signer.sign(text))]);
      return new Response(`\u2014 witness.example/liar ${sig.toString('base64')}\n`);
    });
    const { lines, logger } = recordingLogger();
    const cosigner = new Cosigner(log, parsePolicy(`witness L ${wk.vkey} ${url}\nquorum L\n`), { mode: 'fail-open', logger });
    for (let round = 0; round < 2; round++) {
      await log.append(entry(round));
      await cosigner.tick();
    }
    expect(lines.filter((l) => l.msg === 'witness returned lines that do not verify').map((l) => l.level)).toEqual(['warn', 'warn']);
    expect(lines.filter((l) => l.level === 'debug')).toEqual([]);
    await log.close();
  });
});

describe('witnesses added to or removed from a running log', () => {
  it('once witnesses are added nothing is published without them, even with batches in flight; removing them publishes the newest at once', async () => {
    const log = await Log.init(paths, ORIGIN);
    let n = 0;
    let stop = false;
    const writer = (async () => {
      while (!stop) await Promise.all(log.appendMany(Array.from({ length: 20 }, () => entry(n++))));
    })();
    while (log.published.treeSize < 100) await new Promise((r) => setTimeout(r, 10));
    expect(log.publishMode).toBe('each');
    await log.setPublishMode('cosigned');
    const held = log.published.treeSize;
    const target = log.treeSize + 200;
    while (log.treeSize < target) await new Promise((r) => setTimeout(r, 10));
    expect(log.published.treeSize).toBe(held);
    expect(Number(readFileSync(path.join(paths.tilesDir, 'checkpoint'), 'utf8').split('\n')[1])).toBe(held);
    stop = true;
    await writer;
    await log.setPublishMode('each');
    expect(log.published.treeSize).toBe(log.treeSize);
    expect(readFileSync(path.join(paths.tilesDir, 'checkpoint'), 'utf8')).toBe(log.committed.note);
    await log.close();
  });
});

describe('cosigned/', () => {
  it("only ever holds checkpoints that met the policy: not a new log's empty tree, nothing while the witnesses are down or do not know the log, nothing failed open", async () => {
    const log = await Log.init(paths, ORIGIN, { publishMode: 'cosigned' });
    const cosignedDir = path.join(paths.historyDir, 'cosigned');
    const filed = () =>
      existsSync(cosignedDir)
        ? readdirSync(cosignedDir, { recursive: true })
            .map(String)
            .filter((n) => !statSync(path.join(cosignedDir, n)).isDirectory())
        : [];
    const w = await startWitness(log);
    // The same witness keys, but another witness that has never heard of this log.
    const stranger = await runLoopbackWitness({
      name: 'witness.example/w1',
      origin: 'example.com/another-log',
      logKeys: [edKey('example.com/another-log').vkey],
      dataDir: path.join(dir, 'stranger'),
    });
    try {
      // Before its first quorum the log serves the empty tree as it signed it, and files nothing.
      expect(filed()).toEqual([]);
      expect(log.published.treeSize).toBe(0);
      expect(parseNote(readFileSync(path.join(paths.tilesDir, 'checkpoint'), 'utf8')).signatures).toHaveLength(2);

      const policy = parsePolicy(policyFor(w));
      const down = parsePolicy(policyFor(w).replaceAll(w.url, 'http://127.0.0.1:9'));
      const unknown = parsePolicy(policyFor(w).replaceAll(w.url, stranger.url));
      await log.append(entry(0));
      for (const p of [down, unknown]) {
        await new Cosigner(log, p, { mode: 'fail-closed', timeoutMs: 1000, logger: silentLogger }).tick();
        expect(log.published.treeSize).toBe(0);
        expect(filed()).toEqual([]);
      }
      // Failing open serves the checkpoint, but it is not filed as cosigned.
      await new Cosigner(log, down, { mode: 'fail-open', timeoutMs: 1000, logger: silentLogger }).tick();
      expect(log.published.treeSize).toBe(1);
      expect(filed()).toEqual([]);

      // The quorum: filed, and what is filed satisfies the policy.
      await log.append(entry(1));
      await new Cosigner(log, policy, { mode: 'fail-closed', timeoutMs: 5000, logger: silentLogger }).tick();
      expect(filed()).toEqual(['002']);
      const note = readFileSync(path.join(cosignedDir, '002'), 'utf8');
      expect(verifyCheckpoint(note, log.verifiers, policy).witnesses.sort()).toEqual(['w1k0', 'w1k1']);

      // A restart that finds no served checkpoint serves the newest cosigned one again, not the
      // newer one no witness saw.
      await log.append(entry(2));
      await log.close();
      rmSync(path.join(paths.tilesDir, 'checkpoint'));
      const reopened = await Log.open(paths, { publishMode: 'cosigned' });
      expect(reopened.published.note).toBe(note);
      expect(reopened.committed.treeSize).toBe(3);
      await reopened.close();
    } finally {
      await stranger.close();
      await w.close();
    }
  });
});

describe('cosignatures pushed to the log', () => {
  it('merges lines that verify against a configured witness key; anything else is refused and changes nothing', async () => {
    const log = await Log.init(paths, ORIGIN, { publishMode: 'cosigned' });
    const wk = edKey('witness.example/pusher');
    const other = edKey('witness.example/stranger');
    const policy = parsePolicy(`witness P ${wk.vkey}\nquorum P\n`);
    const cosigner = new Cosigner(log, policy, { mode: 'fail-closed', logger: silentLogger });
    await log.append(entry(0));
    const note = log.committed.note;
    const text = parseNote(note).text;
    const good = withSignatures(note, [{ name: wk.signer.name, keyID: wk.signer.keyID, signature: wk.signer.sign(text) }]);
    const stranger = withSignatures(note, [{ name: other.signer.name, keyID: other.signer.keyID, signature: other.signer.sign(text) }]);
    const forged = withSignatures(note, [{ name: wk.signer.name, keyID: wk.signer.keyID, signature: other.signer.sign(text) }]);
    await expect(cosigner.accept(stranger)).rejects.toThrow(/not from a configured witness/);
    await expect(cosigner.accept(forged)).rejects.toThrow(/does not verify/);
    await expect(cosigner.accept(note)).rejects.toThrow(/no cosignature lines/);
    expect(log.published.treeSize).toBe(0);
    const r = await cosigner.accept(good);
    expect(r).toMatchObject({ treeSize: 1 });
    expect(verifyCheckpoint(log.published.note, log.verifiers, policy).witnesses).toEqual(['P']);
    await log.close();
  });
});

describe('POST /<tenant>/cosignature', () => {
  it('accepts verified cosignatures over HTTP, refuses others with a 4xx, and serves the result', async () => {
    const { createApp } = await import('../../src/http/app.js');
    const { TenantRegistry, OPEN_AUTH } = await import('../../src/tenants/registry.js');
    const { createLogger } = await import('../../src/http/observe.js');
    const log = await Log.init(paths, ORIGIN, { publishMode: 'cosigned' });
    const wk = edKey('witness.example/pusher');
    const other = edKey('witness.example/stranger');
    const policy = parsePolicy(`witness P ${wk.vkey}\nquorum P\n`);
    const reg = new TenantRegistry();
    const t = await reg.add(log, OPEN_AUTH);
    t.cosigner = new Cosigner(log, policy, { mode: 'fail-closed', logger: silentLogger });
    const app = createApp(reg, { logger: createLogger({ level: 'silent' }) });
    await log.append(entry(0));
    const note = log.committed.note;
    const text = parseNote(note).text;
    const post = (body: string) => app.request('/default/cosignature', { method: 'POST', body });
    const bad = await post(withSignatures(note, [{ name: other.signer.name, keyID: other.signer.keyID, signature: other.signer.sign(text) }]));
    expect(bad.status).toBe(422);
    expect(await bad.json()).toMatchObject({ code: 'verification_failed' });
    expect((await post('not a note')).status).toBe(400);
    expect((await (await app.request('/default/checkpoint')).text()).split('\n')[1]).toBe('0');
    const good = await post(withSignatures(note, [{ name: wk.signer.name, keyID: wk.signer.keyID, signature: wk.signer.sign(text) }]));
    expect(good.status).toBe(200);
    const served = await (await app.request('/default/checkpoint')).text();
    expect(verifyCheckpoint(served, log.verifiers, policy).witnesses).toEqual(['P']);
    // A push is one note: a body over the largest note (1 MiB) is refused before it is read.
    const sized = (n: number) => app.request('/default/cosignature', { method: 'POST', body: 'x'.repeat(n), headers: { 'content-length': String(n) } });
    const over = await sized((1 << 20) + 1);
    expect(over.status).toBe(413);
    expect(await over.json()).toEqual({ error: `body is ${(1 << 20) + 1} bytes, over the largest note, ${1 << 20} bytes`, code: 'too_large' });
    expect((await sized(1 << 20)).status).toBe(400);
    // A tenant without witnesses has no such route.
    t.cosigner = null;
    expect((await post(served)).status).toBe(404);
    await log.close();
  });
});
