import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { LOCK_HELD, lockFileExclusive, nativeAvailable, NativeError, type LockKind } from '../../native/index.js';
import { cleanupCompiled, compiledTree, FIXTURES } from './helpers.js';
import { thrownBy } from '../helpers/errors.js';
import { makeTempDir, removeDir, tempDirPerTest } from '../helpers/temp-dirs.js';

const kinds: LockKind[] = nativeAvailable ? ['ofd', 'lockfile'] : ['lockfile'];

/** Starts a child that takes the lock; resolves once it holds it. */
function holdInChild(path: string, kind: LockKind): Promise<ChildProcess> {
  const child = spawn(process.execPath, [join(FIXTURES, 'hold-lock.mjs'), compiledTree(), path, kind], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let err = '';
    child.stderr!.on('data', (d) => (err += d));
    child.stdout!.on('data', (d) => {
      if (String(d).includes('locked')) resolve(child);
    });
    child.on('exit', (code) => reject(new Error(`lock holder exited ${code}: ${err}`)));
  });
}

function killed(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.removeAllListeners('exit');
    child.on('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

afterAll(() => cleanupCompiled());

describe.each(kinds)('lockFileExclusive (%s)', (kind) => {
  const tmp = tempDirPerTest('tlog-lock-');
  let path: string;
  beforeEach(() => {
    path = join(tmp.dir, 'index.idx');
    writeFileSync(path, 'x');
  });

  it('a second taker in this process fails at once, naming the file', () => {
    const lock = lockFileExclusive(path, { kind });
    expect(lock.kind).toBe(kind);
    expect(lock.held).toBe(true);
    const err = thrownBy(() => lockFileExclusive(path, { kind }));
    expect(err).toBeInstanceOf(NativeError);
    expect((err as NativeError).code).toBe(LOCK_HELD);
    expect((err as NativeError).message).toContain(path);
    lock.release();
    expect(lock.held).toBe(false);
    lockFileExclusive(path, { kind }).release();
  });

  it('a lock held by a child process makes ours fail fast, and is gone when the child dies', async () => {
    const child = await holdInChild(path, kind);
    try {
      // The child holds the lock until we kill it below: a taker that waited would never return.
      expect(() => lockFileExclusive(path, { kind })).toThrow(NativeError);
      try {
        lockFileExclusive(path, { kind });
      } catch (e) {
        expect((e as NativeError).code).toBe(LOCK_HELD);
        expect((e as NativeError).message).toMatch(new RegExp(`^lock ${path}: held by `));
        if (kind === 'lockfile') expect((e as NativeError).message).toContain(`pid ${child.pid}`);
      }
    } finally {
      await killed(child);
    }
    // ofd: the kernel dropped it; lockfile: the file names a dead pid and is taken over.
    const lock = lockFileExclusive(path, { kind });
    expect(lock.held).toBe(true);
    lock.release();
  });

  it('is not dropped when another fd of the file is opened and closed', () => {
    const lock = lockFileExclusive(path, { kind });
    readFileSync(path); // a classic fcntl lock would be released by this close
    expect(() => lockFileExclusive(path, { kind })).toThrow(/held by/);
    lock.release();
  });
});

describe.runIf(nativeAvailable)('ofd specifics', () => {
  it('requires the file to exist and names it', () => {
    const dir = makeTempDir('tlog-lock-');
    try {
      expect(() => lockFileExclusive(join(dir, 'missing'), { kind: 'ofd' })).toThrow(`lock ${join(dir, 'missing')}: ENOENT`);
    } finally {
      removeDir(dir);
    }
  });
});

describe('lockfile specifics', () => {
  it('writes our pid and removes the file on release', () => {
    const dir = makeTempDir('tlog-lock-');
    try {
      const path = join(dir, 'x');
      const lock = lockFileExclusive(path, { kind: 'lockfile' });
      expect(readFileSync(`${path}.lock`, 'utf8')).toBe(`${process.pid}\n`);
      lock.release();
      expect(existsSync(`${path}.lock`)).toBe(false);
    } finally {
      removeDir(dir);
    }
  });
});
