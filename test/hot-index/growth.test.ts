/**
 * Growing the dedup table in the background (src/hot-index/growth.ts): lookups and duplicates stay
 * right while the bigger table is built, the deadlines hold with no idle time at all, a close
 * throws the unfinished table away, and a SIGKILL at any point of a growth reopens to a correct
 * index that grows again.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { nativeAvailable, type MappedFileBackend } from '../../native/index.js';
import { openIndex, type HotIndex } from '../../src/hot-index/index.js';
import { makeTempDir, removeDir } from '../helpers/temp-dirs.js';
import { cleanupCompiled, compiledTree } from '../native/helpers.js';
import { prng, randBytes, randInt } from '../prng.mjs';

function tempDir(name: string): { dir: string; cleanup: () => void } {
  const dir = makeTempDir(`tlog-${name}-`);
  return { dir, cleanup: () => removeDir(dir) };
}

const backends: MappedFileBackend[] = nativeAvailable ? ['mmap', 'plain'] : ['plain'];
const quiet = { onWarning: () => {} };
const root = (n: number): Uint8Array => new Uint8Array(32).fill(n & 0xff);
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

function commit(ix: HotIndex, treeSize: number): void {
  ix.writeCommitPoint({ treeSize, rootHash: root(treeSize), checkpointHash: root(treeSize + 1) });
}

afterAll(() => cleanupCompiled());

describe.each(backends)('table growth (%s)', (backend) => {
  let dir: string;
  let cleanup: () => void;
  let path: string;
  beforeEach(() => {
    ({ dir, cleanup } = tempDir('growth'));
    path = join(dir, 'index.idx');
  });
  afterEach(() => cleanup());
  const open = (opts: Parameters<typeof openIndex>[1] = {}): HotIndex => openIndex(path, { backend, ...quiet, ...opts });

  it.each([
    [1, 400],
    [1000, 6000],
    [5000, 30_000],
  ])('initial capacity %i, %i leaves in batches with idle time between: every lookup right during and after each growth', async (initialCapacity, n) => {
    const rand = prng(initialCapacity);
    const hashes = randBytes(rand, n * 32);
    const absent = randBytes(rand, 64 * 32);
    // The smallest slices (16 buckets a turn), so that the tests sees copying halfway.
    const ix = open({ initialCapacity, growthSliceMs: 0 });
    commit(ix, n);
    const capacities = new Set([ix.capacity]);
    let checkedMidGrowth = 0;
    for (let i = 0; i < n; ) {
      const count = Math.min(n - i, randInt(rand, 1, 200));
      ix.insertMany(hashes.subarray(i * 32, (i + count) * 32), i);
      i += count;
      const progress = ix.growthProgress;
      if (progress !== undefined && progress.copiedBuckets > 0 && progress.copiedBuckets < progress.buckets) {
        checkedMidGrowth++;
        // Everything inserted so far is found, in copied buckets and in the rest alike.
        for (let k = 0; k < i; k += Math.max(1, Math.floor(i / 500))) expect(ix.lookup(hashes, k * 32)).toBe(k);
        expect(ix.lookup(hashes, (i - 1) * 32)).toBe(i - 1);
        for (let k = 0; k < 64; k++) expect(ix.lookup(absent, k * 32)).toBe(-1);
      }
      capacities.add(ix.capacity);
      await turn();
    }
    await ix.whenGrown();
    capacities.add(ix.capacity);
    // It grew more than once, and (but for tiny tables, which grow in a batch) was looked at
    // halfway through copying.
    expect(capacities.size).toBeGreaterThanOrEqual(3);
    if (initialCapacity >= 1000) expect(checkedMidGrowth).toBeGreaterThan(0);
    expect(ix.growing).toBe(false);
    expect(ix.entryCount).toBe(n);
    for (let k = 0; k < n; k++) expect(ix.lookup(hashes, k * 32)).toBe(k);
    for (let k = 0; k < 64; k++) expect(ix.lookup(absent, k * 32)).toBe(-1);
    expect(ix.check()).toMatchObject({ entries: n, problems: [] });
    ix.close();
    expect(readdirSync(dir).filter((f) => f.includes('tmp'))).toEqual([]);
    const again = open({ mode: 'readOnly' });
    expect(again.capacity).toBe(ix.capacity);
    expect(again.entryCount).toBe(n);
    for (let k = 0; k < n; k += 7) expect(again.lookup(hashes, k * 32)).toBe(k);
    again.close();
  });

  it('the insert that fills the table to maxLoad starts a growth and returns: the index file is untouched until the swap', async () => {
    const ix = open({ initialCapacity: 1000 });
    const fits = Math.floor(ix.capacity * 0.7);
    const size = statSync(path).size;
    const capacity = ix.capacity;
    const hashes = randBytes(prng(1), (fits + 1) * 32);
    commit(ix, fits + 1);
    ix.insertMany(hashes.subarray(0, fits * 32), 0);
    expect(ix.growing).toBe(false);
    ix.insertMany(hashes.subarray(fits * 32), fits);
    // Nothing was copied in line: the old table took the entry and serves on.
    expect(ix.growthProgress).toMatchObject({ phase: 'allocating', copiedBuckets: 0, newCapacity: 2 * capacity });
    expect(ix.capacity).toBe(capacity);
    expect(statSync(path).size).toBe(size);
    expect(existsSync(`${path}.grow.tmp`)).toBe(true);
    expect(ix.lookup(hashes, fits * 32)).toBe(fits);
    await ix.whenGrown();
    expect(ix.capacity).toBe(2 * capacity);
    expect(statSync(path).size).toBeGreaterThan(size);
    expect(existsSync(`${path}.grow.tmp`)).toBe(false);
    for (let k = 0; k <= fits; k++) expect(ix.lookup(hashes, k * 32)).toBe(k);
    ix.close();
  });

  it('duplicates are found in copied and uncopied buckets mid-growth, and keep their first index after it', async () => {
    const ix = open({ initialCapacity: 20_000 });
    const rand = prng(7);
    const fits = Math.floor(ix.capacity * 0.7);
    const n = fits + 4000;
    const hashes = randBytes(rand, n * 32);
    commit(ix, 3 * n);
    // No turn of the event loop: copying advances only in line with the inserts.
    let next = 0;
    for (; next < n; next += 100) {
      ix.insertMany(hashes.subarray(next * 32, (next + 100) * 32), next);
      const p = ix.growthProgress;
      if (p !== undefined && p.copiedBuckets > p.buckets / 4) break;
    }
    next += 100;
    const p = ix.growthProgress!;
    expect(p.phase).toBe('copying');
    expect(p.copiedBuckets).toBeGreaterThan(0);
    expect(p.copiedBuckets).toBeLessThan(p.buckets);
    const entries = ix.entryCount;
    // Every leaf so far appended again: each one a duplicate of its first index.
    expect(ix.insertMany(hashes.subarray(0, next * 32), next)).toBe(0);
    expect(ix.entryCount).toBe(entries);
    for (let k = 0; k < next; k++) expect(ix.lookup(hashes, k * 32)).toBe(k);
    // Mixed: new leaves, then duplicates of them and of older ones, in one batch.
    const fresh = randBytes(rand, 50 * 32);
    const batch = Buffer.concat([fresh, fresh.subarray(0, 10 * 32), hashes.subarray(0, 10 * 32)]);
    expect(ix.insertMany(batch, 2 * next)).toBe(50);
    await ix.whenGrown();
    for (let k = 0; k < next; k++) expect(ix.lookup(hashes, k * 32)).toBe(k);
    for (let k = 0; k < 50; k++) expect(ix.lookup(fresh, k * 32)).toBe(2 * next + k);
    expect(ix.entryCount).toBe(entries + 50);
    expect(ix.check().problems).toEqual([]);
    ix.close();
  });

  it('with no idle time at all, copying is done by copyBy and the bigger table is in use by swapBy, not one entry later', () => {
    const ix = open({ initialCapacity: 20_000 });
    const capacity = ix.capacity;
    const fits = Math.floor(capacity * 0.7);
    const hashes = randBytes(prng(3), capacity * 32);
    commit(ix, capacity);
    ix.insertMany(hashes.subarray(0, (fits + 1) * 32), 0);
    const { copyBy, swapBy, copiedBuckets } = ix.growthProgress!;
    expect(copiedBuckets).toBe(0);
    // About 80% and 85% of the capacity with the default maxLoad 0.7.
    expect(Math.abs(copyBy - capacity * 0.8)).toBeLessThan(2);
    expect(Math.abs(swapBy - capacity * 0.85)).toBeLessThan(2);
    const n = swapBy + 1;
    ix.insertMany(hashes.subarray((fits + 1) * 32, (copyBy - 1) * 32), fits + 1);
    const before = ix.growthProgress!;
    expect(before.copiedBuckets).toBeGreaterThan(0);
    expect(before.copiedBuckets).toBeLessThan(before.buckets);
    // The entry that makes copyBy entries finds every bucket copied before it goes in.
    ix.insertMany(hashes.subarray((copyBy - 1) * 32, copyBy * 32), copyBy - 1);
    expect(ix.growthProgress!.copiedBuckets).toBe(before.buckets);
    ix.insertMany(hashes.subarray(copyBy * 32, swapBy * 32), copyBy);
    // swapBy entries in the old table: still it (the disk was never waited for) ...
    expect(ix.entryCount).toBe(swapBy);
    expect(ix.capacity).toBe(capacity);
    expect(ix.growing).toBe(true);
    // ... and the next entry goes into the bigger one, synced on this thread if it must.
    ix.insertMany(hashes.subarray(swapBy * 32, n * 32), swapBy);
    expect(ix.growing).toBe(false);
    expect(ix.capacity).toBe(2 * capacity);
    for (let k = 0; k < n; k++) expect(ix.lookup(hashes, k * 32)).toBe(k);
    expect(ix.check()).toMatchObject({ entries: n, problems: [] });
    ix.close();
  });

  it('a close mid-growth throws the unfinished table away; the next writer grows it again', async () => {
    const ix = open({ initialCapacity: 20_000 });
    const capacity = ix.capacity;
    const n = Math.floor(capacity * 0.75);
    const hashes = randBytes(prng(5), n * 32);
    commit(ix, n);
    ix.insertMany(hashes, 0);
    expect(ix.growthProgress!.copiedBuckets).toBeGreaterThan(0);
    const waiting = ix.whenGrown();
    ix.close();
    await expect(waiting).rejects.toThrow(/closed while growing/);
    expect(readdirSync(dir).filter((f) => f.includes('tmp'))).toEqual([]);
    const again = open();
    expect(again.capacity).toBe(capacity);
    expect(again.entryCount).toBe(n);
    for (let k = 0; k < n; k++) expect(again.lookup(hashes, k * 32)).toBe(k);
    const more = randBytes(prng(6), 32);
    commit(again, n + 1);
    again.insertMany(more, n);
    expect(again.growing).toBe(true);
    await again.whenGrown();
    expect(again.capacity).toBe(2 * capacity);
    for (let k = 0; k < n; k++) expect(again.lookup(hashes, k * 32)).toBe(k);
    expect(again.lookup(more)).toBe(n);
    again.close();
  });
});

const CHILD = join(import.meta.dirname, 'fixtures/grow-until-killed.mjs');
const CHILD_BATCH = 97;
const CHILD_CAPACITY = 20_000;

/** Same as the child's: every 10th leaf repeats leaf i-5. */
function leafHash(i: number): Buffer {
  const j = i % 10 === 9 ? i - 5 : i;
  return createHash('sha256').update(`leaf ${j}`).digest();
}
function firstIndexOf(i: number): number {
  return i % 10 === 9 ? i - 5 : i;
}

