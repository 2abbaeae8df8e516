/**
 * The private state root is never under a served root (a static server over tiles/ or
 * checkpoints/ would publish the signing keys), at any placement: the same directory, below
 * it, a name starting with ".." (which is still below it), through a symlink; from the library,
 * the CLI flags and a service configuration. And every private file is 0600 in 0700
 * directories, after creating a log, appending, reopening, rebuilding the index and serving
 * signed requests.
 */
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { lockFileExclusive } from '../../native/index.js';
import { signHttpRequest } from '../../src/client/signed-request.js';
import { Log } from '../../src/log/log.js';
import { logPaths, type DataRoots } from '../../src/tile-store/paths.js';
import { FakeRekorV1 } from '../anchor/fake-rekor-v1.js';
import { makeLog as makeAnchorLog, openAnchorer } from '../anchor/helpers.js';
import { clientKey, get, makeEnv, post, SENTINEL, tokenAuth } from '../http/helpers.js';
import { ensureDist } from '../helpers/dist.js';
import { runTlog } from '../helpers/tlog-cli.js';
import { makeTempDir, removeDir } from '../helpers/temp-dirs.js';

let dir: string;
beforeAll(() => ensureDist(), 240_000);
beforeEach(() => {
  dir = makeTempDir('tlog-private-');
});
afterEach(() => removeDir(dir));

const rootsWithState = (state: string): DataRoots => ({
  tilesRoot: path.join(dir, 'tiles'),
  checkpointsRoot: path.join(dir, 'checkpoints'),
  stateRoot: state,
});

