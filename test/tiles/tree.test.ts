import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, test } from 'vitest';
import { HASH_SIZE, leafHash } from '../../src/merkle/hash.js';
import { consistencyProof, inclusionProof, treeHash, verifyInclusion } from '../../src/merkle/proof.js';
import { formatEntryBundle, parseEntryBundle } from '../../src/tiles/bundle.js';
import { ENTRIES_LEVEL, TILE_WIDTH, formatTilePath, hashesAtLevel, parseTilePath, tileWidthInTree } from '../../src/tiles/layout.js';
import { ExpandedTile, MissingTileError, TileTree, nodeLocation, nodeReaderOver } from '../../src/tiles/tree.js';
import { leafHashes, levelReader, perfectLevels } from '../merkle/fixture.js';
import { naiveMTH } from '../merkle/naive.js';
import { prng, randInt } from '../prng.mjs';
import { b64, entry, toB64, toHex, vectors } from '../vectors.js';

const BIG = 70000;
const sha256hex = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const hashAt = (tile: Uint8Array, i: number) => tile.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE);

/** The tree of the vectors' 70000 entries, built once with TileTree, keeping every full tile. */
interface Built {
  tree: TileTree;
  full: Map<string, ExpandedTile>;
  fullOrder: string[];
  rootsAt: Map<number, Uint8Array>;
}

function build(checkAt: readonly number[]): Built {
  const tree = new TileTree();
  const full = new Map<string, ExpandedTile>();
  const fullOrder: string[] = [];
  tree.onFull = (t) => {
    const key = `${t.level}/${t.index}`;
    expect(full.has(key)).toBe(false);
    expect(t.full).toBe(true);
    full.set(key, t);
    fullOrder.push(key);
  };
  const rootsAt = new Map<number, Uint8Array>();
  const want = new Set(checkAt);
  if (want.has(0)) rootsAt.set(0, tree.root());
  for (let i = 0; i < BIG; i++) {
    tree.append(leafHash(entry(i)));
    if (want.has(i + 1)) rootsAt.set(i + 1, Uint8Array.from(tree.root()));
  }
  return { tree, full, fullOrder, rootsAt };
}

/** Tile bytes of the tree at size 70000, by path (full tiles and the right edge's partial ones). */
function tileBytes(b: Built, level: number, index: number, width: number): Uint8Array {
  const t = b.full.get(`${level}/${index}`) ?? b.tree.lookup(level, index);
  if (!t) throw new Error(`no tile ${level}/${index}`);
  return t.bytes(width);
}

const rand = prng(20240601);
const randomSizes: number[] = [];
for (let i = 0; i < 40; i++) randomSizes.push(randInt(rand, 601, BIG + 1));
const namedSizes = [...new Set([0, 1, 255, 256, 257, 511, 512, 513, 1000, 65535, 65536, 65537, 69999, BIG, ...vectors.roots.map((r) => r.size)])];

let b: Built;
let leaves: Uint8Array[];
beforeAll(() => {
  b = build([...namedSizes, ...randomSizes]);
  leaves = leafHashes(BIG);
});

