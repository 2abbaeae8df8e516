/**
 * The verifying client against logs written by our engine: checkpoints (keys, origin, policy),
 * inclusion and consistency at many sizes (across tile and level boundaries), from a directory
 * and over HTTP (gzip bundles), the fallback to full tiles for the partial tiles of older
 * checkpoints the log collected, and tampered tiles and bundles caught by the proofs.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dirSource, urlSource, type TlogSource } from '../../src/client/source.js';
import { TileFetcher } from '../../src/client/tiles.js';
import {
  InconsistentCheckpointsError,
  fetchCheckpoint,
  proveConsistency,
  proveInclusion,
  proveLeafHash,
  verifyCheckpointNote,
  type TrustedCheckpoint,
} from '../../src/client/verify.js';
import type { Log } from '../../src/log/log.js';
import { leafHash } from '../../src/merkle/hash.js';
import { verifyConsistency, verifyInclusion } from '../../src/merkle/proof.js';
import { generatePrivateKey, SignatureType } from '../../src/note/keys.js';
import { formatSignatureLine } from '../../src/note/note.js';
import { keyPair } from '../../src/note/signers.js';
import { parsePolicy } from '../../src/note/witness-policy.js';
import { entryOf, partialsOf, servedLog, serveDir, type ServedLog, type StaticServer } from './helpers.js';
import { toHex } from '../vectors.js';

const ORIGIN = 'example.com/client';
/** Across every tile boundary that matters: level 0 and 1 full and partial, level 2 appearing. */
const SIZES = [1, 2, 3, 255, 256, 257, 300, 511, 512, 513, 1000, 65535, 65536, 65537, 66000];

let log: Log;
let notes: string[];
let vkeys: string[];
let server: StaticServer;
let served: ServedLog | undefined;
const trust = () => ({ logKeys: vkeys, origin: ORIGIN });

beforeAll(async () => {
  served = await servedLog('tlog-client-', ORIGIN, SIZES);
  ({ log, notes, vkeys, server } = served);
}, 120_000);
afterAll(() => served?.close());

const cpAt = (i: number): TrustedCheckpoint => verifyCheckpointNote(notes[i]!, trust());
const sources = (): [string, TlogSource][] => [
  ['dir', dirSource(log.paths.tilesDir)],
  ['http', urlSource(server.url)],
];

describe('checkpoints', () => {
  it('fetches and verifies the current checkpoint from a directory and over HTTP', async () => {
    for (const [, src] of sources()) {
      const cp = await fetchCheckpoint(src, trust());
      expect(cp.checkpoint.treeSize).toBe(SIZES[SIZES.length - 1]);
      expect(cp.checkpoint.origin).toBe(ORIGIN);
      expect(cp.note).toBe(readFileSync(path.join(log.paths.tilesDir, 'checkpoint'), 'utf8'));
    }
  });

  it('accepts the Ed25519 vkey alone (the ML-DSA-44 line is ignored as unknown)', () => {
    const ed = vkeys.filter((k) => Buffer.from(k.split('+')[2]!, 'base64')[0] === 0x01);
    expect(ed).toHaveLength(1);
    expect(verifyCheckpointNote(notes[0]!, { logKeys: ed }).checkpoint.treeSize).toBe(1);
  });

  it('refuses a checkpoint with no signature from the log, a wrong origin, a forged signature', () => {
    const other = keyPair(generatePrivateKey(ORIGIN, SignatureType.ed25519));
    expect(() => verifyCheckpointNote(notes[0]!, { logKeys: [other.vkey] })).toThrow(/no signature from the log/);
    expect(() => verifyCheckpointNote(notes[0]!, { logKeys: vkeys, origin: 'example.com/other' })).toThrow(/origin/);
    // Same name and key ID, other bytes: a known key whose signature fails rejects the note.
    const lines = notes[0]!.split('\n');
    const sig = lines.findIndex((l) => l.startsWith('\u2014 '));
    const parts = lines[sig]!.split(' ');
    const blob = Buffer.from(parts[2]!, 'base64');
    blob[10]! ^= 1;
    lines[sig] = `${parts[0]} ${parts[1]} ${blob.toString('base64')}`;
    expect(() => verifyCheckpointNote(lines.join('\n'), trust())).toThrow(/does not verify/);
    // The body changed under the signatures.
    expect(() => verifyCheckpointNote(notes[0]!.replace(/^1$/m, '2'), trust())).toThrow(/does not verify/);
  });

  it('enforces a witness policy, taking log keys from it', () => {
    const w = keyPair(generatePrivateKey('witness.example', SignatureType.cosignatureV1));
    const policy = parsePolicy(`log ${vkeys[0]}\nwitness w1 ${w.vkey}\nquorum w1\n`);
    expect(() => verifyCheckpointNote(notes[0]!, { logKeys: [], policy })).toThrow(/witness policy not satisfied/);
    const text = notes[0]!.slice(0, notes[0]!.indexOf('\n\n') + 1);
    const cosigned = notes[0]! + formatSignatureLine({ name: w.signer.name, keyID: w.signer.keyID, signature: w.signer.sign(text) });
    const cp = verifyCheckpointNote(cosigned, { logKeys: [], policy });
    expect(cp.witnesses).toEqual(['w1']);
    expect(cp.note).toBe(cosigned);
    expect(verifyCheckpointNote(notes[0]!, { logKeys: [], policy: parsePolicy(`log ${vkeys[0]}\nquorum none\n`) }).witnesses).toEqual([]);
  });
});

