import { createHash } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { EMPTY_ROOT, HASH_SIZE, equalHashes, leafHash, leafHashLatin1, nodeHash, nodeHashInto, sha256, splitPoint } from '../../src/merkle/hash.js';
import { b64, entry, hex, toHex, vectors } from '../vectors.js';
import { naiveLeafHash, naiveNodeHash } from './naive.js';
import { prng, randBytes, randInt } from '../prng.mjs';

describe('vectors: empty tree and leaf hashes', () => {
  test('empty root = SHA-256("")', () => {
    expect(toHex(EMPTY_ROOT)).toBe(vectors.empty_tree_root.root_hex);
    expect(Buffer.from(EMPTY_ROOT).toString('base64')).toBe(vectors.empty_tree_root.root_b64);
    expect(vectors.empty_tree_root.size).toBe(0);
  });

  test.each(vectors.leaf_hashes)('leaf $index ($entry_ascii)', (v) => {
    expect(v.entry_ascii).toBe(`entry-${v.index}`);
    const h = leafHash(entry(v.index));
    expect(toHex(h)).toBe(v.leaf_hash_hex);
    expect(toHex(h)).toBe(toHex(b64(v.leaf_hash_b64)));
  });

  test('node hash of the first two leaves is the size-2 root', () => {
    const root2 = vectors.roots.find((r) => r.size === 2)!;
    expect(toHex(nodeHash(leafHash(entry(0)), leafHash(entry(1))))).toBe(root2.root_hex);
  });
});

describe('hash primitives agree with an independent SHA-256', () => {
  const rand = prng(1);
  test('leafHash and nodeHash over random inputs, including subarray views', () => {
    for (let i = 0; i < 200; i++) {
      const e = randBytes(rand, randInt(rand, 0, 300));
      expect(toHex(leafHash(e))).toBe(toHex(naiveLeafHash(e)));
      const buf = randBytes(rand, 100);
      const l = buf.subarray(3, 35);
      const r = buf.subarray(40, 72);
      expect(toHex(nodeHash(l, r))).toBe(toHex(naiveNodeHash(l, r)));
      // The scratch buffer must not leak state between calls: repeat with swapped inputs.
      expect(toHex(nodeHash(r, l))).toBe(toHex(naiveNodeHash(r, l)));
    }
  });

  test('results of nodeHash are independent buffers (scratch reuse does not alias)', () => {
    const a = nodeHash(leafHash(entry(0)), leafHash(entry(1)));
    const copy = Uint8Array.from(a);
    nodeHash(leafHash(entry(2)), leafHash(entry(3)));
    expect(toHex(a)).toBe(toHex(copy));
  });

  test('nodeHashInto writes H(0x01 || L || R) at the offset and nowhere else', () => {
    const src = randBytes(rand, 5 * HASH_SIZE);
    const out = new Uint8Array(4 * HASH_SIZE).fill(0xaa);
    nodeHashInto(src, HASH_SIZE, 3 * HASH_SIZE, out, 2 * HASH_SIZE);
    const want = naiveNodeHash(src.subarray(HASH_SIZE, 2 * HASH_SIZE), src.subarray(3 * HASH_SIZE, 4 * HASH_SIZE));
    expect(toHex(out.subarray(2 * HASH_SIZE, 3 * HASH_SIZE))).toBe(toHex(want));
    expect(out.subarray(0, 2 * HASH_SIZE).every((b) => b === 0xaa)).toBe(true);
    expect(out.subarray(3 * HASH_SIZE).every((b) => b === 0xaa)).toBe(true);
  });

  test('leafHashLatin1 is the leaf hash, one char a byte (every byte value, 0x80-0xff included)', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 300; i++) {
      const e = randBytes(rand, randInt(rand, 0, 100));
      const s = leafHashLatin1(e);
      expect(s.length).toBe(HASH_SIZE);
      const codes = Array.from(s, (c) => c.charCodeAt(0));
      for (const c of codes) seen.add(c);
      expect(toHex(Uint8Array.from(codes))).toBe(toHex(naiveLeafHash(e)));
      expect(toHex(leafHash(e))).toBe(toHex(naiveLeafHash(e)));
    }
    expect(seen.size).toBe(256);
  });

  test('sha256 matches node:crypto', () => {
    const d = randBytes(rand, 1000);
    expect(toHex(sha256(d))).toBe(createHash('sha256').update(d).digest('hex'));
  });

  test('equalHashes', () => {
    const a = hex('00'.repeat(32));
    expect(equalHashes(a, hex('00'.repeat(32)))).toBe(true);
    expect(equalHashes(a, hex('00'.repeat(31) + '01'))).toBe(false);
    expect(equalHashes(a, hex('00'.repeat(31)))).toBe(false);
  });
});

describe('splitPoint (RFC 6962 2.1: largest power of two strictly below n)', () => {
  test('small n', () => {
    const want: Record<number, number> = { 2: 1, 3: 2, 4: 2, 5: 4, 8: 4, 9: 8, 256: 128, 257: 256, 1000: 512, 70000: 65536 };
    for (const [n, k] of Object.entries(want)) expect(splitPoint(Number(n))).toBe(k);
  });

  test('definition holds for 2..5000 and around large powers of two', () => {
    const check = (n: number) => {
      const k = splitPoint(n);
      expect(k < n && 2 * k >= n).toBe(true);
      expect(Number.isInteger(Math.log2(k))).toBe(true);
    };
    for (let n = 2; n <= 5000; n++) check(n);
    for (const e of [31, 32, 33, 40, 52]) for (const d of [-1, 0, 1]) check(2 ** e + d);
  });

  test('n <= 1 throws', () => {
    expect(() => splitPoint(1)).toThrow();
    expect(() => splitPoint(0)).toThrow();
    expect(() => splitPoint(Number.NaN)).toThrow();
  });
});
