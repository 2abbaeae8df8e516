/**
 * The file worker (src/storage/file-worker.ts) and DurableWriter's deferred writes through it:
 * files land atomically with their bytes and modes, new directories are reported for the flush,
 * an immutable file with other bytes is refused, errors name the operation, path and errno, calls
 * complete in order, and a worker that dies fails its calls and is replaced.
 */
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, isTlogError } from '../../src/errors.js';
import { DurableWriter } from '../../src/storage/durable.js';
import { FileWorker } from '../../src/storage/file-worker.js';
import { makeTempDir, removeDir } from '../helpers/temp-dirs.js';

let dir: string;
const worker = new FileWorker();
beforeEach(() => {
  dir = makeTempDir('tlog-file-worker-');
});
afterEach(() => removeDir(dir));
afterAll(() => worker.close());

const listAll = (d: string) => (readdirSync(d, { recursive: true }) as string[]).sort();

describe('FileWorker', () => {
  it('writes files with their bytes and modes, creating directories, and leaves no temp file', async () => {
    const a = path.join(dir, 'tile/0/x001/002.p/7');
    const b = path.join(dir, 'checkpoint');
    const r = await worker.write([
      { path: a, data: Buffer.from('tile bytes'), kind: 'immutable', mode: 0o644 },
      { path: b, data: Buffer.from('note'), kind: 'replace', mode: 0o600 },
    ]);
    expect(r.fail).toBeNull();
    expect(r.written.sort()).toEqual([a, b].sort());
    expect(readFileSync(a, 'utf8')).toBe('tile bytes');
    expect(statSync(b).mode & 0o777).toBe(0o600);
    // Every new directory's parent is reported: those entries become durable only when it is synced.
    for (const d of [dir, path.join(dir, 'tile'), path.join(dir, 'tile/0'), path.join(dir, 'tile/0/x001'), path.join(dir, 'tile/0/x001/002.p')]) {
      expect(r.dirs, d).toContain(d);
    }
    expect(listAll(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('replaces a replace-kind file, keeps an identical immutable one, refuses an immutable one with other bytes', async () => {
    const p = path.join(dir, 'f');
    writeFileSync(p, 'old');
    expect((await worker.write([{ path: p, data: Buffer.from('new'), kind: 'replace', mode: 0o644 }])).fail).toBeNull();
    expect(readFileSync(p, 'utf8')).toBe('new');
    const same = await worker.write([{ path: p, data: Buffer.from('new'), kind: 'immutable', mode: 0o644 }]);
    expect(same.fail).toBeNull();
    expect(same.written).toEqual([]);
    const other = await worker.write([{ path: p, data: Buffer.from('other'), kind: 'immutable', mode: 0o644 }]);
    expect(other.fail).toEqual({ conflict: true, path: p, have: 3, want: 5 });
    expect(readFileSync(p, 'utf8')).toBe('new');
  });

  it('fails with the operation, path and errno, and renames nothing of a call that failed before its renames', async () => {
    const blocker = path.join(dir, 'not-a-dir');
    writeFileSync(blocker, 'x');
    const ok = path.join(dir, 'ok');
    const r = await worker.write([
      { path: ok, data: Buffer.from('1'), kind: 'replace', mode: 0o644 },
      { path: path.join(blocker, 'child'), data: Buffer.from('2'), kind: 'replace', mode: 0o644 },
    ]);
    // mkdir -p of a path that is a file: EEXIST (or ENOTDIR for a path below a file).
    expect(r.fail).toMatchObject({ op: 'mkdir', path: blocker, code: expect.stringMatching(/^(EEXIST|ENOTDIR)$/) });
    expect(existsSync(ok)).toBe(false);
    expect(listAll(dir)).toEqual(['not-a-dir']);
  });

  it('completes calls in call order', async () => {
    const p = path.join(dir, 'ordered');
    const all = await Promise.all(
      Array.from({ length: 50 }, (_, i) => worker.write([{ path: p, data: Buffer.from(String(i)), kind: 'replace', mode: 0o644 }])),
    );
    expect(all.every((r) => r.fail === null)).toBe(true);
    expect(readFileSync(p, 'utf8')).toBe('49');
  });

  it('a closed worker fails its calls; a new one works', async () => {
    const w = new FileWorker();
    await w.write([{ path: path.join(dir, 'a'), data: Buffer.from('a'), kind: 'replace', mode: 0o644 }]);
    const pending = w.write([{ path: path.join(dir, 'b'), data: Buffer.alloc(1 << 20), kind: 'replace', mode: 0o644 }]).catch((e: Error) => e);
    await w.close();
    expect(String(await pending)).toMatch(/closed/);
    await expect(w.write([])).rejects.toThrow(/closed/);
  });
});

describe('DurableWriter deferred writes through the worker', () => {
  it('tracks the files and directories for flush(), and maps failures to TlogErrors', async () => {
    const w = new DurableWriter({ mode: 0o644, fileWorker: worker });
    const p = path.join(dir, 'a/b/c');
    await w.writeDeferred([{ path: p, data: Buffer.from('x'), kind: 'immutable' }]);
    expect(w.unsynced).toBe(1);
    await w.flush();
    expect(w.unsynced).toBe(0);
    const e = await w.writeDeferred([{ path: p, data: Buffer.from('y'), kind: 'immutable' }]).catch((x: unknown) => x);
    expect(isTlogError(e, ErrorCode.immutableConflict)).toBe(true);
    const hook = new DurableWriter({
      fileWorker: worker,
      beforeWrite: () => {
        throw Object.assign(new Error('no space'), { code: 'ENOSPC' });
      },
    });
    await expect(hook.writeDeferred([{ path: path.join(dir, 'z'), data: Buffer.from('z'), kind: 'replace' }])).rejects.toThrow(/^write .*z: ENOSPC$/);
    expect(existsSync(path.join(dir, 'z'))).toBe(false);
    const blocker = path.join(dir, 'file');
    writeFileSync(blocker, '');
    const io = await w.writeDeferred([{ path: path.join(blocker, 'x'), data: Buffer.from('x'), kind: 'replace' }]).catch((x: unknown) => x);
    expect(isTlogError(io, ErrorCode.io)).toBe(true);
    expect((io as Error).message).toMatch(new RegExp(`^mkdir ${blocker}: (EEXIST|ENOTDIR)$`));
  });
});

describe('flushes through a sync worker', () => {
  it('fsyncs every path that exists, in one message; skips a missing one; stops at a failure unless told to go on', async () => {
    const sync = new FileWorker();
    try {
      const a = path.join(dir, 'a');
      const b = path.join(dir, 'b');
      writeFileSync(a, 'a');
      writeFileSync(b, 'b');
      const ok = await sync.sync([a, path.join(dir, 'gone'), b, dir]);
      expect(ok.fail).toBeNull();
      expect(ok.synced).toBe(3);
      expect(sync.posted).toBe(1);
      // A path under a regular file cannot be opened (ENOTDIR): not a missing file, a failure.
      const bad = path.join(a, 'x');
      const stopped = await sync.sync([a, bad, b]);
      expect(stopped.fail).toEqual({ op: 'fsync', path: bad, code: 'ENOTDIR' });
      expect(stopped.synced).toBe(1);
      const went = await sync.sync([a, bad, b], true);
      expect(went.fail).toEqual({ op: 'fsync', path: bad, code: 'ENOTDIR' });
      expect(went.synced).toBe(2);
    } finally {
      await sync.close();
    }
  });

  for (const through of ['a sync worker', 'the libuv pool'] as const) {
    it(`flush() through ${through}: one message for all; a failure names the path and keeps every file queued`, async () => {
      const sync = new FileWorker();
      try {
        const w = new DurableWriter({ mode: 0o644, fileWorker: worker, ...(through === 'a sync worker' ? { syncWorker: sync } : {}) });
        await w.writeDeferred([
          { path: path.join(dir, 't/1'), data: Buffer.from('1'), kind: 'immutable' },
          { path: path.join(dir, 'u/2'), data: Buffer.from('2'), kind: 'immutable' },
        ]);
        w.adopt([path.join(dir, 'never-written')]);
        expect(w.unsynced).toBe(3);
        await w.flush();
        expect(w.unsynced).toBe(0);
        expect(sync.posted).toBe(through === 'a sync worker' ? 1 : 0);
        const blocker = path.join(dir, 't/1');
        w.adopt([path.join(dir, 'u/2'), path.join(blocker, 'x')]);
        await expect(w.flush()).rejects.toThrow(new RegExp(`^fsync ${blocker}/x: ENOTDIR$`));
        expect(w.unsynced).toBe(2);
        // syncDirs reports no failure and syncs the others.
        await w.syncDirs([path.join(blocker, 'x'), dir]);
        expect(sync.posted).toBe(through === 'a sync worker' ? 3 : 0);
      } finally {
        await sync.close();
      }
    });
  }
});

it('without a worker, deferred writes go through the libuv pool with the same results', async () => {
  const w = new DurableWriter({ mode: 0o644 });
  const p = path.join(dir, 'no-worker/a/b');
  await w.writeDeferred([{ path: p, data: Buffer.from('x'), kind: 'immutable' }]);
  expect(readFileSync(p, 'utf8')).toBe('x');
  expect(w.unsynced).toBe(1);
  await w.flush();
  expect(w.unsynced).toBe(0);
  const e = await w.writeDeferred([{ path: p, data: Buffer.from('y'), kind: 'immutable' }]).catch((x: unknown) => x);
  expect(isTlogError(e, ErrorCode.immutableConflict)).toBe(true);
});

describe('per-batch costs', () => {
  it('makes a directory only when it is missing: none for a directory it wrote into, again once it was removed', async () => {
    const d = path.join(dir, 'tile/0/001.p');
    const first = await worker.write([{ path: path.join(d, '1'), data: Buffer.from('a'), kind: 'immutable', mode: 0o644 }]);
    expect(first.fail).toBeNull();
    expect(first.mkdirs).toBe(1);
    const again = await worker.write([
      { path: path.join(d, '2'), data: Buffer.from('ab'), kind: 'immutable', mode: 0o644 },
      { path: path.join(d, '3'), data: Buffer.from('abc'), kind: 'immutable', mode: 0o644 },
    ]);
    expect(again.fail).toBeNull();
    expect(again.mkdirs).toBe(0);
    // Its directory is still reported (the renames changed its entries), its parents no longer.
    expect(again.dirs).toEqual([d]);
    // Removed behind the worker's back (a collected partial directory): made again.
    rmSync(d, { recursive: true });
    const after = await worker.write([{ path: path.join(d, '4'), data: Buffer.from('abcd'), kind: 'immutable', mode: 0o644 }]);
    expect(after.fail).toBeNull();
    expect(after.mkdirs).toBe(1);
    expect(after.dirs).toContain(path.dirname(d));
    expect(readFileSync(path.join(d, '4'), 'utf8')).toBe('abcd');
  });

  it('refuses an immutable file that differs in its last byte, or is one byte shorter or longer; keeps an identical one', async () => {
    const p = path.join(dir, 'bundle');
    writeFileSync(p, 'abcdef');
    const attempt = async (data: string) => (await worker.write([{ path: p, data: Buffer.from(data), kind: 'immutable', mode: 0o644 }])).fail;
    expect(await attempt('abcdeX')).toEqual({ conflict: true, path: p, have: 6, want: 6 });
    expect(await attempt('abcde')).toEqual({ conflict: true, path: p, have: 6, want: 5 });
    expect(await attempt('abcdefg')).toEqual({ conflict: true, path: p, have: 6, want: 7 });
    expect(await attempt('abcdef')).toBeNull();
    expect(readFileSync(p, 'utf8')).toBe('abcdef');
    expect(listAll(dir)).toEqual(['bundle']);
  });

  it('writes the exact bytes of views into larger buffers (the packed, transferred message)', async () => {
    const big = Buffer.alloc(16352, 7);
    big.write('hello', 100);
    const view = big.subarray(100, 105);
    const other = new Uint8Array([1, 2, 3, 4, 5, 6]).subarray(2, 4);
    const r = await worker.write([
      { path: path.join(dir, 'v'), data: view, kind: 'immutable', mode: 0o644 },
      { path: path.join(dir, 'e'), data: new Uint8Array(0), kind: 'replace', mode: 0o644 },
      { path: path.join(dir, 'o'), data: other, kind: 'immutable', mode: 0o644 },
    ]);
    expect(r.fail).toBeNull();
    expect(readFileSync(path.join(dir, 'v'), 'utf8')).toBe('hello');
    expect(readFileSync(path.join(dir, 'e')).length).toBe(0);
    expect([...readFileSync(path.join(dir, 'o'))]).toEqual([3, 4]);
    // The caller's buffers are untouched (copied into the message, not detached).
    expect(big.length).toBe(16352);
    expect(view.toString()).toBe('hello');
  });

  it('removals ride the next deferred write in one message, first; alone they go one turn later', async () => {
    const w = new DurableWriter({ mode: 0o644, fileWorker: worker });
    const d = path.join(dir, 'tile/entries/000.p');
    await w.writeDeferred([1, 2, 3].map((i) => ({ path: path.join(d, String(i)), data: Buffer.from(String(i)), kind: 'immutable' as const })));
    const before = worker.posted;
    const removed = w.removeDeferred([{ path: path.join(d, '1'), rmdir: false }]);
    const more = w.removeDeferred([
      { path: path.join(d, '2'), rmdir: false },
      { path: path.join(d, 'missing'), rmdir: false },
    ]);
    expect(more).toBe(removed);
    // Removed, then written again: removals go first within the message.
    await w.writeDeferred([{ path: path.join(d, '2'), data: Buffer.from('2'), kind: 'immutable' }]);
    const r = await removed;
    expect(worker.posted - before).toBe(1);
    expect(r.errors).toEqual([]);
    expect(r.dirs).toContain(d);
    expect(existsSync(path.join(d, '1'))).toBe(false);
    expect(readFileSync(path.join(d, '2'), 'utf8')).toBe('2');
    // No write follows: they go on their own; the emptied directory goes too when asked.
    const alone = await w.removeDeferred([
      { path: path.join(d, '2'), rmdir: false },
      { path: path.join(d, '3'), rmdir: true },
    ]);
    expect(worker.posted - before).toBe(2);
    expect(alone.rmdirs).toEqual([d]);
    expect(alone.dirs).toContain(path.dirname(d));
    expect(existsSync(d)).toBe(false);
  });
});