describe('inclusion', () => {
  it.each(['dir', 'http'])('proves entries at every checkpoint size (%s)', async (kind) => {
    const src = sources().find(([k]) => k === kind)![1];
    const tiles = new TileFetcher(src);
    for (let i = 0; i < SIZES.length; i++) {
      const cp = cpAt(i);
      const size = SIZES[i]!;
      const picks = new Set([0, size - 1, Math.floor(size / 2), Math.min(size - 1, 255), Math.min(size - 1, 256), Math.min(size - 1, 65535)]);
      for (const index of picks) {
        const r = await proveInclusion(tiles, cp, index);
        expect(Buffer.from(r.entry).toString()).toBe(entryOf(index).toString());
        expect(toHex(r.leafHash)).toBe(toHex(leafHash(entryOf(index))));
        expect(r.proof.map(toHex)).toEqual((await log.inclusionProof(index, size)).map(toHex));
        expect(verifyInclusion(index, size, r.leafHash, r.proof, cp.checkpoint.rootHash)).toBe(true);
        const lh = await proveLeafHash(tiles, cp, index);
        expect(toHex(lh.leafHash)).toBe(toHex(r.leafHash));
      }
    }
    expect(tiles.stats.cacheHits).toBeGreaterThan(0);
  });

  it('refuses an index outside the tree', async () => {
    const src = dirSource(log.paths.tilesDir);
    await expect(proveInclusion(src, cpAt(3), 255)).rejects.toThrow(/not in the tree of size 255/);
    await expect(proveInclusion(src, cpAt(3), -1)).rejects.toThrow(/not in the tree/);
  });
});

describe('consistency', () => {
  it.each(['dir', 'http'])('proves every pair of checkpoints consistent (%s)', async (kind) => {
    const src = sources().find(([k]) => k === kind)![1];
    const tiles = new TileFetcher(src);
    for (let i = 0; i < SIZES.length; i++) {
      for (let j = i; j < SIZES.length; j++) {
        const proof = await proveConsistency(tiles, cpAt(i), cpAt(j));
        expect(proof.map(toHex)).toEqual((await log.consistencyProof(SIZES[i]!, SIZES[j]!)).map(toHex));
        expect(verifyConsistency(SIZES[i]!, SIZES[j]!, cpAt(i).checkpoint.rootHash, cpAt(j).checkpoint.rootHash, proof)).toBe(true);
      }
    }
  });

  it('calls a smaller newer checkpoint inconsistent, with both checkpoints as evidence', async () => {
    const src = dirSource(log.paths.tilesDir);
    const err = await proveConsistency(src, cpAt(5), cpAt(4)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InconsistentCheckpointsError);
    expect((err as InconsistentCheckpointsError).older.note).toBe(notes[5]);
    expect((err as InconsistentCheckpointsError).newer.note).toBe(notes[4]);
  });
});

