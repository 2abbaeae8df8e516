import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { IndexError, initialCapacityFor, openIndex, type HotIndex } from '../../src/hot-index/index.js';
import { statSync } from 'node:fs';
import { thrownBy } from '../helpers/errors.js';
import { tempDirPerTest } from '../helpers/temp-dirs.js';
import { mappedFileBackends } from '../native/helpers.js';

const root = (n: number): Uint8Array => new Uint8Array(32).fill(n & 0xff);
const quiet = { onWarning: () => {} };

function commit(ix: HotIndex, treeSize: number): void {
  ix.writeCommitPoint({ treeSize, rootHash: root(treeSize), checkpointHash: root(treeSize + 1) });
}

describe.each(mappedFileBackends)('hot index (%s)', (backend) => {
  const tmp = tempDirPerTest('tlog-index-');
  let path: string;
  beforeEach(() => {
    path = join(tmp.dir, 'index.idx');
  });
  const open = (opts: Parameters<typeof openIndex>[1] = {}): HotIndex => openIndex(path, { backend, ...quiet, ...opts });

  it('a fresh index is empty, with commit point seq 0', () => {
    const before = Date.now();
    const ix = open();
    const after = Date.now();
    expect(ix.commitPoint).toEqual({ treeSize: 0, rootHash: new Uint8Array(32), checkpointHash: new Uint8Array(32), seq: 0 });
    expect(ix.indexedSize).toBe(0);
    expect(ix.lookup(randomBytes(32))).toBe(-1);
    expect(ix.backend).toBe(backend);
    expect(ix.createdAtMs).toBeGreaterThanOrEqual(before);
    expect(ix.createdAtMs).toBeLessThanOrEqual(after);
    ix.close();
  });

  it('inserts and looks up; the first index of a duplicate wins', () => {
    const ix = open();
    const hashes = randomBytes(100 * 32);
    commit(ix, 102);
    expect(ix.insertMany(hashes, 0)).toBe(100);
    for (let i = 0; i < 100; i++) expect(ix.lookup(hashes, i * 32)).toBe(i);
    // Leaves 100 and 101 repeat leaves 7 and 42: the originals stay.
    const dups = Buffer.concat([hashes.subarray(7 * 32, 8 * 32), hashes.subarray(42 * 32, 43 * 32)]);
    expect(ix.insertMany(dups, 100)).toBe(0);
    expect(ix.lookup(dups, 0)).toBe(7);
    expect(ix.lookup(dups, 32)).toBe(42);
    expect(ix.indexedSize).toBe(102);
    expect(ix.entryCount).toBe(100);
    // Replaying a range already indexed changes nothing.
    expect(ix.insertMany(hashes.subarray(50 * 32), 50)).toBe(0);
    expect(ix.entryCount).toBe(100);
    expect(ix.check().problems).toEqual([]);
    ix.close();
  });

  it('a replay offering a smaller index for a present hash takes it; a larger one is ignored', () => {
    const ix = open();
    const a = randomBytes(32);
    const b = randomBytes(32);
    commit(ix, 3);
    ix.insertMany(Buffer.concat([b, randomBytes(32), a]), 0);
    expect(ix.lookup(a)).toBe(2);
    // Replay leaf 2 again as if it were leaf 1 (only corruption makes this, but min wins).
    ix.insertMany(Buffer.concat([a, a]), 1);
    expect(ix.lookup(a)).toBe(1);
    ix.insertMany(b, 2);
    expect(ix.lookup(b)).toBe(0);
    ix.close();
  });

  it('refuses gaps, leaves beyond the commit point, and a commit point moving back', () => {
    const ix = open();
    commit(ix, 10);
    expect(() => ix.insertMany(randomBytes(32), 1)).toThrow(/gap/);
    expect(() => ix.insertMany(randomBytes(11 * 32), 0)).toThrow(/beyond the commit point/);
    expect(() => ix.insertMany(randomBytes(33), 0)).toThrow(/multiple of 32/);
    expect(() => commit(ix, 9)).toThrow(/move back/);
    expect(() => ix.writeCommitPoint({ treeSize: 10, rootHash: root(99), checkpointHash: root(0) })).toThrow(/change the root/);
    expect(ix.lookup(randomBytes(40), 8)).toBe(-1);
    expect(() => ix.lookup(randomBytes(31))).toThrow(RangeError);
    ix.close();
    expect(() => ix.lookup(randomBytes(32))).toThrow(/closed/);
  });

  it('advanceCommitPoint moves the commit point without syncing it; syncCommitPoint makes it durable', async () => {
    const ix = open();
    // What open read may have been in the page cache only: not known to be on disk.
    expect(ix.durableCommitPoint).toBeNull();
    commit(ix, 10);
    expect(ix.durableCommitPoint?.treeSize).toBe(10);
    const seq = ix.commitPoint.seq;
    ix.advanceCommitPoint({ treeSize: 20, rootHash: root(20), checkpointHash: root(21) });
    ix.advanceCommitPoint({ treeSize: 30, rootHash: root(30), checkpointHash: root(31) });
    // In memory (and the page cache) at once: inserts up to it are allowed.
    expect(ix.commitPoint).toMatchObject({ treeSize: 30, seq: seq + 2 });
    ix.insertMany(randomBytes(30 * 32), 0);
    // Not yet known to be on disk.
    expect(ix.durableCommitPoint).toMatchObject({ treeSize: 10, seq });
    const synced = await ix.syncCommitPoint();
    expect(synced).toEqual(ix.commitPoint);
    expect(ix.durableCommitPoint).toMatchObject({ treeSize: 30, seq: seq + 2 });
    // The same refusals as writeCommitPoint, at the boundary.
    expect(() => ix.advanceCommitPoint({ treeSize: 29, rootHash: root(29), checkpointHash: root(0) })).toThrow(/move back/);
    expect(() => ix.advanceCommitPoint({ treeSize: 30, rootHash: root(99), checkpointHash: root(0) })).toThrow(/change the root/);
    ix.checkpointTable();
    // Only the commit point moved since: close syncs it too (no power loss may take it back).
    ix.advanceCommitPoint({ treeSize: 30, rootHash: root(30), checkpointHash: root(31) });
    expect(ix.durableCommitPoint?.seq).toBeLessThan(ix.commitPoint.seq);
    ix.close();
    expect(ix.durableCommitPoint?.seq).toBe(seq + 4);
    // A closed index's commit point is on disk: syncing again (a second close of a log) is fine.
    expect((await ix.syncCommitPoint()).seq).toBe(seq + 4);
    // A process that died after advancing (the page cache kept it) reopens at the advanced point.
    const again = open();
    expect(again.commitPoint).toMatchObject({ treeSize: 30, rootHash: root(30) });
    expect(again.durableCommitPoint).toBeNull();
    expect(await again.syncCommitPoint()).toMatchObject({ treeSize: 30, rootHash: root(30) });
    again.close();
  });

  it('grows past its first capacity under load, keeping every entry', async () => {
    const n = backend === 'mmap' ? 200_000 : 60_000;
    const ix = open({ initialCapacity: 1000 });
    const first = ix.capacity;
    const hashes = randomBytes(n * 32);
    commit(ix, n);
    // No turn of the event loop in between: the growths happen in line with the inserts.
    for (let i = 0; i < n; i += 5000) ix.insertMany(hashes.subarray(i * 32, (i + 5000) * 32), i);
    await ix.whenGrown();
    expect(ix.capacity).toBeGreaterThanOrEqual(n / 0.7);
    expect(first).toBeLessThan(2000);
    expect(ix.entryCount).toBe(n);
    for (let i = 0; i < n; i += 7) expect(ix.lookup(hashes, i * 32)).toBe(i);
    expect(ix.check()).toMatchObject({ entries: n, problems: [] });
    // The commit point travelled into each new file.
    expect(ix.commitPoint.treeSize).toBe(n);
    ix.close();
    expect(readdirSync(tmp.dir).filter((f) => f.includes('tmp'))).toEqual([]);
    const again = open({ mode: 'readOnly' });
    expect(again.capacity).toBe(ix.capacity);
    expect(again.lookup(hashes, (n - 1) * 32)).toBe(n - 1);
    again.close();
  });

  it('bytesToInsert says the size of the file the next growth builds, 0 up to the last entry that fits', async () => {
    const ix = open({ initialCapacity: 1000 });
    const fits = Math.floor(ix.capacity * 0.7);
    const size = statSync(path).size;
    expect(ix.bytesToInsert(fits)).toBe(0);
    const grown = ix.bytesToInsert(fits + 1);
    expect(grown).toBeGreaterThan(size);
    const hashes = randomBytes((fits + 2) * 32);
    commit(ix, fits + 2);
    ix.insertMany(hashes.subarray(0, fits * 32), 0);
    expect(statSync(path).size).toBe(size);
    ix.insertMany(hashes.subarray(fits * 32, (fits + 1) * 32), fits);
    // The growth started: until its file is allocated, its size still counts.
    expect(ix.growing).toBe(true);
    expect(ix.bytesToInsert(1)).toBe(grown);
    await ix.whenGrown();
    expect(statSync(path).size).toBe(grown);
    expect(ix.bytesToInsert(1)).toBe(0);
    ix.close();
  });

  it('reopens after close with everything durable', () => {
    const ix = open();
    const hashes = randomBytes(500 * 32);
    commit(ix, 500);
    const cp = ix.commitPoint;
    ix.insertMany(hashes, 0);
    expect(ix.durableIndexedSize).toBe(0);
    ix.close();
    const re = open();
    // Same commit point; the close wrote the table watermark as a newer slot.
    expect({ ...re.commitPoint, seq: 0 }).toEqual({ ...cp, seq: 0 });
    expect(re.commitPoint.seq).toBe(cp.seq + 1);
    expect(re.indexedSize).toBe(500);
    expect(re.durableIndexedSize).toBe(500);
    expect(re.entryCount).toBe(500);
    expect(re.lookup(hashes, 499 * 32)).toBe(499);
    re.close();
  });

  it('checkpointTable moves the durable watermark; commits keep it', () => {
    const ix = open({ checkpointEvery: 0 });
    commit(ix, 20);
    ix.insertMany(randomBytes(10 * 32), 0);
    commit(ix, 30);
    expect(ix.durableIndexedSize).toBe(0);
    ix.checkpointTable();
    expect(ix.durableIndexedSize).toBe(10);
    const seq = ix.commitPoint.seq;
    commit(ix, 40);
    expect(ix.commitPoint.seq).toBe(seq + 1);
    expect(ix.durableIndexedSize).toBe(10);
    ix.close();
  });

  it('checkpointEvery checkpoints on its own, on a thread: an insert never waits for the table to sync', async () => {
    const ix = open({ checkpointEvery: 100 });
    commit(ix, 1000);
    const seq = ix.commitPoint.seq;
    ix.insertMany(randomBytes(99 * 32), 0);
    await ix.whenCheckpointed();
    expect(ix.durableIndexedSize).toBe(0); // one short of checkpointEvery
    ix.insertMany(randomBytes(51 * 32), 99);
    // Started, not waited for: the watermark moves once the table is on disk.
    expect(ix.durableIndexedSize).toBe(0);
    await ix.whenCheckpointed();
    expect(ix.durableIndexedSize).toBe(150);
    // Written like a commit point: in the next slot, on disk at the next sync of the commit point.
    expect(ix.commitPoint.seq).toBe(seq + 1);
    expect(ix.durableCommitPoint?.seq).toBe(seq);
    expect((await ix.syncCommitPoint()).seq).toBe(seq + 1);
    ix.insertMany(randomBytes(50 * 32), 150);
    await ix.whenCheckpointed();
    expect(ix.durableIndexedSize).toBe(150);
    ix.close();
    const again = open();
    expect(again.durableIndexedSize).toBe(200);
    again.close();
  });

  it('one writer at a time; read-only handles need no lock and see new commits on refresh', () => {
    const ix = open();
    const err = thrownBy(() => open());
    expect(err).toBeInstanceOf(IndexError);
    expect((err as IndexError).code).toBe('locked');
    expect((err as IndexError).message).toContain(path);
    const ro = open({ mode: 'readOnly' });
    commit(ix, 5);
    const h = randomBytes(5 * 32);
    ix.insertMany(h, 0);
    expect(ro.lookup(h, 32)).toBe(1);
    expect(ro.commitPoint.treeSize).toBe(0);
    ro.refresh();
    expect(ro.commitPoint.treeSize).toBe(5);
    expect(() => ro.insertMany(h, 0)).toThrow(/read-only/);
    expect(() => commit(ro, 6)).toThrow(/read-only/);
    ro.close();
    ix.close();
    open().close(); // the lock went with close
  });

  it('missing files: read-only and create:false report index_missing', () => {
    expect(() => open({ mode: 'readOnly' })).toThrow(expect.objectContaining({ code: 'index_missing' }));
    expect(() => open({ create: false })).toThrow(expect.objectContaining({ code: 'index_missing' }));
    expect(existsSync(path)).toBe(false);
  });
});

describe('initial capacity for the space there is', () => {
  // 100,000 entries make a 16384-bucket file of 8 MiB + 8 KiB (the header): a 32nd of the free space at most.
  const full = 8192 + 16384 * 512;
  it('is the default when the file takes at most a 32nd of the free space, half of that below', () => {
    expect(initialCapacityFor(32 * full)).toBe(100_000);
    expect(initialCapacityFor(32 * full - 1)).toBe(Math.floor(8192 * 12 * 0.7));
  });
  it('a 20 MiB disk gets a file of at most 640 KiB; a tiny one the floor of 1024 entries', () => {
    const cap = initialCapacityFor(20 << 20);
    expect(cap).toBe(Math.floor(1024 * 12 * 0.7)); // 1024 buckets: 520 KiB
    expect(initialCapacityFor(0)).toBe(1024);
  });
});