describe('the private root is refused under a served root', () => {
  it('at every placement relative to tiles/ and checkpoints/', () => {
    mkdirSync(path.join(dir, 'tiles'));
    mkdirSync(path.join(dir, 'checkpoints'));
    mkdirSync(path.join(dir, 'elsewhere'));
    symlinkSync(path.join(dir, 'tiles'), path.join(dir, 'link-to-tiles'));
    symlinkSync(path.join(dir, 'checkpoints', '..state'), path.join(dir, 'dangling-into-checkpoints'));
    symlinkSync(path.join(dir, 'elsewhere'), path.join(dir, 'link-elsewhere'));
    const refused = [
      'tiles',
      'tiles/..state',
      'tiles/..',
      'tiles/...',
      'tiles/..private/deeper',
      'tiles/default',
      'checkpoints/..state',
      'checkpoints',
      'link-to-tiles/state',
      'link-to-tiles/..state',
      'dangling-into-checkpoints',
      '.', // contains both served roots
    ];
    const accepted = ['state', '..state', '..tiles', 'tiles-state', 'link-elsewhere/state', 'elsewhere/..state'];
    for (const s of refused) {
      expect(() => logPaths(rootsWithState(path.join(dir, s)), 'default'), s).toThrow(/must not be inside or contain the served directory/);
    }
    for (const s of accepted) {
      expect(logPaths(rootsWithState(path.join(dir, s)), 'default').stateDir, s).toBe(path.join(dir, s, 'default'));
    }
  });

  it('tlog --state-dir tiles/..private: exit 1, one line, nothing created', () => {
    const r = runTlog(['--tiles-dir', 'tiles', '--state-dir', 'tiles/..private', 'init', '--origin', 'example.com/p'], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([
      `tlog: state directory ${path.join(dir, 'tiles/..private')} must not be inside or contain the served directory ${path.join(dir, 'tiles')}`,
    ]);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('tlog serve with stateDir: tiles/..state in its configuration does not start and creates nothing', () => {
    writeFileSync(
      path.join(dir, 'tlog.yaml'),
      [
        'listen: 127.0.0.1:0',
        'tilesDir: tiles',
        'stateDir: tiles/..state',
        'tenants:',
        '  - name: audit',
        '    origin: logs.example.com/audit',
        '    credentials:',
        `      tokens: ["${'0'.repeat(64)}"]`,
        '',
      ].join('\n'),
    );
    // runTlog fails the test if the process was killed (a serve that started would be, at the timeout).
    const r = runTlog(['serve', '--config', 'tlog.yaml'], { cwd: dir, timeoutMs: 30_000 });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/state directory \S+\/tiles\/\.\.state must not be inside or contain the served directory/);
    expect(existsSync(path.join(dir, 'tiles', '..state'))).toBe(false);
  });

  it('the HTTP routes reach nothing under names starting with ".."', async () => {
    const env = await makeEnv([{ name: 'a' }]);
    try {
      // Plant the sentinel where a "..state" directory beside the tenant would be.
      mkdirSync(path.join(env.roots.tilesRoot, '..state', 'a', 'keys'), { recursive: true });
      writeFileSync(path.join(env.roots.tilesRoot, '..state', 'a', 'keys', 'ed25519.key'), SENTINEL);
      mkdirSync(path.join(env.roots.tilesRoot, 'a', '..state'), { recursive: true });
      writeFileSync(path.join(env.roots.tilesRoot, 'a', '..state', 'SECRET'), SENTINEL);
      for (const p of [
        '/..state/a/keys/ed25519.key',
        '/a/..state/SECRET',
        '/a/tile/..state/SECRET',
        '/..state/checkpoint',
        '/a/tile/../..state/SECRET',
        '/a/tile/%2e%2estate/SECRET',
      ]) {
        const r = await get(env.app, `http://localhost${p}`);
        expect(r.status >= 400 && r.status < 500, `${p}: ${r.status}`).toBe(true);
        expect(await r.text(), p).not.toContain(SENTINEL);
      }
    } finally {
      await env.close();
    }
  });
});

/** Every file and directory under root whose mode is not 0600 (files) or 0700 (directories). */
function notPrivate(root: string): string[] {
  const bad: string[] = [];
  const walk = (d: string): void => {
    const m = statSync(d).mode & 0o777;
    if (m !== 0o700) bad.push(`${path.relative(root, d) || '.'}/ ${m.toString(8)}`);
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if ((statSync(p).mode & 0o777) !== 0o600) bad.push(`${path.relative(root, p)} ${(statSync(p).mode & 0o777).toString(8)}`);
    }
  };
  walk(root);
  return bad;
}

describe('private files are 0600 in 0700 directories', () => {
  it.each(['mmap', 'plain'] as const)('after init, appends, reopen and index rebuild (%s index backend)', async (backend) => {
    const roots = rootsWithState(path.join(dir, 'state'));
    const paths = logPaths(roots, 'default');
    const opts = { indexBackend: backend };
    const log = await Log.init(paths, 'example.com/private', opts);
    await Promise.all(log.appendMany(Array.from({ length: 300 }, (_, i) => Buffer.from(`entry ${i}`))));
    // While the log is open: its journal segments, index and notes are all on disk.
    expect(readdirSync(paths.stateDir).sort()).toEqual(expect.arrayContaining(['index.idx', 'journal', 'keys', 'log.json', 'notes']));
    expect(notPrivate(roots.stateRoot)).toEqual([]);
    await log.close();
    expect(notPrivate(roots.stateRoot)).toEqual([]);
    rmSync(path.join(paths.stateDir, 'index.idx'));
    const reopened = await Log.open(paths, opts); // rebuilds the missing index
    await reopened.append(Buffer.from('after reopen'));
    await reopened.close();
    expect(notPrivate(roots.stateRoot)).toEqual([]);
    await Log.rebuildIndex(paths, opts);
    expect(notPrivate(roots.stateRoot)).toEqual([]);
  });

  it('after anchoring (outbox, its lock, the anchoring key), with Rekor running and down', async () => {
    const f = await makeAnchorLog('anchored');
    const rekor = new FakeRekorV1();
    try {
      await rekor.up();
      const a = await openAnchorer(f, { url: rekor.url, publicKey: rekor.publicKeyPem });
      try {
        expect((await a.anchorNow(f.log.committed.note)).state).toBe('done');
        await f.log.append(Buffer.from('one more'));
        await rekor.down();
        expect((await a.anchorNow(f.log.committed.note)).state).toBe('pending');
      } finally {
        await a.stop();
      }
      expect(readdirSync(f.paths.stateDir)).toEqual(expect.arrayContaining(['keys', 'index.idx', 'log.json']));
      expect(notPrivate(f.roots.stateRoot)).toEqual([]);
    } finally {
      await rekor.down();
      await f.cleanup();
    }
  });

  it('the lock file of the fallback lock', () => {
    const f = path.join(dir, 'index.idx');
    writeFileSync(f, '', { mode: 0o600 });
    const lock = lockFileExclusive(f, { kind: 'lockfile' });
    try {
      expect(statSync(`${f}.lock`).mode & 0o777).toBe(0o600);
    } finally {
      lock.release();
    }
  });

  it('after serving signed requests (the client counters)', async () => {
    const c = clientKey(7);
    const env = await makeEnv([{ name: 's', auth: tokenAuth({ clients: [['c', c.publicKey]] }) }]);
    try {
      for (let counter = 1; counter <= 3; counter++) {
        const body = Buffer.from(`signed ${counter}`);
        const headers = await signHttpRequest({ clientID: 'c', seed: c.seed, origin: 'example.com/s', method: 'POST', url: '/s/append', body, counter });
        expect((await post(env.app, '/s/append', body, headers)).status).toBe(200);
      }
      // The counters file is written after the answer: closing the tenants flushes it.
      await env.registry.closeAll();
      const stateDir = path.join(env.roots.stateRoot, 's');
      expect(readdirSync(stateDir)).toContain('client-counters.json');
      // makeEnv's own sentinel at the state root is not the log's: check the tenant's directory.
      expect(notPrivate(stateDir)).toEqual([]);
    } finally {
      await env.close();
    }
  });
});
