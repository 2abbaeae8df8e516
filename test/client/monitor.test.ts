/**
 * The monitor against logs written by our engine: it follows a growing log over HTTP and streams
 * exactly the new entries, resumes from its state file, starts at the latest checkpoint when
 * asked, follows as an async iterator, and refuses forked logs (same keys and origin, different
 * entries after a common prefix) with both checkpoints as evidence, without moving its state.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Monitor, type MonitoredEntry, type MonitorAdvance } from '../../src/client/monitor.js';
import { dirSource, urlSource } from '../../src/client/source.js';
import { InconsistentCheckpointsError } from '../../src/client/verify.js';
import { Log } from '../../src/log/log.js';
import { logPaths } from '../../src/tile-store/paths.js';
import { leafHash } from '../../src/merkle/hash.js';
import { generatePrivateKey, SignatureType } from '../../src/note/keys.js';
import { keyPair } from '../../src/note/signers.js';
import { parsePolicy } from '../../src/note/witness-policy.js';
import { appendRange, copyLog, entryOf, serveDir } from './helpers.js';
import { removeDir, tempDataRoots } from '../helpers/temp-dirs.js';

const ORIGIN = 'example.com/monitored';
const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDir));
function roots(prefix: string) {
  const t = tempDataRoots(prefix);
  dirs.push(t.dir);
  return t;
}

const text = (e: MonitoredEntry) => Buffer.from(e.entry).toString();
async function collect(m: Monitor): Promise<{ entries: MonitoredEntry[]; advance: MonitorAdvance | null }> {
  const entries: MonitoredEntry[] = [];
  const advance = await m.poll((e) => void entries.push(e));
  return { entries, advance };
}
function expectRange(entries: MonitoredEntry[], from: number, to: number, tag = '') {
  expect(entries.map((e) => e.index)).toEqual(Array.from({ length: to - from }, (_, k) => from + k));
  for (const e of entries) {
    expect(text(e)).toBe(entryOf(e.index, tag).toString());
    expect(Buffer.from(e.leafHash).equals(Buffer.from(leafHash(e.entry)))).toBe(true);
  }
}

describe('following a growing log', () => {
  let log: Log;
  let stateFile: string;
  let vkeys: string[];
  let server: Awaited<ReturnType<typeof serveDir>>;
  beforeAll(async () => {
    const t = roots('tlog-monitor-');
    log = await Log.init(logPaths(t.roots, 'default'), ORIGIN);
    vkeys = log.verifierKeys();
    stateFile = path.join(t.dir, 'monitor.json');
    server = await serveDir(log.paths.tilesDir);
  });
  afterAll(async () => {
    await log.close();
    await server.close();
  });
  const monitor = (extra: object = {}) =>
    new Monitor({ src: urlSource(server.url), logKeys: vkeys, origin: ORIGIN, stateFile, intervalMs: 20, concurrency: 3, ...extra });

  it('streams exactly the new entries at every step, and persists the accepted checkpoint', async () => {
    const m = monitor();
    let r = await collect(m);
    expect(r.entries).toEqual([]);
    expect(r.advance?.checkpoint.checkpoint.treeSize).toBe(0);
    let n = 0;
    for (const size of [10, 256, 300, 300, 700, 1000, 1025]) {
      if (size > n) await appendRange(log, n, size);
      r = await collect(m);
      if (size === n) {
        expect(r.advance).toBeNull();
        expect(r.entries).toEqual([]);
      } else {
        expectRange(r.entries, n, size);
        expect(r.advance!.previous!.checkpoint.treeSize).toBe(n);
        expect(r.advance!.checkpoint.checkpoint.treeSize).toBe(size);
        expect(r.advance!.entries).toBe(size - n);
      }
      n = size;
      expect(JSON.parse(readFileSync(stateFile, 'utf8')).checkpoint).toBe(log.committed.note);
    }
  });

  it('resumes from its state file, even when the partial tiles of the saved checkpoint are gone', async () => {
    await appendRange(log, 1025, 1100);
    // The saved checkpoint is of size 1025; its partial tiles become superseded at 1280.
    await appendRange(log, 1100, 1300);
    // The log collects them once the full tile is there and its next flush moved the replay anchor.
    await log.flush();
    await log.settled();
    for (const rel of ['tile/0/004.p/1', 'tile/entries/004.p/1']) expect(existsSync(path.join(log.paths.tilesDir, rel)), rel).toBe(false);
    const m = monitor();
    expect((await m.load())!.checkpoint.treeSize).toBe(1025);
    const r = await collect(m);
    expectRange(r.entries, 1025, 1300);
  });

  it('streams through the async iterator while the log grows, until aborted', async () => {
    const m = monitor();
    const ac = new AbortController();
    const seen: MonitoredEntry[] = [];
    const advances: number[] = [];
    const grow = (async () => {
      for (let n = 1300; n < 1900; n += 150) {
        await appendRange(log, n, n + 150);
        await new Promise((r) => setTimeout(r, 30));
      }
    })();
    for await (const e of m.entries({ signal: ac.signal, onAdvance: (a) => advances.push(a.checkpoint.checkpoint.treeSize) })) {
      seen.push(e);
      if (e.index === 1899) ac.abort();
    }
    await grow;
    expectRange(seen, 1300, 1900);
    expect(advances[advances.length - 1]).toBe(1900);
  });

  it('ignores an older checkpoint of the same tree (a lagging cache) but accepts nothing from it', async () => {
    const m = monitor();
    expect((await m.load())!.checkpoint.treeSize).toBe(1900);
    const stale = log.committed.note;
    await appendRange(log, 1900, 1905);
    const m2 = new Monitor({ src: dirSource(log.paths.tilesDir), logKeys: vkeys, stateFile });
    await collect(m2); // accepts 1905
    const lagging = { where: 'cdn', get: async (rel: string) => (rel === 'checkpoint' ? Buffer.from(stale) : dirSource(log.paths.tilesDir).get(rel)) };
    const m3 = new Monitor({ src: lagging, logKeys: vkeys, stateFile });
    expect(await collect(m3)).toEqual({ entries: [], advance: null });
    expect(m3.checkpoint!.checkpoint.treeSize).toBe(1905);
    expect(JSON.parse(readFileSync(stateFile, 'utf8')).checkpoint).toContain('\n1905\n');
  });

  it('starts at the latest checkpoint with startAtLatest and no state', async () => {
    const m = new Monitor({ src: dirSource(log.paths.tilesDir), logKeys: vkeys, startAtLatest: true });
    let r = await collect(m);
    expect(r.entries).toEqual([]);
    expect(r.advance!.checkpoint.checkpoint.treeSize).toBe(1905);
    await appendRange(log, 1905, 1910);
    r = await collect(m);
    expectRange(r.entries, 1905, 1910);
  });

  it('requires every checkpoint to satisfy the witness policy', async () => {
    const w = keyPair(generatePrivateKey('witness.example', SignatureType.cosignatureV1));
    const m = new Monitor({ src: dirSource(log.paths.tilesDir), logKeys: vkeys, policy: parsePolicy(`witness w ${w.vkey}\nquorum w\n`) });
    await expect(m.poll()).rejects.toThrow(/witness policy not satisfied/);
    expect(m.checkpoint).toBeNull();
  });

  it('refuses a checkpoint not signed by the log key and a bundle that does not match tile/0, without moving', async () => {
    const m = new Monitor({ src: dirSource(log.paths.tilesDir), logKeys: [keyPair(generatePrivateKey(ORIGIN, SignatureType.ed25519)).vkey] });
    await expect(m.poll()).rejects.toThrow(/no signature from the log/);

    const m2 = new Monitor({ src: dirSource(log.paths.tilesDir), logKeys: vkeys, stateFile });
    await collect(m2); // up to 1910
    await appendRange(log, 1910, 1920);
    const bundle = path.join(log.paths.tilesDir, 'tile/entries/007.p/128');
    const good = readFileSync(bundle);
    const bad = Buffer.from(good);
    bad[bad.length - 1]! ^= 1; // the last entry, 1919
    writeFileSync(bundle, bad);
    try {
      const seen: MonitoredEntry[] = [];
      await expect(m2.poll((e) => void seen.push(e))).rejects.toThrow(/entry 1919 does not match its hash in tile\/0/);
      expect(seen).toEqual([]);
      expect(JSON.parse(readFileSync(stateFile, 'utf8')).checkpoint).toContain('\n1910\n');
    } finally {
      writeFileSync(bundle, good);
    }
    expectRange((await collect(m2)).entries, 1910, 1920);
  });
});

describe('a forked log', () => {
  /** Two logs with the same keys and origin, equal for the first `common` entries. */
  async function fork(common: number, aSize: number, bSize: number) {
    const ta = roots('tlog-fork-a-');
    const tb = roots('tlog-fork-b-');
    const a = await Log.init(logPaths(ta.roots, 'default'), ORIGIN);
    await appendRange(a, 0, common);
    await a.close();
    copyLog(ta.roots, tb.roots);
    const a2 = await Log.open(logPaths(ta.roots, 'default'));
    const b = await Log.open(logPaths(tb.roots, 'default'));
    await appendRange(a2, common, aSize, ' (a)');
    await appendRange(b, common, bSize, ' (b)');
    await a2.close();
    await b.close();
    expect(b.verifierKeys()).toEqual(a2.verifierKeys());
    return { a: a2, b, stateFile: path.join(ta.dir, 'monitor.json'), vkeys: a2.verifierKeys() };
  }

  it.each([
    ['ahead', 300, 400, 450, /consistency proof .* does not verify/],
    ['the same size', 300, 400, 400, /two roots for one size/],
    ['behind', 300, 400, 350, /went back from size 400 to 350 and does not serve the tree of size 400/],
  ])('is refused when the other branch is %s, with both checkpoints as evidence', async (_what, common, aSize, bSize, why) => {
    const { a, b, stateFile, vkeys } = await fork(common, aSize, bSize);
    const onA = new Monitor({ src: dirSource(a.paths.tilesDir), logKeys: vkeys, origin: ORIGIN, stateFile });
    const r = await collect(onA);
    expect(r.entries.length).toBe(aSize);
    expectRange(r.entries.slice(common), common, aSize, ' (a)');

    // Now the monitor is shown the other branch (a split view, or a log that rewrote history).
    const onB = new Monitor({ src: dirSource(b.paths.tilesDir), logKeys: vkeys, origin: ORIGIN, stateFile });
    const seen: MonitoredEntry[] = [];
    const err = await onB.poll((e) => void seen.push(e)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InconsistentCheckpointsError);
    const f = err as InconsistentCheckpointsError;
    expect(f.message).toMatch(why);
    const notes = [f.older.note, f.newer.note];
    expect(notes).toContain(a.committed.note);
    expect(notes).toContain(b.committed.note);
    expect(seen).toEqual([]);
    // The state did not move, and polling again refuses again.
    expect(JSON.parse(readFileSync(stateFile, 'utf8')).checkpoint).toBe(a.committed.note);
    await expect(onB.poll()).rejects.toThrow(InconsistentCheckpointsError);
    // The honest branch still follows.
    expect((await collect(onA)).advance).toBeNull();
  });
});

