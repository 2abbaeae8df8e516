import { statSync, writeFileSync, readdirSync, existsSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isTlogError } from '../../src/errors.js';
import { EMPTY_ROOT, leafHash } from '../../src/merkle/hash.js';
import { verifyConsistency, verifyInclusion } from '../../src/merkle/proof.js';
import { parseCheckpoint } from '../../src/note/checkpoint.js';
import { openNote, parseNote } from '../../src/note/note.js';
import { parseVerifierKey } from '../../src/note/keys.js';
import { verifierFor } from '../../src/note/signers.js';
import { Log, historyPath } from '../../src/log/log.js';
import { DEFAULT_BATCH_LINGER_MS, MAX_BATCH_LINGER_MS, settingsOf } from '../../src/log/settings.js';
import { logPaths, type LogPaths } from '../../src/tile-store/paths.js';
import { dataRootsIn, makeTempDir, removeDir } from '../helpers/temp-dirs.js';
import { auditLogFiles } from './helpers.js';
import { entry } from '../vectors.js';

let dir: string;
let paths: LogPaths;
const ORIGIN = 'example.com/test-log';

beforeEach(() => {
  dir = makeTempDir('tlog-log-');
  paths = logPaths(dataRootsIn(dir), 'default');
});
afterEach(() => removeDir(dir));

const rootOf = (note: string) => parseCheckpoint(parseNote(note).text).rootHash;

const audit = (log: Log) => auditLogFiles(log, paths, ORIGIN);

describe('Log.init', () => {
  it('creates keys 0600, publishes the signed empty checkpoint, and prints vkeys that verify it', async () => {
    const log = await Log.init(paths, ORIGIN);
    await log.close();
    for (const f of ['ed25519.key', 'mldsa44.key']) {
      expect(statSync(path.join(paths.stateDir, 'keys', f)).mode & 0o777).toBe(0o600);
    }
    expect(statSync(path.join(paths.stateDir, 'keys')).mode & 0o777).toBe(0o700);
    const note = require('node:fs').readFileSync(path.join(paths.tilesDir, 'checkpoint'), 'utf8') as string;
    const c = parseCheckpoint(parseNote(note).text);
    expect(c).toMatchObject({ origin: ORIGIN, treeSize: 0 });
    expect(Buffer.from(c.rootHash)).toEqual(Buffer.from(EMPTY_ROOT));
    const vkeys = log.verifierKeys();
    expect(vkeys).toHaveLength(2);
    const opened = openNote(
      note,
      vkeys.map((k) => verifierFor(parseVerifierKey(k))),
    );
    // Both the Ed25519 and the ML-DSA-44 signature are present and verify.
    expect(opened.verified.map((s) => s.keyID).sort()).toEqual(vkeys.map((k) => parseVerifierKey(k).keyID).sort());
    expect(readdirSync(paths.tilesDir)).toEqual(['checkpoint']);
  });

  it('refuses a second init, a bad origin, and a state root inside a served root', async () => {
    await (await Log.init(paths, ORIGIN)).close();
    await expect(Log.init(paths, ORIGIN)).rejects.toThrow(/already exists/);
    const p2 = logPaths({ tilesRoot: path.join(dir, 't2'), checkpointsRoot: path.join(dir, 'c2'), stateRoot: path.join(dir, 's2') }, 'x');
    await expect(Log.init(p2, 'has space')).rejects.toThrow(/bad origin/);
    await expect(Log.init(p2, 'a+b')).rejects.toThrow(/bad origin/);
    expect(() => logPaths({ tilesRoot: dir, checkpointsRoot: path.join(dir, 'c'), stateRoot: path.join(dir, 'tiles-state') }, 'x')).toThrow(
      /must not be inside/,
    );
  });
});

