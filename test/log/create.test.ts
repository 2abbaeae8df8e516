/**
 * Creating a log is all or nothing: a failure or a crash (SIGKILL) at any step leaves no log and
 * no keys under the log's name, and the next creation succeeds. A log `tlog serve` made on first
 * start (implicit) may get another origin while nothing was appended to it, and only then.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CREATE_STEPS, createLogState, type CreateStep } from '../../src/log/create.js';
import { Log } from '../../src/log/log.js';
import { logPaths, type DataRoots, type LogPaths } from '../../src/tile-store/paths.js';
import { distModule, ensureDist } from '../helpers/dist.js';
import { removeDir, tempDataRoots } from '../helpers/temp-dirs.js';

let dir: string;
let roots: DataRoots;
let paths: LogPaths;

beforeAll(() => ensureDist(), 240_000);
beforeEach(() => {
  ({ dir, roots } = tempDataRoots('tlog-create-'));
  paths = logPaths(roots, 'default');
});
afterEach(() => removeDir(dir));

/** Everything under the data roots, but the creation lock file (which stays, empty). */
function leftovers(): string[] {
  const out: string[] = [];
  for (const r of [roots.tilesRoot, roots.checkpointsRoot, roots.stateRoot]) {
    if (!existsSync(r)) continue;
    for (const n of readdirSync(r, { recursive: true })) if (!String(n).endsWith('.create.lock')) out.push(path.join(path.basename(r), String(n)));
  }
  return out.sort();
}

const mode = (p: string) => statSync(p).mode & 0o777;

/** A created log that opens, publishes and has its keys private. */
async function expectSoundLog(origin: string): Promise<void> {
  const log = await Log.open(paths);
  try {
    expect(log.origin).toBe(origin);
    expect(log.treeSize).toBe(0);
    await log.append(Buffer.from('first entry'));
  } finally {
    await log.close();
  }
  expect(readFileSync(path.join(paths.tilesDir, 'checkpoint'), 'utf8')).toMatch(new RegExp(`^${origin}\n1\n`));
  expect(readFileSync(path.join(paths.historyDir, 'vkeys'), 'utf8')).toContain(`${origin}+`);
  expect(mode(paths.stateDir)).toBe(0o700);
  expect(mode(path.join(paths.stateDir, 'keys'))).toBe(0o700);
  for (const k of readdirSync(path.join(paths.stateDir, 'keys'))) expect(mode(path.join(paths.stateDir, 'keys', k))).toBe(0o600);
}