describe('TileTree over the vectors tree of 70000 entries', () => {
  test.each(vectors.roots)('root at size $size equals Go', (v) => {
    expect(toHex(b.rootsAt.get(v.size)!)).toBe(v.root_hex);
  });

  test('empty tree root', () => {
    expect(toHex(new TileTree().root())).toBe(vectors.empty_tree_root.root_hex);
    expect(toHex(b.rootsAt.get(0)!)).toBe(vectors.empty_tree_root.root_hex);
  });

  test.each(vectors.tile_contents_tree_70000)('tile contents $path', (v) => {
    const c = parseTilePath(v.path)!;
    expect(c).not.toBeNull();
    expect(c.width).toBe(tileWidthInTree(c.level, c.index, BIG));
    let body: Uint8Array;
    if (c.level === ENTRIES_LEVEL) {
      const entries = Array.from({ length: c.width }, (_, i) => entry(c.index * TILE_WIDTH + i));
      body = formatEntryBundle(entries);
      // python_cross_checks: each bundle entry hashes to the matching level-0 tile hash, and the
      // bundle is fully consumed.
      const parsed = parseEntryBundle(body, c.width);
      const l0 = tileBytes(b, 0, c.index, c.width);
      parsed.forEach((e, i) => expect(toHex(leafHash(e))).toBe(toHex(hashAt(l0, i))));
    } else {
      body = tileBytes(b, c.level, c.index, c.width);
      expect(body.length).toBe(c.width * HASH_SIZE);
      expect(toB64(hashAt(body, 0))).toBe(v.first_hash_b64);
      expect(toB64(hashAt(body, c.width - 1))).toBe(v.last_hash_b64);
    }
    expect(body.length).toBe(v.length_bytes);
    expect(sha256hex(body)).toBe(v.sha256_of_body_hex);
    expect(toHex(body.subarray(0, 16))).toBe(v.first_16_bytes_hex);
  });

  test('level-1 tile 0, hash 0 is the root of the first 256 leaves (go_self_checks)', () => {
    expect(vectors.go_self_checks.level1_tile0_hash0_equals_root_of_first_256).toBe(true);
    const l1 = tileBytes(b, 1, 0, 256);
    expect(toHex(hashAt(l1, 0))).toBe(vectors.roots.find((r) => r.size === 256)!.root_hex);
    expect(toHex(hashAt(l1, 0))).toBe(toHex(b.full.get('0/0')!.root()));
  });

  test('onFull saw every full tile once, in order, level 0 before the level it completes', () => {
    expect(b.fullOrder.length).toBe(273 + 1);
    expect(b.fullOrder.filter((k) => k.startsWith('0/'))).toEqual(Array.from({ length: 273 }, (_, i) => `0/${i}`));
    expect(b.fullOrder.indexOf('1/0')).toBe(b.fullOrder.indexOf('0/255') + 1);
  });

  test('every tile the tree implies has the hashes of the naive tree', () => {
    const levels = perfectLevels(leaves);
    for (let level = 0; hashesAtLevel(level, BIG) > 0; level++) {
      const count = hashesAtLevel(level, BIG);
      for (let n = 0; n * TILE_WIDTH < count; n++) {
        const w = tileWidthInTree(level, n, BIG);
        const want = Buffer.concat(levels[8 * level]!.slice(n * TILE_WIDTH, n * TILE_WIDTH + w));
        expect(Buffer.compare(tileBytes(b, level, n, w), want), `tile ${level}/${n}`).toBe(0);
      }
    }
  });

  test('proofs read through the tiles equal the vectors', () => {
    const reader = nodeReaderOver((level, index) => b.full.get(`${level}/${index}`) ?? b.tree.lookup(level, index));
    for (const v of vectors.inclusion_proofs) {
      expect(inclusionProof(v.leaf_index, v.tree_size, reader).map(toB64)).toEqual(v.proof_b64);
      expect(toB64(treeHash(v.tree_size, reader))).toBe(v.root_b64);
    }
    for (const v of vectors.consistency_proofs) {
      expect(consistencyProof(v.old_size, v.new_size, reader).map(toB64)).toEqual(v.proof_b64);
    }
  });

  test('the right edge alone proves the newest entries, and asks for other tiles by name', () => {
    const reader = nodeReaderOver(b.tree.lookup);
    const root = b.tree.root();
    for (const i of [BIG - 1, BIG - 50, 69888]) {
      const p = inclusionProof(i, BIG, reader);
      expect(verifyInclusion(i, BIG, leaves[i]!, p, root)).toBe(true);
    }
    // Older entries need tiles off the edge: each MissingTileError names one tile to load,
    // never one already loaded, and loading the named tiles is enough.
    const cache = new Map<string, ExpandedTile>();
    const lazy = nodeReaderOver((level, index) => cache.get(`${level}/${index}`) ?? b.tree.lookup(level, index));
    const v = vectors.inclusion_proofs.find((p) => p.leaf_index === 12345)!;
    let proof: Uint8Array[] | null = null;
    let loads = 0;
    while (!proof) {
      try {
        proof = inclusionProof(12345, BIG, lazy);
      } catch (e) {
        expect(e).toBeInstanceOf(MissingTileError);
        const { level, tile } = e as MissingTileError;
        const key = `${level}/${tile}`;
        expect(cache.has(key)).toBe(false);
        expect(b.full.has(key)).toBe(true);
        cache.set(key, b.full.get(key)!);
        loads++;
      }
    }
    expect(proof.map(toB64)).toEqual(v.proof_b64);
    expect(loads).toBeGreaterThan(0);
    expect(loads).toBeLessThanOrEqual(3);
  });
});