describe('appending', () => {
  it('assigns consecutive indexes and answers with a proof that verifies in the returned checkpoint', async () => {
    const log = await Log.init(paths, ORIGIN);
    const results = await Promise.all(log.appendMany(Array.from({ length: 700 }, (_, i) => entry(i))));
    results.forEach((r, i) => {
      expect(r.index).toBe(i);
      expect(Buffer.from(r.leafHash)).toEqual(Buffer.from(leafHash(entry(i))));
      expect(verifyInclusion(r.index, r.treeSize, r.leafHash, r.proof, rootOf(r.checkpoint))).toBe(true);
      openNote(r.checkpoint, log.verifiers);
    });
    const single = await log.append(entry(700));
    expect(single.index).toBe(700);
    expect(single.treeSize).toBe(701);
    expect(verifyInclusion(700, 701, single.leafHash, single.proof, rootOf(single.checkpoint))).toBe(true);
    await log.close();
  });

  it('refuses empty and oversized entries before queueing anything', async () => {
    const log = await Log.init(paths, ORIGIN);
    await expect(log.append(new Uint8Array(0))).rejects.toThrow(/empty/);
    await expect(log.append(new Uint8Array(65536))).rejects.toSatisfy((e: unknown) => isTlogError(e, 'too_large'));
    expect(() => log.appendMany([entry(1), new Uint8Array(70000)])).toThrow(/65535/);
    const ok = await log.append(new Uint8Array(65535).fill(7));
    expect(ok.index).toBe(0);
    expect(log.treeSize).toBe(1);
    await log.close();
  });

  it('groups concurrent appends into fewer batches than entries (group commit)', async () => {
    const log = await Log.init(paths, ORIGIN);
    await Promise.all(Array.from({ length: 500 }, (_, i) => log.append(entry(i))));
    const checkpoints = readdirSync(path.join(paths.historyDir, 'log'), { recursive: true }).filter((n) =>
      statSync(path.join(paths.historyDir, 'log', String(n))).isFile(),
    );
    // The first lone entry integrates at once; everything that arrived meanwhile batches.
    expect(checkpoints.length).toBeGreaterThan(1);
    expect(checkpoints.length).toBeLessThan(20);
    await log.close();
  });

  // settings.ts DEFAULT_BATCH_LINGER_MS: closed-loop clients come back for the next batch. A wait
  // of an hour: only the entries awaited (or close) can end it within the test.
  const AN_HOUR = 3_600_000;
  /** Lets the event loop turn a few times: enough for a batch to be cut, never for one to commit (worker round trips). */
  const loopTurns = async () => {
    for (let i = 0; i < 5; i++) await new Promise(setImmediate);
  };
  /** A batch of four answered, then one entry queued: the next batch waits for three more. (Wrapped: an async function would wait for the answer.) */
  const loneAfterFour = async (log: Log) => {
    await Promise.all(log.appendMany([0, 1, 2, 3].map(entry)));
    const lone = log.append(entry(4));
    await loopTurns();
    return { lone };
  };
  it('after a batch is answered, the next batch waits for as many entries as it answered: one batch, one checkpoint', async () => {
    const log = await Log.init(paths, ORIGIN, { batchLingerMs: AN_HOUR });
    const { lone } = await loneAfterFour(log);
    // Waiting for three more: nothing of it is committed yet.
    expect(log.treeSize).toBe(4);
    const rest = log.appendMany([5, 6, 7].map(entry));
    const answers = await Promise.all([lone, ...rest]);
    expect(answers.map((a) => a.index)).toEqual([4, 5, 6, 7]);
    expect(answers.map((a) => a.treeSize)).toEqual([8, 8, 8, 8]);
    await log.close();
  });

  it('a batch cut while another is in flight waits until as many entries are pending as it holds, or until it is done', async () => {
    const log = await Log.init(paths, ORIGIN, { batchLingerMs: AN_HOUR });
    const first = log.appendMany([0, 1, 2, 3].map(entry));
    // Queued while the batch of four is in flight: not cut on its own.
    const early = log.append(entry(4));
    await Promise.all(first);
    await loopTurns();
    expect(log.treeSize).toBe(4);
    // Then it waits for the four answered to come back, as after any answer.
    const rest = log.appendMany([5, 6, 7, 8].map(entry));
    const answers = await Promise.all([early, ...rest]);
    expect(answers.map((a) => a.treeSize)).toEqual([9, 9, 9, 9, 9]);
    // Five came back: cut at once. Then as many pending as are in flight (the boundary): cut
    // behind it, not waiting (one fewer would wait for it, then for its five to come back).
    await loopTurns();
    const c = log.appendMany([9, 10, 11, 12, 13].map(entry));
    const d = log.appendMany([14, 15, 16, 17, 18].map(entry));
    expect((await Promise.all([...c, ...d])).map((r) => r.treeSize)).toEqual([14, 14, 14, 14, 14, 19, 19, 19, 19, 19]);
    await log.close();
  });

  it('waits no longer than batchLingerMs, and not at all with 0: the lone entry is its own batch', async () => {
    for (const batchLingerMs of [0, 1]) {
      const log = batchLingerMs === 0 ? await Log.init(paths, ORIGIN, { batchLingerMs }) : await Log.open(paths, { batchLingerMs });
      const base = log.treeSize;
      await Promise.all(log.appendMany([0, 1, 2, 3].map((i) => entry(base + i))));
      const lone = await log.append(entry(base + 4));
      expect(lone.treeSize).toBe(base + 5);
      await log.close();
    }
  });

  it('close ends a wait for entries: what is pending is committed and answered', async () => {
    const log = await Log.init(paths, ORIGIN, { batchLingerMs: AN_HOUR });
    const { lone } = await loneAfterFour(log);
    expect(log.treeSize).toBe(4);
    await log.close();
    expect((await lone).treeSize).toBe(5);
  });

  it('serves the partial tiles of every checkpoint it signed, collects those of full tiles, and passes a full audit with history', async () => {
    const log = await Log.init(paths, ORIGIN);
    for (const n of [1, 254, 1, 300, 70, 1]) await Promise.all(log.appendMany(Array.from({ length: n }, (_, i) => entry(log.treeSize + i))));
    await log.close();
    // Tile 0 is full: none of its partials (sizes 1 and 255) is left on disk (c2sp.org/tlog-tiles MAY).
    expect(existsSync(path.join(paths.tilesDir, 'tile/0/000.p'))).toBe(false);
    expect(existsSync(path.join(paths.tilesDir, 'tile/entries/000.p'))).toBe(false);
    const reader = await Log.open(paths, { readOnly: true });
    // ...and the log still serves them, as the full tile's prefix.
    const full = await reader.readTileFile({ level: 0, index: 0, width: 256 });
    expect(Buffer.from((await reader.readTileFile({ level: 0, index: 0, width: 255 }))!)).toEqual(Buffer.from(full!.subarray(0, 255 * 32)));
    expect(Buffer.from((await reader.readTileFile({ level: -1, index: 0, width: 1 }))!).toString()).toBe('\x00\x07entry-0');
    const report = await audit(reader);
    expect(report.treeSize).toBe(627);
    expect(report.checkpointsChecked).toBe(7);
    // Sizes 0, 1, 255, 256, 556, 626, 627: the partials of 627 and of the history still on
    // disk are checked; those of tile 0 and of 1/x001 are gone with their full tiles in place.
    expect(report.partials.fullTileExists).toBeGreaterThanOrEqual(4);
    expect(report.partials.present).toBeGreaterThanOrEqual(3);
    await reader.close();
  });
});

