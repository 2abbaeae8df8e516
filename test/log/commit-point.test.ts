/**
 * The commit point a batch moves to (src/log/sequencer.ts builds it from the size and root it
 * signed, without parsing the note again) is the one its note says: the same as commitPointOf
 * the note, which recovery reads back.
 */
import { afterEach, beforeEach, expect, it } from 'vitest';
import { commitPointOf } from '../../src/log/commit-point.js';
import { Log } from '../../src/log/log.js';
import { logPaths, type LogPaths } from '../../src/tile-store/paths.js';
import { removeDir, tempDataRoots } from '../helpers/temp-dirs.js';

let dir: string;
let paths: LogPaths;
beforeEach(() => {
  const t = tempDataRoots('tlog-commit-point-');
  dir = t.dir;
  paths = logPaths(t.roots, 'cp');
});
afterEach(() => removeDir(dir));

it("each batch's commit point is the one its signed note holds", async () => {
  const log = await Log.init(paths, 'example.com/commit-point-test');
  for (const n of [1, 2, 255, 300]) {
    await Promise.all(log.appendMany(Array.from({ length: n }, (_, i) => Buffer.from(`batch of ${n}, entry ${i}`))));
    const cp = log.committed;
    expect(cp).toEqual(commitPointOf(cp.note));
  }
  expect(log.treeSize).toBe(558);
  await log.close();
  const again = await Log.open(paths);
  expect(again.committed).toEqual(commitPointOf(again.committed.note));
  expect(again.treeSize).toBe(558);
  await again.close();
});
