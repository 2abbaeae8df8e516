import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { IndexError, openIndex } from '../../src/hot-index/index.js';
import { cleanupCompiled, compiledTree, mappedFileBackends } from '../native/helpers.js';
import { thrownBy } from '../helpers/errors.js';
import { tempDirPerTest } from '../helpers/temp-dirs.js';

const CHILD = join(import.meta.dirname, 'fixtures/insert-until-killed.mjs');

/** Same as the child's: every 10th leaf repeats leaf i-5. */
function leafHash(i: number): Buffer {
  const j = i % 10 === 9 ? i - 5 : i;
  return createHash('sha256').update(`leaf ${j}`).digest();
}
function firstIndexOf(i: number): number {
  return i % 10 === 9 ? i - 5 : i;
}

/** Runs the child until it has done some work, waits a little more, then SIGKILLs it. */
function runAndKill(path: string, batch: number, every: number, extraMs: number, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const child = spawn(process.execPath, [CHILD, compiledTree(), path, String(batch), String(every)], { stdio: ['ignore', 'pipe', 'pipe'], env });
  return new Promise((resolve, reject) => {
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.stdout.on('data', (d) => {
      if (String(d).includes('ready')) setTimeout(() => child.kill('SIGKILL'), extraMs);
    });
    child.on('exit', (code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`child exited ${code}: ${err}`))));
  });
}

afterAll(() => cleanupCompiled());

describe.each(mappedFileBackends)('SIGKILL while inserting (%s)', (backend) => {
  const tmp = tempDirPerTest('tlog-crash-');
  // The child runs as a process without koffi would: plain files and lock files. Locks of the
  // two kinds do not see each other, so our side must use the same kind.
  const env = backend === 'plain' ? { ...process.env, TLOG_NO_NATIVE: '1' } : process.env;
  const lockKind = backend === 'plain' ? ('lockfile' as const) : ('ofd' as const);

  it.each([
    [97, 5000, 150],
    [500, 0, 400],
  ])('batch %i, checkpointEvery %i: reopen finds table and commit point consistent', async (batch, every, extraMs) => {
    const path = join(tmp.dir, 'index.idx');
    await runAndKill(path, batch, every, extraMs, env);
    const ix = openIndex(path, { backend, lockKind, onWarning: () => {} });
    const { treeSize } = ix.commitPoint;
    expect(treeSize).toBeGreaterThanOrEqual(21 * batch);
    expect(treeSize % batch).toBe(0);
    // The commit point is a real one the child wrote.
    expect(Buffer.from(ix.commitPoint.rootHash)).toEqual(createHash('sha256').update(`root ${treeSize}`).digest());
    expect(ix.indexedSize).toBeLessThanOrEqual(treeSize);
    // Same boot: the live record lets the engine skip nearly all replay.
    expect(ix.indexedSize).toBeGreaterThanOrEqual(treeSize - batch);
    expect(ix.check().problems).toEqual([]);
    for (let i = 0; i < ix.indexedSize; i++) {
      expect(ix.lookup(leafHash(i))).toBe(firstIndexOf(i));
    }
    // The engine's replay from indexedSize to the commit point.
    const from = ix.indexedSize;
    const missing = Buffer.concat(Array.from({ length: treeSize - from }, (_, k) => leafHash(from + k)));
    ix.insertMany(missing, from);
    expect(ix.indexedSize).toBe(treeSize);
    const distinct = treeSize - Math.floor(treeSize / 10);
    expect(ix.entryCount).toBe(distinct);
    for (let i = 0; i < treeSize; i++) expect(ix.lookup(leafHash(i))).toBe(firstIndexOf(i));
    ix.close();
    // Stale growth files of the dead writer are gone once a writer opens.
    expect(readdirSync(tmp.dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('a writer in another process makes our writer open fail at once, naming the file', async () => {
    const path = join(tmp.dir, 'index.idx');
    const child = spawn(process.execPath, [CHILD, compiledTree(), path, '50', '0'], { stdio: ['ignore', 'pipe', 'pipe'], env });
    await new Promise<void>((resolve) => child.stdout.on('data', (d) => String(d).includes('ready') && resolve()));
    try {
      // The child holds the writer lock until it is killed below: an open that waited for it
      // would never return.
      const err = thrownBy(() => openIndex(path, { backend, lockKind, onWarning: () => {} }));
      expect(err).toBeInstanceOf(IndexError);
      expect((err as IndexError).code).toBe('locked');
      expect((err as IndexError).message).toContain(path);
      // A read-only handle still works beside the writer.
      const ro = openIndex(path, { backend, mode: 'readOnly' });
      expect(ro.lookup(leafHash(3))).toBe(3);
      ro.close();
    } finally {
      await new Promise((r) => {
        child.on('exit', r);
        child.kill('SIGKILL');
      });
    }
  });
});