type KillPoint = { phase: 'allocating' | 'copying' | 'syncing' | 'grown'; after: number };
const ORDER = ['allocating', 'copying', 'syncing', 'synced', 'grown'];

/**
 * Runs the child until it has printed `after` more lines once it reported `phase` or a later
 * one ('grown': the first line once a growth ended), then SIGKILLs it. Returns the last line
 * seen and whether the child was growing at the line the kill was decided on.
 */
function runAndKill(path: string, at: KillPoint, env: NodeJS.ProcessEnv): Promise<{ last: string; killedGrowing: boolean }> {
  const child = spawn(process.execPath, [CHILD, compiledTree(), path, String(CHILD_BATCH), String(CHILD_CAPACITY)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  return new Promise((resolve, reject) => {
    let err = '';
    let buffered = '';
    let last = '';
    let seen = -1;
    let grew = false;
    let killedGrowing = false;
    let killed = false;
    child.stderr.on('data', (d) => (err += d));
    child.stdout.on('data', (d) => {
      buffered += String(d);
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        if (killed) return;
        last = line;
        let phase = line.split(' ')[1]!;
        if (phase !== '-') grew = true;
        else if (grew) phase = 'grown';
        if (seen < 0 && ORDER.indexOf(phase) >= ORDER.indexOf(at.phase)) seen = 0;
        else if (seen >= 0) seen++;
        if (seen >= 0 && seen >= at.after) {
          killed = true;
          killedGrowing = phase !== 'grown' && phase !== '-';
          child.kill('SIGKILL');
        }
      }
    });
    child.on('exit', (code, signal) => (signal === 'SIGKILL' ? resolve({ last, killedGrowing }) : reject(new Error(`child exited ${code}: ${err}`))));
  });
}

describe.each(nativeAvailable ? (['mmap', 'plain'] as const) : (['plain'] as const))('SIGKILL while growing (%s)', (backend) => {
  let dir: string;
  let cleanup: () => void;
  beforeEach(() => ({ dir, cleanup } = tempDir('grow-crash')));
  afterEach(() => cleanup());
  const env = backend === 'plain' ? { ...process.env, TLOG_NO_NATIVE: '1' } : process.env;
  const lockKind = backend === 'plain' ? ('lockfile' as const) : ('ofd' as const);

  // Each phase of a growth, at a random number of batches into it (seeded: the same points run
  // to run), and just after one ended.
  const rand = prng(backend === 'mmap' ? 11 : 12);
  const points: KillPoint[] = [
    { phase: 'allocating', after: 0 },
    { phase: 'copying', after: randInt(rand, 0, 3) },
    { phase: 'copying', after: randInt(rand, 3, 8) },
    { phase: 'syncing', after: 0 },
    { phase: 'grown', after: randInt(rand, 0, 3) },
  ];

  it.each(points)('killed at $phase + $after batches: reopens to a correct index, which grows again', async (at) => {
    const path = join(dir, 'index.idx');
    const { last, killedGrowing } = await runAndKill(path, at, env);
    // The kill was aimed at the middle of a growth (the signal lands a little later still).
    if (at.phase !== 'grown') expect(killedGrowing).toBe(true);
    const ix = openIndex(path, { backend, lockKind, onWarning: () => {} });
    // The dead writer's half-built table is gone, its index is whole.
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    const { treeSize } = ix.commitPoint;
    expect(treeSize).toBeGreaterThanOrEqual(Number(last.split(' ')[0]));
    expect(Buffer.from(ix.commitPoint.rootHash)).toEqual(createHash('sha256').update(`root ${treeSize}`).digest());
    expect(ix.indexedSize).toBeLessThanOrEqual(treeSize);
    expect(ix.indexedSize).toBeGreaterThanOrEqual(treeSize - CHILD_BATCH);
    expect(ix.check().problems).toEqual([]);
    for (let i = 0; i < ix.indexedSize; i++) expect(ix.lookup(leafHash(i))).toBe(firstIndexOf(i));
    // The engine's replay, then more leaves with idle time between: the table grows (again).
    const capacity = ix.capacity;
    let size = ix.indexedSize;
    // (Inserting is what starts a growth: a table left full enough must see some.)
    const end = Math.max(treeSize, Math.ceil((Math.floor(capacity * 0.7) + 1) / 0.9)) + 5 * CHILD_BATCH;
    if (end > treeSize) commit(ix, end);
    while (size < end) {
      const count = Math.min(CHILD_BATCH, end - size);
      ix.insertMany(Buffer.concat(Array.from({ length: count }, (_, k) => leafHash(size + k))), size);
      size += count;
      await turn();
    }
    await ix.whenGrown();
    expect(ix.capacity).toBeGreaterThan(capacity);
    expect(ix.entryCount).toBe(size - Math.floor(size / 10));
    for (let i = 0; i < size; i++) expect(ix.lookup(leafHash(i))).toBe(firstIndexOf(i));
    expect(ix.check().problems).toEqual([]);
    ix.close();
  });
});