describe('reads', () => {
  it('pages entries, proves inclusion and consistency against every earlier checkpoint', async () => {
    const log = await Log.init(paths, ORIGIN);
    const roots = new Map<number, Uint8Array>([[0, EMPTY_ROOT]]);
    for (const n of [3, 250, 5, 600, 1]) {
      const rs = await Promise.all(log.appendMany(Array.from({ length: n }, (_, i) => entry(log.treeSize + i))));
      roots.set(rs[0]!.treeSize, rootOf(rs[0]!.checkpoint));
    }
    const size = log.treeSize;
    let next = 0;
    const seen: string[] = [];
    while (next < size) {
      const page = await log.readEntries(next, 100);
      seen.push(...page.entries.map((e) => Buffer.from(e).toString()));
      next = page.next;
    }
    expect(seen).toEqual(Array.from({ length: size }, (_, i) => `entry-${i}`));
    await expect(log.readEntries(size + 1, 1)).rejects.toThrow(/beyond/);
    const sizes = [...roots.keys()];
    for (const m of sizes) {
      for (const n of sizes) {
        if (m > n) continue;
        const proof = await log.consistencyProof(m, n);
        expect(verifyConsistency(m, n, roots.get(m)!, roots.get(n)!, proof)).toBe(true);
      }
      if (m === 0) continue;
      for (const i of [0, Math.floor(m / 2), m - 1]) {
        const proof = await log.inclusionProof(i, m);
        expect(verifyInclusion(i, m, leafHash(entry(i)), proof, roots.get(m)!)).toBe(true);
      }
    }
    await expect(log.inclusionProof(5, size + 1)).rejects.toThrow(/beyond/);
    await expect(log.consistencyProof(10, 5)).rejects.toThrow(/larger/);
    await log.close();
  });

  it('reopens with the same tree and continues it', async () => {
    let log = await Log.init(paths, ORIGIN);
    await Promise.all(log.appendMany(Array.from({ length: 300 }, (_, i) => entry(i))));
    const before = log.committed;
    await log.close();
    log = await Log.open(paths);
    expect(log.committed.note).toBe(before.note);
    const r = await log.append(entry(300));
    expect(r.index).toBe(300);
    const proof = await log.inclusionProof(17, 301);
    expect(verifyInclusion(17, 301, leafHash(entry(17)), proof, log.committed.rootHash)).toBe(true);
    await audit(log);
    await log.close();
  });
});

