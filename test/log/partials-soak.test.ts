/**
 * The long soak of the partial-tile collector (a heavy suite: npm run test:heavy): many rounds
 * of mixed sizes, concurrent and lone appends, the files under tiles/ within 3x of the entry
 * bytes plus the tree's hashes after every round, after a reopen, and a full audit.
 */
import { afterEach, beforeEach, expect, it } from 'vitest';
import { logPaths, type LogPaths } from '../../src/tile-store/paths.js';
import { soak } from './partials-helpers.js';
import { dataRootsIn, makeTempDir, removeDir } from '../helpers/temp-dirs.js';

let dir: string;
let paths: LogPaths;

beforeEach(() => {
  dir = makeTempDir('tlog-partials-soak-');
  paths = logPaths(dataRootsIn(dir), 'soak');
});
afterEach(() => removeDir(dir));

it.each([1, 2, 3])('soak with seed %i: 250 rounds within 3x, after a reopen too, and audited', { timeout: 900_000 }, async (seed) => {
  const r = await soak(paths, 250, seed);
  expect(r.entries).toBeGreaterThan(2500);
  expect(r.worst).toBeLessThanOrEqual(3);
  expect(r.reopened).toBeLessThanOrEqual(3);
  expect(r.audited).toBe(r.entries);
});