describe('creating a log', () => {
  it.each(CREATE_STEPS.map((s) => [s]))('a failure at step "%s" leaves nothing, and the next creation succeeds', async (failAt) => {
    const seen: CreateStep[] = [];
    const err = await Log.init(
      paths,
      'example.com/atomic',
      {},
      {
        extraState: async (d) => writeFileSync(path.join(d, 'keys', 'extra.key'), 'x', { mode: 0o600 }),
        beforeStep: (s) => {
          seen.push(s);
          if (s === failAt) throw new Error(`injected failure at ${s}`);
        },
      },
    ).catch((e: unknown) => e);
    expect((err as Error).message).toBe(`injected failure at ${failAt}`);
    expect(seen[seen.length - 1]).toBe(failAt);
    expect(leftovers()).toEqual([]);
    await expect(Log.open(paths)).rejects.toThrow(/no log at .*: run `tlog init` first/);
    await (await Log.init(paths, 'example.com/atomic')).close();
    await expectSoundLog('example.com/atomic');
  });

  it.each(CREATE_STEPS.map((s) => [s]))('a SIGKILL at step "%s" leaves no log, and the next creation clears what it left', (killAt) => {
    const script = `
      import { Log } from ${JSON.stringify(distModule('log/log.js'))};
      import { logPaths } from ${JSON.stringify(distModule('tile-store/paths.js'))};
      const paths = logPaths(${JSON.stringify(roots)}, 'default');
      await Log.init(paths, 'example.com/killed', {}, { beforeStep: (s) => { if (s === ${JSON.stringify(killAt)}) process.kill(process.pid, 'SIGKILL'); } });
      process.exit(3);
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    expect(r.signal, r.stderr).toBe('SIGKILL');
    // The half-made state is in the side directory, never under the log's name.
    expect(existsSync(paths.stateDir)).toBe(false);
    expect(existsSync(path.join(paths.tilesDir, 'checkpoint'))).toBe(false);
    return (async () => {
      await expect(Log.open(paths)).rejects.toThrow(/no log at/);
      await (await Log.init(paths, 'example.com/killed')).close();
      expect(leftovers().filter((p) => p.includes('.default.'))).toEqual([]);
      await expectSoundLog('example.com/killed');
    })();
  });

  it('a crash after the one rename is a log: opening it publishes its checkpoint and verifier keys', async () => {
    expect(await createLogState(paths, 'example.com/renamed', { signPool: 'inline' })).toEqual({ result: 'created' });
    expect(existsSync(path.join(paths.tilesDir, 'checkpoint'))).toBe(false);
    await expectSoundLog('example.com/renamed');
  });

  it('clears keys an older version left without a log, but refuses a directory holding anything else', async () => {
    // What an interrupted first start used to leave: keys, no log.json ("key file ... already exists" ever after).
    mkdirSync(path.join(paths.stateDir, 'keys'), { recursive: true });
    writeFileSync(path.join(paths.stateDir, 'keys', 'ed25519.key'), 'PRIVATE+KEY+old', { mode: 0o600 });
    mkdirSync(path.join(paths.stateDir, 'notes'));
    await (await Log.init(paths, 'example.com/legacy')).close();
    await expectSoundLog('example.com/legacy');

    const other = logPaths(roots, 'other');
    mkdirSync(other.stateDir, { recursive: true });
    writeFileSync(path.join(other.stateDir, 'my-notes.txt'), 'not ours');
    await expect(Log.init(other, 'example.com/other')).rejects.toThrow(/holds files but no log \(log\.json is missing\): move it away/);
    expect(readdirSync(other.stateDir)).toEqual(['my-notes.txt']);
  });

  it('one creator at a time: a second one fails at once while the first runs', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let started!: () => void;
    const inside = new Promise<void>((r) => (started = r));
    const first = Log.init(
      paths,
      'example.com/first',
      {},
      {
        beforeStep: async (s) => {
          if (s === 'note') {
            started();
            await held;
          }
        },
      },
    );
    await inside;
    await expect(Log.init(paths, 'example.com/second')).rejects.toThrow(/log default is being created by another process/);
    release();
    await (await first).close();
    await expectSoundLog('example.com/first');
  });
});

describe('an implicit log (made by `tlog serve` on first start)', () => {
  const implicit = async (origin = '127.0.0.1:8080/default') => (await Log.init(paths, origin, {}, { implicit: true })).close();

  it('gets another origin while empty: a new log, with new keys, public files and history', async () => {
    await implicit();
    const oldVkeys = readFileSync(path.join(paths.historyDir, 'vkeys'), 'utf8');
    const { log, outcome } = await Log.create(paths, 'example.com/log');
    await log.close();
    expect(outcome).toEqual({ result: 'replaced', oldOrigin: '127.0.0.1:8080/default' });
    expect(readFileSync(path.join(paths.historyDir, 'vkeys'), 'utf8')).not.toBe(oldVkeys);
    expect(readFileSync(path.join(paths.historyDir, 'log', '000'), 'utf8')).toMatch(/^example\.com\/log\n0\n/);
    expect(leftovers().filter((p) => p.includes('.default.'))).toEqual([]);
    await expectSoundLog('example.com/log');
    // Not implicit any more: its origin is now fixed.
    await expect(Log.create(paths, 'example.com/again')).rejects.toThrow(/a log already exists at .* with origin example\.com\/log: its origin cannot change/);
  });

  it('with the same origin is kept as it is', async () => {
    await implicit('example.com/same');
    const key = readFileSync(path.join(paths.stateDir, 'keys', 'ed25519.key'), 'utf8');
    const { log, outcome } = await Log.create(paths, 'example.com/same');
    await log.close();
    expect(outcome).toEqual({ result: 'exists' });
    expect(readFileSync(path.join(paths.stateDir, 'keys', 'ed25519.key'), 'utf8')).toBe(key);
    await expect(Log.init(paths, 'example.com/same')).rejects.toThrow(/a log already exists/);
  });

  it('keeps its origin once an entry was appended, or while it is open, and an explicit log always does', async () => {
    await implicit();
    const log = await Log.open(paths);
    await expect(Log.create(paths, 'example.com/log')).rejects.toThrow(/already open for writing by another process/);
    await log.append(Buffer.from('an entry'));
    await log.close();
    await expect(Log.create(paths, 'example.com/log')).rejects.toThrow(/with origin 127\.0\.0\.1:8080\/default and entries in it: its origin cannot change/);

    const explicit = logPaths(roots, 'explicit');
    await (await Log.init(explicit, 'example.com/explicit')).close();
    await expect(Log.create(explicit, 'example.com/log')).rejects.toThrow(/with origin example\.com\/explicit: its origin cannot change/);
    const reader = await Log.open(explicit, { readOnly: true });
    await reader.close();
    expect(reader.origin).toBe('example.com/explicit');
  });

  it('a replacement cut short after the old log was moved aside is finished by the next creation', async () => {
    await implicit();
    renameSync(paths.stateDir, path.join(roots.stateRoot, '.default.discarding'));
    await (await Log.init(paths, 'example.com/log')).close();
    expect(existsSync(path.join(roots.stateRoot, '.default.discarding'))).toBe(false);
    await expectSoundLog('example.com/log');
  });
});