describe('TileTree root against a naive RFC 6962 2.1 MTH', () => {
  test('every size 0..600', () => {
    const small = leafHashes(601);
    const tree = new TileTree();
    for (let n = 0; n <= 600; n++) {
      if (n > 0) tree.append(leafHash(entry(n - 1)));
      expect(tree.size).toBe(n);
      expect(toHex(tree.root())).toBe(toHex(naiveMTH(small, 0, n)));
    }
  });

  test.each([...namedSizes.filter((s) => s > 600), ...randomSizes])('size %d', (n) => {
    expect(toHex(b.rootsAt.get(n)!)).toBe(toHex(naiveMTH(leaves, 0, n)));
  });
});

describe('TileTree.load', () => {
  // Roots at the sizes reached after appending, from the naive perfect subtrees (the fast
  // treeHash over them is checked against the naive MTH in test/merkle).
  let levels: Uint8Array[][];
  beforeAll(() => {
    levels = perfectLevels(leaves);
  });
  const sizes = [0, 1, 255, 256, 257, 1000, 65535, 65536, 65537, 69999];
  test.each(sizes)('a tree loaded at size %d from its tiles continues like the original', (size) => {
    const asked: string[] = [];
    const loaded = TileTree.load(size, (level, index, width) => {
      asked.push(formatTilePath({ level, index, width }));
      expect(width).toBe(tileWidthInTree(level, index, size));
      return Uint8Array.from(tileBytes(b, level, index, width));
    });
    // It reads exactly the right edge: one tile per level.
    const want: string[] = [];
    for (let level = 0; hashesAtLevel(level, size) > 0; level++) {
      const count = hashesAtLevel(level, size);
      const index = Math.floor((count - 1) / TILE_WIDTH);
      want.push(formatTilePath({ level, index, width: count - index * TILE_WIDTH }));
    }
    expect(asked).toEqual(want);
    expect(loaded.size).toBe(size);
    expect(toHex(loaded.root())).toBe(toHex(b.rootsAt.get(size)!));
    const fullAfter: string[] = [];
    loaded.onFull = (t) => fullAfter.push(`${t.level}/${t.index}`);
    const end = Math.min(BIG, size + 700);
    for (let i = size; i < end; i++) loaded.append(leaves[i]!);
    expect(toHex(loaded.root())).toBe(toHex(treeHash(end, levelReader(levels, end))));
    // Every tile filled after the load is full in the original too, with the same bytes.
    for (const k of fullAfter) {
      const [l, n] = k.split('/').map(Number) as [number, number];
      expect(toHex(loaded.edgeTile(l)!.index === n ? loaded.edgeTile(l)!.bytes() : tileBytes(b, l, n, 256))).toBe(toHex(tileBytes(b, l, n, 256)));
    }
  });
});

describe('TileTree.load refuses tiles that do not match the tree size', () => {
  // A short read or a stale partial tile must not become the right edge of a bigger tree: the
  // next append would land at the wrong index and the log would sign a wrong root.
  test.each([
    ['a short level-0 tile', 0, -1],
    ['a long level-0 tile', 0, +1],
    ['a short level-1 tile', 1, -1],
  ] as const)('%s', (_, badLevel, delta) => {
    const size = 1000;
    expect(() =>
      TileTree.load(size, (level, index, width) => {
        const bytes = tileBytes(b, level, index, level === badLevel ? Math.min(256, width + delta) : width);
        return level === badLevel && width + delta > 256 ? Buffer.concat([bytes, new Uint8Array(32)]) : bytes;
      }),
    ).toThrow();
  });
});

