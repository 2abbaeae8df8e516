import { describe, expect, test } from 'vitest';
import {
  ENTRIES_LEVEL,
  FULL_TILE_BYTES,
  MAX_LEVEL,
  TILE_WIDTH,
  type TileCoord,
  changedTiles,
  formatIndexPath,
  formatTilePath,
  hashesAtLevel,
  parseTilePath,
  partialWidth,
  tileWidthInTree,
  topLevel,
} from '../../src/tiles/layout.js';
import { prng, randInt } from '../prng.mjs';
import { vectors } from '../vectors.js';

describe('vectors: tile paths', () => {
  test.each(vectors.tile_paths)('$path', (v) => {
    const coord = { level: v.level, index: v.index, width: v.width };
    expect(formatTilePath(coord)).toBe(v.path);
    expect(parseTilePath(v.path)).toEqual(coord);
    expect(formatTilePath(parseTilePath(v.path)!)).toBe(v.path);
  });
});

describe('index paths (c2sp.org/tlog-tiles)', () => {
  test('examples from the spec', () => {
    expect(formatIndexPath(1234067)).toBe('x001/x234/067');
    expect(formatIndexPath(1000)).toBe('x001/000');
    expect(formatIndexPath(5)).toBe('005');
    expect(formatIndexPath(0)).toBe('000');
    expect(formatIndexPath(999)).toBe('999');
    expect(formatIndexPath(1000000)).toBe('x001/x000/000');
    expect(formatIndexPath(Number.MAX_SAFE_INTEGER)).toBe('x009/x007/x199/x254/x740/991');
  });

  test('bad indexes throw', () => {
    for (const n of [-1, 1.5, Number.NaN, Infinity, 2 ** 53]) expect(() => formatIndexPath(n)).toThrow();
  });

  test('round trip over many indexes, levels and widths', () => {
    const rand = prng(7);
    const indexes = [0, 1, 9, 10, 99, 100, 999, 1000, 1001, 999999, 1000000, 1000001, Number.MAX_SAFE_INTEGER];
    for (let i = 0; i < 100; i++) indexes.push(randInt(rand, 0, 2 ** randInt(rand, 1, 53)));
    for (const index of indexes) {
      for (const level of [ENTRIES_LEVEL, 0, 1, 7, 63]) {
        for (const width of [1, 2, 17, 255, 256]) {
          const c: TileCoord = { level, index, width };
          const p = formatTilePath(c);
          expect(parseTilePath(p)).toEqual(c);
          expect(p.endsWith('.p/' + width)).toBe(width !== TILE_WIDTH);
        }
      }
    }
  });

  test('formatTilePath refuses coordinates outside the spec', () => {
    for (const c of [
      { level: 64, index: 0, width: 256 },
      { level: -2, index: 0, width: 256 },
      { level: 0.5, index: 0, width: 256 },
      { level: 0, index: 0, width: 0 },
      { level: 0, index: 0, width: 257 },
      { level: 0, index: 0, width: 1.5 },
      { level: 0, index: -1, width: 256 },
    ]) {
      expect(() => formatTilePath(c)).toThrow();
    }
  });
});

describe('parseTilePath rejects non-canonical and malformed paths', () => {
  test.each([
    'tile/0/0005',
    'tile/00/000',
    'tile/0/x000/005',
    'tile/0/000.p/0',
    'tile/0/000.p/256',
    'tile/0/000.p/01',
    'tile/64/000',
    'tile/01/000',
    'tile/-1/000',
    'tile/+1/000',
    'tile/1e1/000',
    'tile/0/05',
    'tile/0/5',
    'tile/0/x001',
    'tile/0/001/000',
    'tile/0/x01/000',
    'tile/0/x0001/000',
    'tile/0/y001/000',
    'tile/0/X001/000',
    'tile/0/x001/x000',
    'tile/0/x000/x001/000',
    'tile/0/000.p',
    'tile/0/000.p/',
    'tile/0/000.p/1/',
    'tile/0/000.p/1.p/2',
    'tile/0/000.p/-1',
    'tile/0/000.p/+1',
    'tile/0/000.p/1e2',
    'tile/0/000.P/1',
    'tile/0/x001.p/000/1',
    'tile/0/.p/1',
    'tile/0/000/',
    'tile/0//000',
    'tile//000',
    'tile/0',
    'tile/0/',
    'tile',
    '',
    '/tile/0/000',
    'tiles/0/000',
    'tile/entries',
    'tile/entries/0005',
    'tile/entries/x000/005',
    'tile/entries/000.p/256',
    'tile/Entries/000',
    'tile/data/000',
    'tile/0/ 000',
    'tile/0/000 ',
    'tile/0/٠٠٠',
    'tile/0/x999/x999/x999/x999/x999/x999/999',
  ])('%j', (p) => {
    expect(parseTilePath(p)).toBeNull();
  });
});

