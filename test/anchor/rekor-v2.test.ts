/**
 * Rekor v2 for real: the rekor-tiles server (rekor-tiles.ts) on loopback, with an ECDSA P-256
 * log key and with an Ed25519 one (the key type of the public v2 shards, whose log ID hashes
 * the origin). Needs Go >= 1.26 on PATH; the first build downloads modules for a few minutes.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleFromJSON } from '@sigstore/bundle';
import { toSignedEntity, Verifier } from '@sigstore/verify';
import { loadAnchorKey } from '../../src/anchor/key.js';
import { verifyReceipt } from '../../src/anchor/receipt.js';
import { rekorTrust, trustMaterial } from '../../src/anchor/trust.js';
import { makeLog, openAnchorer, until, type Fixture } from './helpers.js';
import { buildRekorTiles, RekorTiles } from './rekor-tiles.js';

let f: Fixture;
let rekor: RekorTiles;

beforeAll(async () => {
  buildRekorTiles();
  f = await makeLog('v2');
  rekor = new RekorTiles(path.join(f.dir, 'rekor-tiles'));
  await rekor.start();
}, 900_000);

afterAll(async () => {
  await rekor?.close();
  await f?.cleanup();
});

describe('anchoring in a real Rekor v2 (rekor-tiles, POSIX backend, ECDSA log key)', () => {
  it('anchors, and the receipt verifies with @sigstore/verify and offline; tampered, it fails', async () => {
    const a = await openAnchorer(f, rekor.config());
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
      const v = new Verifier(trustMaterial(rekorTrust(rekor.publicKeyPem, rekor.url), key.publicKey, key.keyID), { ctlogThreshold: 0, timestampThreshold: 0 });
      expect(() => v.verify(toSignedEntity(bundle, Buffer.from(note)))).not.toThrow();
      const s = await verifyReceipt(r.receipt!, { rekorPublicKey: rekor.publicKeyPem, logVerifiers: f.log.verifiers, anchorPublicKey: key.publicKeyPem });
      expect(s).toMatchObject({ treeSize: 3, signedEntryTimestamp: false, integratedTime: null, entryKind: 'hashedrekord/0.0.2' });

      const j = JSON.parse(readFileSync(r.receipt!, 'utf8'));
      j.verificationMaterial.tlogEntries[0].inclusionProof.checkpoint.envelope = j.verificationMaterial.tlogEntries[0].inclusionProof.checkpoint.envelope.replace(/\n[0-9]+\n/, '\n99\n');
      const bad = path.join(path.dirname(r.receipt!), 'tampered', '003.sigstore.json');
      mkdirSync(path.dirname(bad), { recursive: true });
      writeFileSync(bad, JSON.stringify(j));
      await expect(verifyReceipt(bad, { rekorPublicKey: rekor.publicKeyPem, checkpointNote: note })).rejects.toThrow(/anchor receipt/);
      rmSync(path.dirname(bad), { recursive: true });
    } finally {
      await a.stop();
    }
  });

  it('a duplicate gets 409 with x-log-index; the receipt is rebuilt from the tiles; still one entry', async () => {
    const sizeBefore = await rekor.treeSize();
    const a = await openAnchorer(f, rekor.config());
    const first = (await a.list())[0]!;
    await a.stop();
    rmSync(path.join(f.paths.stateDir, 'anchor-outbox'), { recursive: true });
    rmSync(first.receipt!);
    const b = await openAnchorer(f, rekor.config());
    try {
      const again = await b.anchorNow(f.log.checkpoint.note);
      expect(again.lastError).toBeNull();
      expect(again.state).toBe('done');
      expect(again.rekorLogIndex).toBe(first.rekorLogIndex);
      await verifyReceipt(again.receipt!, { rekorPublicKey: rekor.publicKeyPem, logVerifiers: f.log.verifiers });
      expect(await rekor.treeSize()).toBe(sizeBefore);
    } finally {
      await b.stop();
    }
  });

  it('Rekor down: pending; after its restart the timer anchors; each checkpoint its own entry', async () => {
    const a = await openAnchorer(f, rekor.config());
    try {
      await Promise.all(f.log.appendMany(Array.from({ length: 10 }, (_, i) => Buffer.from(`v2 ${i}`))));
      const sizeBefore = await rekor.treeSize();
      await rekor.stop();
      const r1 = await a.anchorNow(f.log.checkpoint.note);
      expect(r1.state).toBe('pending');
      expect(r1.lastError).toMatch(/rekor/);
      await rekor.start();
      a.start();
      const r = await until('anchored after restart', async () => (await a.list()).find((j) => j.treeSize === 13 && j.state === 'done'));
      expect(r.rekorLogIndex).toBe(sizeBefore);
      expect(await rekor.treeSize()).toBe(sizeBefore + 1);
      for (const x of await a.list()) await verifyReceipt(x.receipt!, { rekorPublicKey: rekor.publicKeyPem, logVerifiers: f.log.verifiers });
    } finally {
      await a.stop();
    }
  });
});

describe('a real Rekor v2 with an Ed25519 log key (like the public v2 shards)', () => {
  it('anchors and verifies; the log ID is the signed-note key hash over the origin', async () => {
    const g = await makeLog('v2ed', 2);
    const ed = new RekorTiles(path.join(g.dir, 'rekor-tiles'), 'ed25519');
    try {
      await ed.start();
      const a = await openAnchorer(g, ed.config());
      try {
        const r = await a.anchorNow(g.log.checkpoint.note);
        expect(r.lastError).toBeNull();
        expect(r.state).toBe('done');
        await verifyReceipt(r.receipt!, { rekorPublicKey: ed.publicKeyPem, rekorOrigin: ed.origin, logVerifiers: g.log.verifiers });
        // Without the origin the log ID cannot match.
        await expect(verifyReceipt(r.receipt!, { rekorPublicKey: ed.publicKeyPem, rekorOrigin: 'elsewhere.example' })).rejects.toThrow(/anchor receipt/);
      } finally {
        await a.stop();
      }
    } finally {
      await ed.close();
      await g.cleanup();
    }
  });
});