describe('ExpandedTile', () => {
  const leaves256 = leafHashes(256);
  const levels = perfectLevels(leaves256);

  test('nodes appear exactly when complete and equal the perfect subtrees', () => {
    const t = new ExpandedTile(0, 0);
    expect(t.width).toBe(0);
    for (let w = 1; w <= 256; w++) {
      t.append(leaves256[w - 1]!);
      expect(t.width).toBe(w);
      expect(t.full).toBe(w === 256);
      const got: string[] = [];
      const want: string[] = [];
      for (let s = 0; s <= 8; s++) {
        const per = 2 ** s;
        for (let p = 0; p < 256 / per; p++) {
          const n = t.node(s, p);
          got.push(n ? toHex(n) : 'null');
          want.push((p + 1) * per <= w ? toHex(levels[s]![p]!) : 'null');
        }
      }
      expect(got).toEqual(want);
    }
    expect(toHex(t.root())).toBe(toHex(naiveMTH(leaves256)));
    expect(() => t.append(leaves256[0]!)).toThrow();
  });

  test('fromHashes rebuilds the same nodes; bad lengths throw', () => {
    const bytes = Buffer.concat(leaves256.slice(0, 100));
    const t = ExpandedTile.fromHashes(0, 3, bytes);
    expect(t.level).toBe(0);
    expect(t.index).toBe(3);
    expect(t.width).toBe(100);
    expect(toHex(t.bytes())).toBe(toHex(bytes));
    expect(toHex(t.bytes(7))).toBe(toHex(bytes.subarray(0, 7 * 32)));
    expect(toHex(t.node(6, 0)!)).toBe(toHex(levels[6]![0]!));
    expect(t.node(6, 1)).toBeNull();
    expect(() => t.bytes(101)).toThrow();
    expect(() => t.root()).toThrow();
    expect(() => ExpandedTile.fromHashes(0, 0, new Uint8Array(33))).toThrow();
    expect(() => ExpandedTile.fromHashes(0, 0, new Uint8Array(257 * 32))).toThrow();
    expect(ExpandedTile.fromHashes(0, 0, new Uint8Array(0)).width).toBe(0);
  });

  test('views handed out stay valid while the tile grows', () => {
    const t = new ExpandedTile(0, 0);
    t.append(leaves256[0]!);
    t.append(leaves256[1]!);
    const n = t.node(1, 0)!;
    const copy = toHex(n);
    for (let i = 2; i < 256; i++) t.append(leaves256[i]!);
    expect(toHex(n)).toBe(copy);
  });
});

describe('nodeLocation and nodeReaderOver', () => {
  test('node (h, i) lives in tile (h div 8, i div 2^(8 - h mod 8)) at sub-height h mod 8', () => {
    expect(nodeLocation(0, 0)).toEqual({ level: 0, tile: 0, s: 0, p: 0 });
    expect(nodeLocation(0, 257)).toEqual({ level: 0, tile: 1, s: 0, p: 1 });
    expect(nodeLocation(3, 33)).toEqual({ level: 0, tile: 1, s: 3, p: 1 });
    expect(nodeLocation(8, 5)).toEqual({ level: 1, tile: 0, s: 0, p: 5 });
    expect(nodeLocation(12, 16)).toEqual({ level: 1, tile: 1, s: 4, p: 0 });
    expect(nodeLocation(16, 0)).toEqual({ level: 2, tile: 0, s: 0, p: 0 });
    expect(nodeLocation(40, 2 ** 12 + 3)).toEqual({ level: 5, tile: 16, s: 0, p: 3 });
  });

  test('a reader over an incomplete node reports the tile to load', () => {
    const t = ExpandedTile.fromHashes(0, 0, Buffer.concat(leafHashes(10)));
    const reader = nodeReaderOver((level, index) => (level === 0 && index === 0 ? t : null));
    expect(toHex(reader(3, 0))).toBe(toHex(naiveMTH(leafHashes(8))));
    expect(() => reader(3, 1)).toThrow(MissingTileError);
    expect(() => reader(0, 256)).toThrow(MissingTileError);
    expect(() => reader(8, 0)).toThrow(MissingTileError);
  });
});

test('vectors: leaf hashes are the level-0 tile hashes', () => {
  for (const v of vectors.leaf_hashes) {
    const w = tileWidthInTree(0, Math.floor(v.index / 256), BIG);
    const t = tileBytes(b, 0, Math.floor(v.index / 256), w);
    expect(toB64(hashAt(t, v.index % 256))).toBe(v.leaf_hash_b64);
    expect(b64(v.leaf_hash_b64)).toHaveLength(32);
  }
});
