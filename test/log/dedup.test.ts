/**
 * Issue 3 through the engine: strong dedup, lookup by leaf hash, one writer per log, and
 * recovery from a damaged index, for both index backends (mmap through koffi, plain files).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, unlinkSync } from 'node:fs';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { isTlogError } from '../../src/errors.js';
import { leafHash } from '../../src/merkle/hash.js';
import { verifyInclusion } from '../../src/merkle/proof.js';
import { Log, silentLogger, type Logger } from '../../src/log/log.js';
import { logPaths, type LogPaths } from '../../src/tile-store/paths.js';
import { indexPath } from '../../src/log/open-index.js';
import { dataRootsIn, makeTempDir, removeDir } from '../helpers/temp-dirs.js';
import { distModule, ensureDist } from '../helpers/dist.js';
import { flipBits } from '../helpers/file-bytes.js';
import { entry } from '../vectors.js';

const ORIGIN = 'example.com/dedup';
let dir: string;
let paths: LogPaths;

beforeAll(() => ensureDist(), 240_000);
beforeEach(() => {
  dir = makeTempDir('tlog-dedup-');
  paths = logPaths(dataRootsIn(dir), 'default');
});
afterEach(() => removeDir(dir));

function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return { lines, info: (_o, m) => lines.push(`info ${m}`), warn: (_o, m) => lines.push(`warn ${m}`), error: (_o, m) => lines.push(`error ${m}`) };
}

describe.each(['mmap', 'plain'] as const)('with the %s index backend', (indexBackend) => {
  const opts = { indexBackend, logger: silentLogger };

  it('answers a duplicate with the first index, inside one batch, across batches and after restart', async () => {
    let log = await Log.init(paths, ORIGIN, opts);
    const first = await Promise.all(log.appendMany([entry(0), entry(1), entry(0), entry(2), entry(1)]));
    expect(first.map((r) => r.index)).toEqual([0, 1, 0, 2, 1]);
    expect(first.map((r) => r.duplicate)).toEqual([false, false, true, false, true]);
    expect(log.treeSize).toBe(3);
    // A repeat still in flight shares the first copy's answer, its proof included.
    for (const r of first) expect(verifyInclusion(r.index, r.treeSize, r.leafHash, r.proof, log.committed.rootHash)).toBe(true);
    const again = await log.append(entry(1));
    expect(again).toMatchObject({ index: 1, duplicate: true, treeSize: 3 });
    expect(verifyInclusion(1, 3, again.leafHash, again.proof, log.committed.rootHash)).toBe(true);
    await log.close();
    log = await Log.open(paths, opts);
    const afterRestart = await Promise.all(log.appendMany([entry(2), entry(3), entry(0)]));
    expect(afterRestart.map((r) => [r.index, r.duplicate])).toEqual([
      [2, true],
      [3, false],
      [0, true],
    ]);
    expect(log.treeSize).toBe(4);
    await log.close();
  });

  it('appendAll answers a call with one promise: in order, repeats in the call and in the log answered with the first index', async () => {
    const log = await Log.init(paths, ORIGIN, opts);
    const first = await log.appendAll([entry(0), entry(1), entry(0)]);
    expect(first.map((r) => [r.index, r.duplicate])).toEqual([
      [0, false],
      [1, false],
      [0, true],
    ]);
    const again = await log.appendAll([entry(1), entry(2), entry(2)]);
    expect(again.map((r) => [r.index, r.duplicate])).toEqual([
      [1, true],
      [2, false],
      [2, true],
    ]);
    // The repeat of entry 1 is proved in the checkpoint it was answered with (size 2), the others in size 3.
    expect(again.map((r) => r.treeSize)).toEqual([2, 3, 3]);
    for (const r of again.slice(1)) expect(verifyInclusion(r.index, r.treeSize, r.leafHash, r.proof, log.committed.rootHash)).toBe(true);
    expect(() => log.appendAll([new Uint8Array(0)])).toThrow();
    expect(log.treeSize).toBe(3);
    await log.close();
  });

  it('keeps every copy when the log allows duplicates', async () => {
    const log = await Log.init(paths, ORIGIN, { ...opts, allowDuplicates: true });
    const rs = await Promise.all(log.appendMany([entry(0), entry(0), entry(0)]));
    expect(rs.map((r) => r.index)).toEqual([0, 1, 2]);
    expect(rs.every((r) => !r.duplicate)).toBe(true);
    await log.close();
  });

  it('finds an entry by leaf hash with a proof that verifies, and nothing for an unknown hash', async () => {
    const log = await Log.init(paths, ORIGIN, opts);
    await Promise.all(log.appendMany(Array.from({ length: 600 }, (_, i) => entry(i))));
    for (const i of [0, 255, 256, 599]) {
      const found = await log.findByLeafHash(leafHash(entry(i)));
      expect(found?.index).toBe(i);
      expect(verifyInclusion(i, found!.treeSize, leafHash(entry(i)), found!.proof, log.committed.rootHash)).toBe(true);
    }
    expect(await log.findByLeafHash(leafHash(entry(600)))).toBeNull();
    await expect(log.findByLeafHash(new Uint8Array(5))).rejects.toThrow(/32 bytes/);
    await log.close();
  });

  it('grows the dedup table past its first capacity under load', async () => {
    const log = await Log.init(paths, ORIGIN, { ...opts, indexCapacity: 1000 });
    await Promise.all(log.appendMany(Array.from({ length: 20000 }, (_, i) => entry(i))));
    await log.close();
    const reopened = await Log.open(paths, opts);
    const rs = await Promise.all(reopened.appendMany([entry(0), entry(9999), entry(19999)]));
    expect(rs.map((r) => r.index)).toEqual([0, 9999, 19999]);
    expect(rs.every((r) => r.duplicate)).toBe(true);
    await reopened.close();
  });

  it('rebuilds a damaged or missing index on open, saying why, and keeps dedup working', async () => {
    let log = await Log.init(paths, ORIGIN, opts);
    await Promise.all(log.appendMany(Array.from({ length: 300 }, (_, i) => entry(i))));
    const size = log.treeSize;
    await log.close();
    const cases: [string, () => void][] = [
      ['header', () => flipBits(indexPath(paths), 20, 0xff)],
      ['both commit slots', () => (flipBits(indexPath(paths), 4096 + 10, 0xff), flipBits(indexPath(paths), 4096 + 512 + 10, 0xff))],
      ['missing file', () => unlinkSync(indexPath(paths))],
    ];
    for (const [what, damage] of cases) {
      damage();
      const logger = recordingLogger();
      log = await Log.open(paths, { ...opts, logger });
      expect(
        logger.lines.some((l) => l.startsWith('warn rebuilding the index')),
        `${what}: ${logger.lines.join('; ')}`,
      ).toBe(true);
      expect(log.treeSize).toBe(size);
      const r = await log.append(entry(150));
      expect(r).toMatchObject({ index: 150, duplicate: true });
      await log.close();
    }
    // One damaged commit slot: the other one is used, no rebuild needed.
    flipBits(indexPath(paths), 4096 + 10, 0xff);
    flipBits(indexPath(paths), 4096 + 512 + 10, 0xff);
    const logger = recordingLogger();
    log = await Log.open(paths, { ...opts, logger });
    const r = await log.append(entry(7));
    expect(r.index).toBe(7);
    await log.close();
  });
});

describe('a damaged dedup table', () => {
  it('is found by checkIndex (every leaf looked up) and repaired by a rebuild', async () => {
    let log = await Log.init(paths, ORIGIN);
    await Promise.all(log.appendMany(Array.from({ length: 500 }, (_, i) => entry(i))));
    await log.close();
    // Flip a byte in the middle of entry 7's stored hash (past the first 6 bytes, which is
    // all the structural check can see).
    const file = readFileSync(indexPath(paths));
    const at = file.indexOf(Buffer.from(leafHash(entry(7))));
    expect(at).toBeGreaterThan(8192);
    flipBits(indexPath(paths), at + 20, 0xff);
    log = await Log.open(paths, { readOnly: true });
    const problems = await log.checkIndex();
    await log.close();
    expect(problems.length).toBeGreaterThan(0);
    expect(problems[0]).toMatch(/leaf \d+ is missing from the index|maps to/);
    await Log.rebuildIndex(paths);
    log = await Log.open(paths);
    expect(await log.checkIndex()).toEqual([]);
    const rs = await Promise.all(log.appendMany(Array.from({ length: 500 }, (_, i) => entry(i))));
    expect(rs.every((r, i) => r.duplicate && r.index === i)).toBe(true);
    await log.close();
  });
});

describe('one writer per log', () => {
  it('a second writer process fails at once naming the index file; a reader still works', async () => {
    const log = await Log.init(paths, ORIGIN);
    await log.append(entry(0));
    const script = `
      import { Log } from ${JSON.stringify(distModule('log/log.js'))};
      import { logPaths } from ${JSON.stringify(distModule('tile-store/paths.js'))};
      const paths = logPaths(${JSON.stringify(dataRootsIn(dir))}, 'default');
      const readOnly = process.argv.includes('ro');
      try {
        const log = await Log.open(paths, { readOnly });
        console.log('opened', log.treeSize);
        await log.close();
      } catch (e) { console.error(e.code + ': ' + e.message); process.exit(3); }
    `;
    // This process holds the writer lock throughout: a child that waited for it would never exit.
    const writer = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(writer.status).toBe(3);
    expect(writer.stderr).toMatch(/^locked: log default is already open for writing by another process/);
    expect(writer.stderr).toContain(indexPath(paths));
    const reader = spawnSync(process.execPath, ['--input-type=module', '-e', script, 'ro'], { encoding: 'utf8' });
    expect(reader.stdout.trim()).toBe('opened 1');
    await log.close();
    // Released on close: a new writer gets in.
    const next = await Log.open(paths);
    await next.close();
  });

  it('reports the lock as a locked error in-process too', async () => {
    const log = await Log.init(paths, ORIGIN);
    await expect(Log.open(paths)).rejects.toSatisfy((e: unknown) => isTlogError(e, 'locked'));
    await log.close();
  });
});
