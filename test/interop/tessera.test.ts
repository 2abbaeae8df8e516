/**
 * Our verifying client against a log written by a third-party implementation: Tessera's POSIX
 * driver (github.com/transparency-dev/tessera v1.0.4, storage/posix), through the small writer
 * in go/tessera-posix. Two runs append 300 then 213 entries (sizes 300 and 513: neither a
 * multiple of 256, both past one full tile); our client verifies each checkpoint against the
 * vkey Tessera's key printed, proves inclusion of entries at the tile edges, proves the two
 * checkpoints consistent, audits the whole log, follows it as a monitor, and still proves the
 * older checkpoint once its partial tiles are gone (falling back to the full tiles).
 *
 * Needs Go >= 1.26 on PATH (CI installs it); the first build downloads Tessera and its
 * dependencies from the module proxy.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditLog } from '../../src/client/audit.js';
import { Monitor, type MonitoredEntry } from '../../src/client/monitor.js';
import { dirSource, urlSource, type TlogSource } from '../../src/client/source.js';
import { TileFetcher } from '../../src/client/tiles.js';
import { fetchCheckpoint, proveConsistency, proveInclusion, verifyCheckpointNote, type TrustedCheckpoint } from '../../src/client/verify.js';
import { createTlogProof, verifyTlogProof } from '../../src/client/proof-file.js';
import { leafHash } from '../../src/merkle/hash.js';
import { parseVerifierKey } from '../../src/note/keys.js';
import { verifierFor } from '../../src/note/signers.js';
import { partialsOf, serveDir, type StaticServer } from '../client/helpers.js';
import { buildGoTool } from '../helpers/go-tools.js';
import { makeTempDir, removeDir } from '../helpers/temp-dirs.js';

const moduleDir = path.join(import.meta.dirname, 'go', 'tessera-posix');
const ORIGIN = 'example.com/tessera-posix';
let writer = '';

interface RunResult {
  origin: string;
  vkey: string;
  start: number;
  treeSize: number;
  checkpoint: string;
}

function runWriter(logDir: string, keyFile: string, n: number): RunResult {
  const r = spawnSync(writer, ['-dir', logDir, '-key', keyFile, '-n', String(n), '-origin', ORIGIN], { encoding: 'utf8', timeout: 60_000 });
  if (r.error || r.status !== 0) throw new Error(`tessera-posix -n ${n} failed: ${r.error?.message ?? ''}\n${r.stderr}`);
  return JSON.parse(r.stdout) as RunResult;
}

const entry = (i: number) => Buffer.from(`tessera entry ${i}`);
const text = (b: Uint8Array) => Buffer.from(b).toString();

let dir: string;
let logDir: string;
let first: RunResult;
let second: RunResult;
let server: StaticServer;
let cp1: TrustedCheckpoint;
let cp2: TrustedCheckpoint;
const trust = () => ({ logKeys: [first.vkey], origin: ORIGIN });
const firstEntries: MonitoredEntry[] = [];
let monitorAt300: Monitor;

beforeAll(async () => {
  writer = buildGoTool(moduleDir, '.', 'tessera-posix');
  dir = makeTempDir('tlog-tessera-');
  logDir = path.join(dir, 'log');
  const keyFile = path.join(dir, 'key');
  first = runWriter(logDir, keyFile, 300);
  cp1 = verifyCheckpointNote(first.checkpoint, { logKeys: [first.vkey], origin: ORIGIN });
  // A monitor that saw the first run only, to follow the second later.
  monitorAt300 = new Monitor({ src: dirSource(logDir), logKeys: [first.vkey], origin: ORIGIN });
  await monitorAt300.poll((e) => void firstEntries.push(e));
  second = runWriter(logDir, keyFile, 213);
  cp2 = verifyCheckpointNote(second.checkpoint, { logKeys: [first.vkey], origin: ORIGIN });
  server = await serveDir(logDir);
}, 400_000);
afterAll(async () => {
  await server?.close();
  if (dir) removeDir(dir);
});

describe('a Tessera POSIX log', () => {
  it('was written by two runs, with one key, to sizes 300 and 513', () => {
    expect(first).toMatchObject({ origin: ORIGIN, start: 0, treeSize: 300 });
    expect(second).toMatchObject({ origin: ORIGIN, start: 300, treeSize: 513, vkey: first.vkey });
    expect(parseVerifierKey(first.vkey).type).toBe(0x01);
    expect(cp1.checkpoint.treeSize).toBe(300);
    expect(cp2.checkpoint.treeSize).toBe(513);
    // Tessera keeps its private state under .state/ in the same directory.
    expect(existsSync(path.join(logDir, 'tile/entries/001'))).toBe(true);
  });

  const sources = (): [string, TlogSource][] => [
    ['dir', dirSource(logDir)],
    ['http', urlSource(server.url)],
  ];

  it.each(['dir', 'http'])('the checkpoint verifies against the vkey Tessera printed (%s)', async (kind) => {
    const src = sources().find(([k]) => k === kind)![1];
    const cp = await fetchCheckpoint(src, trust());
    expect(cp.note).toBe(second.checkpoint);
    expect(cp.checkpoint.treeSize).toBe(513);
  });

  it.each(['dir', 'http'])('entries at the tile edges are proved included in both checkpoints (%s)', async (kind) => {
    const src = sources().find(([k]) => k === kind)![1];
    const tiles = new TileFetcher(src);
    for (const [cp, indexes] of [
      [cp1, [0, 1, 127, 255, 256, 299]],
      [cp2, [0, 255, 256, 299, 300, 511, 512]],
    ] as const) {
      for (const i of indexes) {
        const r = await proveInclusion(tiles, cp, i);
        expect(text(r.entry)).toBe(`tessera entry ${i}`);
        expect(Buffer.from(r.leafHash).equals(Buffer.from(leafHash(entry(i))))).toBe(true);
      }
    }
  });

  it.each(['dir', 'http'])('the two checkpoints are proved consistent (%s)', async (kind) => {
    const src = sources().find(([k]) => k === kind)![1];
    const proof = await proveConsistency(src, cp1, cp2);
    expect(proof.length).toBeGreaterThan(0);
  });

  it('passes the full audit (every entry re-hashed, every tile compared, both checkpoints)', async () => {
    const report = await auditLog(dirSource(logDir), { verifiers: [verifierFor(parseVerifierKey(first.vkey))], origin: ORIGIN, history: [first.checkpoint] });
    expect(report).toMatchObject({ treeSize: 513, entries: 513, checkpointsChecked: 1 });
  });

  it('a monitor followed it: all 300 entries of the first run, then exactly the 213 of the second', async () => {
    expect(firstEntries.map((e) => e.index)).toEqual(Array.from({ length: 300 }, (_, i) => i));
    expect(firstEntries.every((e) => text(e.entry) === `tessera entry ${e.index}`)).toBe(true);
    const next: MonitoredEntry[] = [];
    const adv = await monitorAt300.poll((e) => void next.push(e));
    expect(adv!.previous!.note).toBe(first.checkpoint);
    expect(adv!.checkpoint.note).toBe(second.checkpoint);
    expect(next.map((e) => e.index)).toEqual(Array.from({ length: 213 }, (_, i) => 300 + i));
    expect(next.every((e) => text(e.entry) === `tessera entry ${e.index}`)).toBe(true);
  });

  it('a tlog-proof for a Tessera entry verifies offline', async () => {
    const proof = await createTlogProof(urlSource(server.url), cp2, 400);
    expect(verifyTlogProof(proof, { entry: entry(400) }, trust()).index).toBe(400);
    expect(() => verifyTlogProof(proof, { entry: entry(401) }, trust())).toThrow(/not included/);
  });

  it('the older checkpoint is still proved once its partial tiles are gone (full-tile fallback)', async () => {
    const gone: string[] = [];
    for (const rel of partialsOf(300)) {
      const full = rel.replace(/\.p\/\d+$/, '');
      if (existsSync(path.join(logDir, full)) && existsSync(path.join(logDir, rel))) {
        unlinkSync(path.join(logDir, rel));
        gone.push(rel);
      }
    }
    expect(gone).toEqual(['tile/0/001.p/44', 'tile/entries/001.p/44']);
    const tiles = new TileFetcher(urlSource(server.url));
    for (const i of [256, 299]) expect(text((await proveInclusion(tiles, cp1, i)).entry)).toBe(`tessera entry ${i}`);
    expect(tiles.stats.fallbacks).toBeGreaterThanOrEqual(2);
    expect(server.misses).toEqual(expect.arrayContaining(gone));
  });
});