describe('failing storage', () => {
  it('rejects a batch whose writes fail, changes nothing, and carries on when the disk recovers', async () => {
    let failing = false;
    const log0 = await Log.init(paths, ORIGIN);
    await Promise.all(log0.appendMany(Array.from({ length: 100 }, (_, i) => entry(i))));
    await log0.close();
    const log = await Log.open(paths, {
      durable: {
        beforeWrite: (p) => {
          if (failing && p.includes(`${path.sep}tile${path.sep}`)) throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
        },
      },
    });
    failing = true;
    const rejected = await Promise.allSettled(log.appendMany(Array.from({ length: 200 }, (_, i) => entry(1000 + i))));
    expect(rejected.every((r) => r.status === 'rejected')).toBe(true);
    expect(String((rejected[0] as PromiseRejectedResult).reason.message)).toMatch(/ENOSPC/);
    expect(log.treeSize).toBe(100);
    failing = false;
    const r = await log.append(entry(100));
    expect(r.index).toBe(100);
    await audit(log);
    await log.close();
  });

  it('stops loudly when an immutable tile exists with other bytes', async () => {
    const log = await Log.init(paths, ORIGIN);
    await Promise.all(log.appendMany(Array.from({ length: 200 }, (_, i) => entry(i))));
    // Someone planted a full tile the next batch will write.
    writeFileSync(path.join(paths.tilesDir, 'tile/0/000'), Buffer.alloc(8192, 1));
    const settled = await Promise.allSettled(log.appendMany(Array.from({ length: 100 }, (_, i) => entry(200 + i))));
    expect(settled.every((s) => s.status === 'rejected' && isTlogError(s.reason, 'immutable_conflict'))).toBe(true);
    await expect(log.append(entry(999))).rejects.toThrow(/stopped/);
    expect(log.treeSize).toBe(200);
    await log.close();
  });
});

it('writes the history copy of each checkpoint at its size', async () => {
  const log = await Log.init(paths, ORIGIN);
  const r = await log.append(entry(0));
  expect(require('node:fs').readFileSync(historyPath(paths.historyDir, 1), 'utf8')).toBe(r.checkpoint);
  await log.close();
});

describe('settings', () => {
  it('TLOG_BATCH_LINGER_MS is read within 0..MAX_BATCH_LINGER_MS, anything else falls back to the default; the option is taken as given', () => {
    const linger = (env: Record<string, string>, opts = {}) => settingsOf(opts, env).batchLingerMs;
    expect(linger({})).toBe(DEFAULT_BATCH_LINGER_MS);
    expect(linger({ TLOG_BATCH_LINGER_MS: '0' })).toBe(0);
    expect(linger({ TLOG_BATCH_LINGER_MS: '5' })).toBe(5);
    expect(linger({ TLOG_BATCH_LINGER_MS: String(MAX_BATCH_LINGER_MS) })).toBe(MAX_BATCH_LINGER_MS);
    expect(linger({ TLOG_BATCH_LINGER_MS: String(MAX_BATCH_LINGER_MS + 1) })).toBe(DEFAULT_BATCH_LINGER_MS);
    expect(linger({ TLOG_BATCH_LINGER_MS: '-1' })).toBe(DEFAULT_BATCH_LINGER_MS);
    expect(linger({ TLOG_BATCH_LINGER_MS: 'soon' })).toBe(DEFAULT_BATCH_LINGER_MS);
    expect(linger({ TLOG_BATCH_LINGER_MS: '5' }, { batchLingerMs: 3_600_000 })).toBe(3_600_000);
  });
});