describe('partial tiles the log collected once the full tile exists', () => {
  const full = (rel: string) => rel.replace(/\.p\/\d+$/, '');
  const onDisk = (rel: string) => existsSync(path.join(log.paths.tilesDir, rel));

  it('are gone from the disk, while the newest checkpoint keeps its own', () => {
    // c2sp.org/tlog-tiles: a log MAY delete a partial tile once the full tile exists.
    for (const rel of ['tile/0/001.p/44', 'tile/entries/001.p/44', 'tile/1/000.p/1', 'tile/entries/000.p/1']) {
      expect(onDisk(rel), rel).toBe(false);
      expect(onDisk(full(rel)), full(rel)).toBe(true);
    }
    for (const rel of partialsOf(SIZES[SIZES.length - 1]!)) expect(onDisk(rel), rel).toBe(true);
  });

  it.each(['dir', 'http'])('still proves inclusion and consistency for the older checkpoints, from the full tiles (%s)', async (kind) => {
    const src = sources().find(([k]) => k === kind)![1];
    const tiles = new TileFetcher(src);
    for (let i = 0; i < SIZES.length; i++) {
      const cp = cpAt(i);
      const size = SIZES[i]!;
      for (const index of new Set([0, size - 1, Math.floor(size / 3)])) {
        const r = await proveInclusion(tiles, cp, index);
        expect(Buffer.from(r.entry).toString()).toBe(entryOf(index).toString());
      }
      if (i > 0) await proveConsistency(tiles, cpAt(i - 1), cp);
    }
    expect(tiles.stats.fallbacks).toBeGreaterThan(0);
    if (kind === 'http') {
      // Only partial tiles the checkpoints imply were asked for, and every 404 was one whose full tile is there.
      expect(server.misses.length).toBeGreaterThan(0);
      for (const m of server.misses) {
        expect(m).toMatch(/\.p\/\d+$/);
        expect(onDisk(full(m)), m).toBe(true);
      }
    }
  });

  it('never asks for a partial tile no verified checkpoint implies', () => {
    const implied = new Set(SIZES.flatMap(partialsOf));
    for (const r of server.requests) if (r.includes('.p/')) expect(implied.has(r), r).toBe(true);
  });
});

describe('tampering', () => {
  it('a changed entry in a bundle or a changed hash in a tile fails the proof', async () => {
    const bundle = path.join(log.paths.tilesDir, 'tile/entries/000');
    const tile = path.join(log.paths.tilesDir, 'tile/0/000');
    const cp = cpAt(SIZES.length - 1);
    const b = readFileSync(bundle);
    const t = readFileSync(tile);
    try {
      const bad = Buffer.from(b);
      bad[2 + 1]! ^= 1; // inside entry 0
      writeFileSync(bundle, bad);
      await expect(proveInclusion(dirSource(log.paths.tilesDir), cp, 0)).rejects.toThrow(/not included/);
      writeFileSync(bundle, b);
      const badTile = Buffer.from(t);
      badTile[32 * 5]! ^= 1; // the hash of entry 5, a sibling on entry 4's path
      writeFileSync(tile, badTile);
      await expect(proveInclusion(dirSource(log.paths.tilesDir), cp, 4)).rejects.toThrow(/not included/);
      await expect(proveConsistency(dirSource(log.paths.tilesDir), cpAt(1), cp)).rejects.toThrow(InconsistentCheckpointsError);
      writeFileSync(tile, badTile.subarray(0, 100));
      await expect(proveInclusion(dirSource(log.paths.tilesDir), cp, 4)).rejects.toThrow(/100 bytes, want 8192/);
    } finally {
      writeFileSync(bundle, b);
      writeFileSync(tile, t);
    }
    await proveInclusion(dirSource(log.paths.tilesDir), cp, 4);
  });

  it('a missing tile is reported with its path', async () => {
    const src: TlogSource = { where: 'nowhere', get: async (rel) => (rel === 'checkpoint' ? Buffer.from(notes[6]!) : null) };
    await expect(proveInclusion(src, cpAt(6), 3)).rejects.toThrow(/nowhere\/tile\/entries\/001\.p\/44 is missing|nowhere\/tile\/entries\/000 is missing/);
  });
});

describe('a dropped connection', () => {
  it('is tried once more (a stale kept-alive socket), and a second drop is the answer', async () => {
    let drops = 0;
    const once = await serveDir(log.paths.tilesDir, '/log', (rel) => (rel === 'checkpoint' && drops++ < 1 ? 'reset' : null));
    try {
      expect((await fetchCheckpoint(urlSource(once.url), trust())).checkpoint.treeSize).toBe(SIZES[SIZES.length - 1]);
      expect(drops).toBe(2);
    } finally {
      await once.close();
    }
    let drops2 = 0;
    const twice = await serveDir(log.paths.tilesDir, '/log', (rel) => (rel === 'checkpoint' && drops2++ < 2 ? 'reset' : null));
    try {
      await expect(fetchCheckpoint(urlSource(twice.url), trust())).rejects.toThrow(/checkpoint: fetch failed/);
      expect(drops2).toBe(2);
    } finally {
      await twice.close();
    }
  });
});
