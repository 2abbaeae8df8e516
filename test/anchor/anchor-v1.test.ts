/**
 * Anchoring against our loopback Rekor v1 (fake-rekor-v1.ts): the receipt is a Sigstore bundle
 * that the real @sigstore/verify accepts against the Rekor key, and that fails once tampered with.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bundleFromJSON, type bundleToJSON } from '@sigstore/bundle';
import { toSignedEntity, Verifier } from '@sigstore/verify';
import { anchorKeyPath, createAnchorKey, loadAnchorKey } from '../../src/anchor/key.js';
import { Outbox } from '../../src/anchor/outbox.js';
import { verifyReceipt } from '../../src/anchor/receipt.js';
import { rekorTrust, trustMaterial } from '../../src/anchor/trust.js';
import { anchorRoutes } from '../../src/anchor/routes.js';
import { FakeRekorV1 } from './fake-rekor-v1.js';
import { downRekorV1AndLog, makeLog, openAnchorer, upRekorV1AndLog, type Fixture } from './helpers.js';

let rekor: FakeRekorV1;
let f: Fixture;

beforeEach(async () => ({ rekor, f } = await upRekorV1AndLog()));
afterEach(() => downRekorV1AndLog({ rekor, f }));

const sha256hex = (s: string) => createHash('sha256').update(Buffer.from(s, 'utf8')).digest('hex');

describe('anchoring key', () => {
  it('is P-256, 0600, never overwritten, and refused when readable by others', async () => {
    const dir = path.join(f.dir, 'keystate');
    const k = await createAnchorKey(dir);
    expect(statSync(anchorKeyPath(dir)).mode & 0o777).toBe(0o600);
    expect(k.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect((await loadAnchorKey(dir)).keyID).toBe(k.keyID);
    await expect(createAnchorKey(dir)).rejects.toThrow(/already exists/);
    const { chmodSync } = await import('node:fs');
    chmodSync(anchorKeyPath(dir), 0o644);
    await expect(loadAnchorKey(dir)).rejects.toThrow(/readable by others/);
  });
});

describe('anchoring against a loopback Rekor v1', () => {
  it('anchors the checkpoint, stores a receipt that @sigstore/verify accepts, once', async () => {
    const a = await openAnchorer(f, { url: rekor.url, publicKey: rekor.publicKeyPem });
    try {
      const note = f.log.committed.note;
      const r = await a.anchorNow(note);
      expect(r.state).toBe('done');
      expect(r.treeSize).toBe(3);
      expect(r.digest).toBe(sha256hex(note));
      expect(r.receipt).toBe(path.join(f.paths.historyDir, 'anchors', '003.sigstore.json'));
      expect(readFileSync(path.join(f.paths.historyDir, 'anchors', '003.checkpoint'), 'utf8')).toBe(note);
      expect(rekor.entriesWithDigest(r.digest)).toHaveLength(1);

      // The receipt, checked by the real @sigstore/verify with trust material of our own making.
      const bundle = bundleFromJSON(JSON.parse(readFileSync(r.receipt!, 'utf8')));
      expect(bundle.mediaType).toMatch(/^application\/vnd\.dev\.sigstore\.bundle/);
      const entry = bundle.verificationMaterial.tlogEntries[0]!;
      expect(entry.inclusionPromise?.signedEntryTimestamp.length).toBeGreaterThan(0);
      expect(entry.inclusionProof?.checkpoint?.envelope).toContain('127.0.0.1 - ');
      const key = await loadAnchorKey(f.paths.stateDir);
      const v = new Verifier(trustMaterial(rekorTrust(rekor.publicKeyPem, rekor.url), key.publicKey, key.keyID), { ctlogThreshold: 0 });
      expect(() => v.verify(toSignedEntity(bundle, Buffer.from(note)))).not.toThrow();
      // ...and fails for any other checkpoint.
      expect(() => v.verify(toSignedEntity(bundle, Buffer.from(note + 'x')))).toThrow();

      // Our offline verifier: everything, including that the checkpoint is ours.
      const s = await verifyReceipt(r.receipt!, { rekorPublicKey: rekor.publicKeyPem, logVerifiers: f.log.verifiers, anchorPublicKey: key.publicKeyPem });
      expect(s).toMatchObject({ treeSize: 3, origin: 'example.com/anchored', rekorLogIndex: 0, signedEntryTimestamp: true, entryKind: 'hashedrekord/0.0.1' });

      // Again: the tree size is anchored already, nothing is uploaded.
      const posts = rekor.requests.length;
      expect((await a.anchorNow(note)).state).toBe('done');
      expect(rekor.requests.length).toBe(posts);
      expect(await a.list()).toHaveLength(1);
    } finally {
      await a.stop();
    }
  });

  it('refuses a note that is not a checkpoint of this log', async () => {
    const other = await makeLog('other', 1);
    const a = await openAnchorer(f, { url: rekor.url, publicKey: rekor.publicKeyPem });
    try {
      await expect(a.anchorNow(other.log.committed.note)).rejects.toThrow(/not a checkpoint of this log/);
      await expect(a.anchorNow('hello\n')).rejects.toThrow(/not a checkpoint of this log/);
      expect(rekor.entries).toHaveLength(0);
    } finally {
      await a.stop();
      await other.cleanup();
    }
  });

  it('a 409 for an entry Rekor already has counts as success and fetches the existing entry', async () => {
    const a = await openAnchorer(f, { url: rekor.url, publicKey: rekor.publicKeyPem });
    const note = f.log.committed.note;
    const first = await a.anchorNow(note);
    await a.stop();
    // Forget locally (as if the state were restored from an old backup): the upload repeats.
    const { rmSync } = await import('node:fs');
    rmSync(path.join(f.paths.stateDir, 'anchor-outbox'), { recursive: true });
    rmSync(first.receipt!);
    const b = await openAnchorer(f, { url: rekor.url, publicKey: rekor.publicKeyPem });
    try {
      const again = await b.anchorNow(note);
      expect(again.state).toBe('done');
      expect(again.rekorLogIndex).toBe(first.rekorLogIndex);
      expect(rekor.requests.filter((q) => q.status === 409)).toHaveLength(1);
      expect(rekor.requests.some((q) => q.method === 'GET' && q.path.startsWith('/api/v1/log/entries/'))).toBe(true);
      expect(rekor.entries).toHaveLength(1);
      await verifyReceipt(again.receipt!, { rekorPublicKey: rekor.publicKeyPem, logVerifiers: f.log.verifiers });
    } finally {
      await b.stop();
    }
  });

  it('one anchor per tree size; successive sizes get their own entries and receipts', async () => {
    const a = await openAnchorer(f, { url: rekor.url, publicKey: rekor.publicKeyPem });
    try {
      await a.anchorNow(f.log.committed.note);
      await Promise.all(f.log.appendMany(Array.from({ length: 300 }, (_, i) => Buffer.from(`more ${i}`))));
      const r = await a.anchorNow(f.log.committed.note);
      expect(r.receipt).toBe(path.join(f.paths.historyDir, 'anchors', '303.sigstore.json'));
      expect(rekor.entries).toHaveLength(2);
      // The first receipt still verifies: its proof is against Rekor's tree as it was then.
      for (const x of await a.list()) await verifyReceipt(x.receipt!, { rekorPublicKey: rekor.publicKeyPem, logVerifiers: f.log.verifiers });
    } finally {
      await a.stop();
    }
  });

  it('a second process cannot run the same outbox', async () => {
    const a = await openAnchorer(f, { url: rekor.url, publicKey: rekor.publicKeyPem });
    try {
      await expect(openAnchorer(f, { url: rekor.url, publicKey: rekor.publicKeyPem })).rejects.toThrow(/run by another process/);
    } finally {
      await a.stop();
    }
  });

  it('does not count a receipt that fails verification against the configured key', async () => {
    const wrong = new FakeRekorV1();
    const a = await openAnchorer(f, { url: rekor.url, publicKey: wrong.publicKeyPem });
    try {
      const r = await a.anchorNow(f.log.committed.note);
      expect(r.state).toBe('pending');
      expect(r.lastError).toMatch(/anchor receipt/);
      expect(existsSync(path.join(f.paths.historyDir, 'anchors', '003.sigstore.json'))).toBe(false);
    } finally {
      await a.stop();
    }
  });

  it('serves the receipt list and the receipt files over HTTP', async () => {
    const a = await openAnchorer(f, { url: rekor.url, publicKey: rekor.publicKeyPem });
    await a.anchorNow(f.log.committed.note);
    await a.stop();
    const app = anchorRoutes((t) => (t === 'anchored' ? f.log : undefined));
    const list = await app.request('/anchored/anchors');
    expect(list.status).toBe(200);
    const body = (await list.json()) as { receipts: { treeSize: number; receipt: string; checkpoint: string; rekorLogIndex: number }[] };
    const job = (await new Outbox(f.paths.stateDir).get(3))!;
    const entry = {
      treeSize: 3,
      receipt: '/anchored/anchors/003.sigstore.json',
      checkpoint: '/anchored/anchors/003.checkpoint',
      rekorLogIndex: 0,
      kind: 'hashedrekord/0.0.1',
    };
    // v1: the attested time is the SET's integrated time, attested by the Rekor log.
    const summary = await verifyReceipt(job.receipt ? path.join(f.paths.historyDir, job.receipt) : '', { rekorPublicKey: rekor.publicKeyPem });
    expect(summary.attestedAt).toBe(new Date(summary.integratedTime! * 1000).toISOString());
    expect(body.receipts).toEqual([{ ...entry, verified: true, attestedAt: summary.attestedAt, attestedBy: `rekor ${rekor.url}` }]);
    const file = await app.request('/anchored/anchors/003.sigstore.json');
    expect(file.status).toBe(200);
    expect(bundleFromJSON(await file.json()).verificationMaterial.tlogEntries).toHaveLength(1);
    expect(await (await app.request('/anchored/anchors/003.checkpoint')).text()).toBe(f.log.committed.note);
    expect((await app.request('/anchored/anchors/anchor-key.pem')).status).toBe(200);
    for (const bad of ['/anchored/anchors/../../state', '/anchored/anchors/3.sigstore.json', '/anchored/anchors/.003.sigstore.json.tmp', '/nobody/anchors']) {
      expect((await app.request(bad)).status).toBe(404);
    }
  });
});

describe('tampered receipts fail verification', () => {
  let receipt: string;
  let original: string;
  let note: string;
  beforeEach(async () => {
    const a = await openAnchorer(f, { url: rekor.url, publicKey: rekor.publicKeyPem });
    // Two entries first so the proof has hashes to flip.
    const other = await makeLog('filler', 1);
    const b = await openAnchorer(other, { url: rekor.url, publicKey: rekor.publicKeyPem });
    await b.anchorNow(other.log.committed.note);
    await b.stop();
    await other.cleanup();
    note = f.log.committed.note;
    receipt = (await a.anchorNow(note)).receipt!;
    await a.stop();
    original = readFileSync(receipt, 'utf8');
    await verifyReceipt(receipt, { rekorPublicKey: rekor.publicKeyPem, logVerifiers: f.log.verifiers });
  });

  const flip = (b64: string) => {
    const b = Buffer.from(b64, 'base64');
    b[b.length - 1]! ^= 1;
    return b.toString('base64');
  };
  type J = ReturnType<typeof bundleToJSON> & Record<string, any>;
  const mutations: [string, (j: any) => void][] = [
    [
      'a changed signed entry timestamp',
      (j) =>
        (j.verificationMaterial.tlogEntries[0].inclusionPromise.signedEntryTimestamp = flip(
          j.verificationMaterial.tlogEntries[0].inclusionPromise.signedEntryTimestamp,
        )),
    ],
    [
      'a changed proof hash',
      (j) => (j.verificationMaterial.tlogEntries[0].inclusionProof.hashes[0] = flip(j.verificationMaterial.tlogEntries[0].inclusionProof.hashes[0])),
    ],
    ['a changed proof index', (j) => (j.verificationMaterial.tlogEntries[0].inclusionProof.logIndex = '0')],
    [
      'a changed rekor checkpoint',
      (j) =>
        (j.verificationMaterial.tlogEntries[0].inclusionProof.checkpoint.envelope =
          j.verificationMaterial.tlogEntries[0].inclusionProof.checkpoint.envelope.replace('\n2\n', '\n3\n')),
    ],
    [
      'a changed integrated time',
      (j) => (j.verificationMaterial.tlogEntries[0].integratedTime = String(Number(j.verificationMaterial.tlogEntries[0].integratedTime) + 1)),
    ],
    ['a changed message digest', (j) => (j.messageSignature.messageDigest.digest = flip(j.messageSignature.messageDigest.digest))],
    ['a changed signature', (j) => (j.messageSignature.signature = flip(j.messageSignature.signature))],
    [
      'a changed entry body',
      (j) =>
        (j.verificationMaterial.tlogEntries[0].canonicalizedBody = Buffer.from(
          Buffer.from(j.verificationMaterial.tlogEntries[0].canonicalizedBody, 'base64').toString().replace('"sha256"', '"sha256" '),
        ).toString('base64')),
    ],
    ['a missing SET', (j) => delete j.verificationMaterial.tlogEntries[0].inclusionPromise],
    ['a missing inclusion proof', (j) => delete j.verificationMaterial.tlogEntries[0].inclusionProof],
  ];
  for (const [what, mutate] of mutations) {
    it(`fails with ${what}`, async () => {
      const j = JSON.parse(original) as J;
      mutate(j);
      writeFileSync(receipt, JSON.stringify(j));
      await expect(verifyReceipt(receipt, { rekorPublicKey: rekor.publicKeyPem, logVerifiers: f.log.verifiers })).rejects.toThrow(/anchor receipt/);
    });
  }

  it('fails for another checkpoint, a checkpoint not signed by the log, the wrong Rekor key, the wrong anchoring key', async () => {
    const opts = { rekorPublicKey: rekor.publicKeyPem, logVerifiers: f.log.verifiers };
    await expect(verifyReceipt(receipt, { ...opts, checkpointNote: note.replace('\n3\n', '\n4\n') })).rejects.toThrow(/anchor receipt/);
    const other = await makeLog('other', 3);
    await expect(verifyReceipt(receipt, { ...opts, logVerifiers: other.log.verifiers })).rejects.toThrow(/not signed by this log/);
    await expect(verifyReceipt(receipt, { ...opts, rekorPublicKey: new FakeRekorV1().publicKeyPem })).rejects.toThrow(/anchor receipt/);
    const otherKey = await createAnchorKey(path.join(f.dir, 'k2'));
    await expect(verifyReceipt(receipt, { ...opts, anchorPublicKey: otherKey.publicKeyPem })).rejects.toThrow(/another anchoring key/);
    await other.cleanup();
    // And the outbox never held anything but this job.
    expect((await new Outbox(f.paths.stateDir).all()).map((j) => j.state)).toEqual(['done']);
  });
});