describe('a log that is down or failing for a while', () => {
  it('is retried with backoff: state kept, every entry handed out once, the cause said; a refusal (403) ends it', async () => {
    const t = roots('tlog-monitor-flaky-');
    const log = await Log.init(logPaths(t.roots, 'default'), ORIGIN);
    await appendRange(log, 0, 300);
    // What the log does: down (connections dropped), then a 503, then fine until the third bundle
    // of the next step, which fails twice (after the bundle before it was handed out). A source
    // tries a dropped connection once more itself (a stale kept-alive socket), hence two resets.
    const checkpointFaults: ('reset' | number)[] = ['reset', 'reset', 503];
    const bundle2Faults: ('reset' | number)[] = ['reset', 'reset', 500];
    let refuse = false;
    const fault = (rel: string): 'reset' | number | null => {
      if (refuse) return 403;
      if (rel === 'checkpoint') return checkpointFaults.shift() ?? null;
      if (rel === 'tile/entries/002' && log.treeSize > 300) return bundle2Faults.shift() ?? null;
      return null;
    };
    const server = await serveDir(log.paths.tilesDir, '/log', fault);
    const stateFile = path.join(t.dir, 'flaky.json');
    const m = new Monitor({
      src: urlSource(server.url),
      logKeys: log.verifierKeys(),
      origin: ORIGIN,
      stateFile,
      intervalMs: 5,
      retryBaseMs: 2,
      retryMaxMs: 10,
    });
    const seen: MonitoredEntry[] = [];
    const retries: { failures: number; why: string }[] = [];
    const ac = new AbortController();
    const { errorChain } = await import('../../src/errors.js');
    try {
      const follow = (async () => {
        for await (const e of m.entries({ signal: ac.signal, onRetry: (r) => retries.push({ failures: r.failures, why: errorChain(r.error) }) })) {
          seen.push(e);
          if (e.index === 299) await appendRange(log, 300, 800); // the next step: bundles 1, 2 and 3
          if (e.index === 799) ac.abort();
        }
      })();
      await follow;
      expectRange(seen, 0, 800);
      expect(retries.map((r) => r.failures)).toEqual([1, 2, 1, 2]); // failed polls in a row
      // The reason is there: the dropped connection behind "fetch failed", the statuses.
      expect(retries[0]!.why).toMatch(/GET http:\/\/127\.0\.0\.1:\d+\/log\/checkpoint: fetch failed: .*(other side closed|socket hang up|ECONNRESET)/);
      expect(retries[1]!.why).toMatch(/checkpoint: HTTP 503$/);
      expect(retries[2]!.why).toMatch(/tile\/entries\/002: fetch failed: /);
      expect(retries[3]!.why).toMatch(/tile\/entries\/002: HTTP 500$/);
      expect(JSON.parse(readFileSync(stateFile, 'utf8')).checkpoint).toBe(log.committed.note);

      // A refusal is an answer, not an outage: it ends the monitor with the error.
      refuse = true;
      await appendRange(log, 800, 810);
      const again = new Monitor({ src: urlSource(server.url), logKeys: log.verifierKeys(), origin: ORIGIN, stateFile, intervalMs: 5, retryBaseMs: 2 });
      const it = again.entries({ onRetry: () => expect.unreachable('a 403 is not retried') });
      await expect(it.next()).rejects.toThrow(/checkpoint: HTTP 403/);
    } finally {
      await server.close();
      await log.close();
    }
  });
});
