/**
 * The forensic scripts on a log of 70000 entries: three tile levels (273 full level-0 tiles and
 * 0/273.p/112, 1/000 and 1/001.p/17, 2/000.p/1). The root is recomputed from the tiles, which
 * checks every full tile against the level above; entries are re-hashed for a sample of
 * bundles (the first, the two around 65536, the last, partial one) to keep the run short. In
 * both userlands of helpers.ts (busybox alone; dash with gawk --posix and GNU coreutils).
 */
import { readFileSync, writeFileSync, cpSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { leafHash } from '../../src/merkle/hash.js';
import { encodeBase64 } from '../../src/note/note.js';
import { busyboxShell, cleanupShells, dashGnuShell, makeLog, parseLeaves, parseRecomputed, runScript, type Shell, type TestLog } from './helpers.js';
import { makeTempDir, removeDir } from '../helpers/temp-dirs.js';

const SIZE = 70_000;
let l: TestLog;
let scratch: string | undefined;
const SHELLS: Shell[] = [busyboxShell(), dashGnuShell()];

beforeAll(async () => {
  l = await makeLog(SIZE, 'example.com/forensic-large', 16_384);
});
afterAll(() => {
  if (l) removeDir(l.root);
  if (scratch) removeDir(scratch);
  cleanupShells();
});

// CPU-bound shell pipelines on a shared machine: the timeouts only catch a hang.
const LONG = { timeout: 600_000 };

describe.each(SHELLS)('a log of 70000 entries ($name)', (sh) => {
  it('tlog-root.sh checks every full tile against the level above and recomputes the root', LONG, () => {
    const r = runScript(sh, 'tlog-root.sh', [l.tilesDir]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('level 0      70000 hashes: 273 full tile(s), a partial tile of 112');
    expect(r.stdout).toContain('level 1      273 hashes: 1 full tile(s), a partial tile of 17');
    expect(r.stdout).toContain('level 2      1 hashes: 0 full tile(s), a partial tile of 1');
    expect(r.stdout).toContain('level 1      every full tile hashes to its hash at level 2');
    expect(parseRecomputed(r.stdout)).toBe(encodeBase64(l.log.committed.rootHash));
  });

  it('tlog-leaves.sh matches the engine on sampled bundles', LONG, () => {
    for (const [first, last] of [
      [0, 255],
      [65_280, 65_791],
      [69_888, 69_999],
    ] as const) {
      const r = runScript(sh, 'tlog-leaves.sh', [l.tilesDir, String(first), String(last)]);
      expect(r.code).toBe(0);
      const got = parseLeaves(r.stdout);
      expect(got.size).toBe(last - first + 1);
      for (let i = first; i <= last; i++) expect(got.get(i), `entry ${i}`).toBe(Buffer.from(leafHash(l.entries[i]!)).toString('hex'));
    }
  });
});

// Once, in one userland: the comparison it exercises is the same awk program in both, and the
// small logs of scripts.test.ts find flipped tile bytes in both.
describe('a log of 70000 entries, damaged', () => {
  it('a flipped byte in the full level-1 tile is found', LONG, () => {
    scratch = makeTempDir('tlog-forensic-large-');
    const tiles = path.join(scratch, 'tiles');
    cpSync(l.tilesDir, tiles, { recursive: true });
    const f = path.join(tiles, 'tile/1/000');
    const b = readFileSync(f);
    b[32 * 200 + 7]! ^= 0x80;
    writeFileSync(f, b);
    const r = runScript(SHELLS[1]!, 'tlog-root.sh', [tiles]);
    expect(r.code).toBe(1);
    // tile/0/200 no longer matches hash 200 of tile/1/000, and tile/1/000 no longer matches 2/000.p/1.
    expect(r.stdout).toMatch(/^FAIL: tile\/0\/200 hashes to [0-9a-f]{64}, but hash 200 of tile\/1\/000 is/m);
    expect(r.stdout).toMatch(/^FAIL: tile\/1\/000 hashes to [0-9a-f]{64}, but hash 0 of tile\/2\/000\.p\/1 is/m);
  });
});
