import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { errnoName } from '../../native/index.js';
import { cleanupCompiled, compiledTree, FIXTURES } from './helpers.js';
import { makeTempDir, removeDir } from '../helpers/temp-dirs.js';

afterAll(() => cleanupCompiled());

it('maps errno numbers to names', () => {
  expect(errnoName(12)).toBe('ENOMEM');
  expect(errnoName(11)).toBe('EAGAIN');
  expect(errnoName(28)).toBe('ENOSPC');
  expect(errnoName(99999)).toBe('errno 99999');
});

it('TLOG_NO_NATIVE=1 falls back to plain files and lock files with one warning line', () => {
  const dir = makeTempDir('tlog-fallback-');
  try {
    const r = spawnSync(process.execPath, [join(FIXTURES, 'report-native.mjs'), compiledTree(), dir], {
      env: { ...process.env, TLOG_NO_NATIVE: '1' },
      encoding: 'utf8',
    });
    expect(r.status).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ nativeAvailable: false, reason: 'TLOG_NO_NATIVE=1', backend: 'plain', value: 123456789, lockKind: 'lockfile' });
    expect(report.second).toMatch(/^lock_held: lock .*f\.bin: held by pid \d+/);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^tlog: native mmap\/locks unavailable \(TLOG_NO_NATIVE=1\)/);
  } finally {
    removeDir(dir);
  }
});

it('without the variable the same child uses mmap and OFD locks, silently', () => {
  const dir = makeTempDir('tlog-fallback-');
  try {
    const env = { ...process.env };
    delete env.TLOG_NO_NATIVE;
    const out = execFileSync(process.execPath, [join(FIXTURES, 'report-native.mjs'), compiledTree(), dir], {
      env,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    expect(JSON.parse(out)).toMatchObject({ nativeAvailable: true, backend: 'mmap', lockKind: 'ofd', value: 123456789 });
    expect(JSON.parse(out).second).toMatch(/^lock_held: lock .*f\.bin: held by another process \(EAGAIN\)$/);
  } finally {
    removeDir(dir);
  }
});