describe('vectors: tiles for a tree size', () => {
  test.each(vectors.tiles_for_tree_size)('size $tree_size', (v) => {
    const s = v.tree_size;
    const top = topLevel(s);
    // Full tiles per level, for every level with a hash.
    const full = Array.from({ length: top + 1 }, (_, l) => Math.floor(hashesAtLevel(l, s) / TILE_WIDTH));
    expect(full).toEqual(v.full_tiles_per_level);
    // Partial tiles: one per level with a non-zero partial width.
    const partials: string[] = [];
    for (let l = 0; l <= top; l++) {
      const w = partialWidth(l, s);
      if (w > 0) partials.push(formatTilePath({ level: l, index: full[l]!, width: w }));
    }
    expect(partials).toEqual(v.partial_tile_paths);
    // The bundle holding the last entry.
    const last = Math.floor((s - 1) / TILE_WIDTH);
    const bundle = formatTilePath({ level: ENTRIES_LEVEL, index: last, width: tileWidthInTree(ENTRIES_LEVEL, last, s) });
    expect([bundle]).toEqual(v.partial_or_last_bundle_paths);

    // The same set from changedTiles(0, s): every tile the tree implies, each once.
    const all = changedTiles(0, s).map(formatTilePath);
    expect(new Set(all).size).toBe(all.length);
    const fullCount = full.reduce((a, b) => a + b, 0);
    const bundles = Math.ceil(s / TILE_WIDTH);
    expect(all.length).toBe(fullCount + partials.length + bundles);
    for (const p of [...partials, bundle]) expect(all).toContain(p);
    expect(all.filter((p) => !p.includes('.p/') && !p.startsWith('tile/entries/')).length).toBe(fullCount);
  });
});

describe('tree-size arithmetic', () => {
  test('topLevel', () => {
    expect(topLevel(0)).toBe(-1);
    expect(topLevel(1)).toBe(0);
    expect(topLevel(255)).toBe(0);
    expect(topLevel(256)).toBe(1);
    expect(topLevel(65535)).toBe(1);
    expect(topLevel(65536)).toBe(2);
    expect(topLevel(70000)).toBe(2);
    expect(topLevel(2 ** 48)).toBe(6);
    expect(topLevel(Number.MAX_SAFE_INTEGER)).toBe(6);
  });

  test('partialWidth and tileWidthInTree against their definitions', () => {
    const rand = prng(11);
    const sizes = [0, 1, 255, 256, 257, 65535, 65536, 65537, 70000, 2 ** 40 + 5, Number.MAX_SAFE_INTEGER];
    for (let i = 0; i < 200; i++) sizes.push(randInt(rand, 0, 2 ** randInt(rand, 1, 53)));
    for (const s of sizes) {
      for (let l = 0; l <= 7; l++) {
        const count = Math.floor(s / 256 ** l);
        expect(hashesAtLevel(l, s)).toBe(count);
        expect(partialWidth(l, s)).toBe(count % 256);
        const lastTile = Math.floor(count / 256);
        if (count > 0) {
          expect(tileWidthInTree(l, Math.floor((count - 1) / 256), s)).toBe(count % 256 || 256);
          if (lastTile > 0) expect(tileWidthInTree(l, lastTile - 1, s)).toBe(256);
        }
        expect(tileWidthInTree(l, Math.ceil(count / 256), s)).toBe(0);
      }
      expect(tileWidthInTree(ENTRIES_LEVEL, 0, s)).toBe(Math.min(s, 256));
    }
  });

  test('the full tile is 8192 bytes and levels run to 63', () => {
    expect(FULL_TILE_BYTES).toBe(8192);
    expect(MAX_LEVEL).toBe(63);
  });
});

describe('changedTiles(old, new)', () => {
  /** Every tile and width a tree of size s implies (full and partial, with bundles). */
  function tileSet(s: number): Map<string, number> {
    const m = new Map<string, number>();
    for (let level = ENTRIES_LEVEL; level <= topLevel(s); level++) {
      const count = hashesAtLevel(level === ENTRIES_LEVEL ? 0 : level, s);
      for (let n = 0; n * 256 < count; n++) m.set(`${level}/${n}`, Math.min(256, count - n * 256));
    }
    return m;
  }

  test('is exactly the tiles whose contents differ between the two trees', () => {
    const rand = prng(3);
    const pairs: [number, number][] = [
      [0, 0],
      [0, 1],
      [1, 1],
      [255, 256],
      [256, 257],
      [256, 512],
      [65535, 65536],
      [1000, 70000],
      [70000, 69999],
    ];
    for (let i = 0; i < 120; i++) {
      const a = randInt(rand, 0, 200000);
      pairs.push([a, a + randInt(rand, 0, i % 2 ? 600 : 100000)]);
    }
    for (const [a, b] of pairs) {
      const before = tileSet(a);
      const after = tileSet(b);
      const want = b > a ? [...after].filter(([k, w]) => before.get(k) !== w).map(([k]) => k) : [];
      const got = changedTiles(a, b);
      expect(got.map((t) => `${t.level}/${t.index}`).sort()).toEqual(want.sort());
      for (const t of got) expect(t.width).toBe(after.get(`${t.level}/${t.index}`));
    }
  });
});
