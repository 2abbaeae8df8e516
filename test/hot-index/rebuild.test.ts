import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { openIndex, rebuild } from '../../src/hot-index/index.js';
import { tempDirPerTest } from '../helpers/temp-dirs.js';
import { mappedFileBackends } from '../native/helpers.js';

const cp = (treeSize: number) => ({ treeSize, rootHash: new Uint8Array(32).fill(7), checkpointHash: new Uint8Array(32).fill(8) });

async function* chunks(all: Uint8Array, per: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < all.length; i += per * 32) yield all.subarray(i, i + per * 32);
}

describe.each(mappedFileBackends)('rebuild (%s)', (backend) => {
  const tmp = tempDirPerTest('tlog-rebuild-');
  let path: string;
  beforeEach(() => {
    path = join(tmp.dir, 'index.idx');
  });

  it('replaces a corrupt file with a complete index, from an async iterable', async () => {
    writeFileSync(path, 'not an index');
    expect(() => openIndex(path, { backend })).toThrow(expect.objectContaining({ code: 'index_corrupt' }));
    const n = 30_000;
    const hashes = randomBytes(n * 32);
    hashes.copy(hashes, 100 * 32, 3 * 32, 4 * 32); // leaf 100 repeats leaf 3
    const progress: number[] = [];
    const r = await rebuild(path, chunks(hashes, 7000), { commitPoint: cp(n + 5), backend, onProgress: (k) => progress.push(k) });
    expect(progress).toEqual([7000, 14000, 21000, 28000, 30000]);
    expect(r).toMatchObject({ indexedSize: n, entryCount: n - 1 });
    const ix = openIndex(path, { backend, onWarning: () => {} });
    expect(ix.commitPoint).toMatchObject({ treeSize: n + 5 });
    expect(ix.indexedSize).toBe(n);
    expect(ix.durableIndexedSize).toBe(n);
    expect(ix.lookup(hashes, 100 * 32)).toBe(3);
    for (let i = 0; i < n; i += 13) if (i !== 100) expect(ix.lookup(hashes, i * 32)).toBe(i);
    expect(ix.check().problems).toEqual([]);
    ix.close();
    expect(readdirSync(tmp.dir).sort()).toEqual(['index.idx']);
  });

  it('sizes the table from expectedLeaves and accepts a plain iterable', async () => {
    const hashes = randomBytes(1000 * 32);
    const r = await rebuild(path, [hashes.subarray(0, 500 * 32), hashes.subarray(500 * 32)], { commitPoint: cp(1000), expectedLeaves: 50_000, backend });
    expect(r.capacity).toBeGreaterThanOrEqual(50_000 / 0.7);
    const ix = openIndex(path, { backend, mode: 'readOnly' });
    expect(ix.lookup(hashes, 999 * 32)).toBe(999);
    ix.close();
  });

  it('refuses leaves beyond the commit point and leaves the old file alone', async () => {
    const old = openIndex(path, { backend, onWarning: () => {} });
    old.close();
    await expect(rebuild(path, [randomBytes(11 * 32)], { commitPoint: cp(10), backend })).rejects.toThrow(/beyond the commit point/);
    expect(readdirSync(tmp.dir).sort()).toEqual(['index.idx']);
    openIndex(path, { backend, onWarning: () => {} }).close();
  });

  it('fails with locked while a writer holds the index', async () => {
    const kind = backend === 'plain' ? ('lockfile' as const) : ('ofd' as const);
    const w = openIndex(path, { backend, lockKind: kind, onWarning: () => {} });
    await expect(rebuild(path, [], { commitPoint: cp(0), backend, lockKind: kind })).rejects.toMatchObject({ code: 'locked' });
    w.close();
    expect(existsSync(`${path}.rebuild.tmp`)).toBe(false);
  });
});
