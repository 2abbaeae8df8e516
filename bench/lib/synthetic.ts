/**
 * Deterministic synthetic inputs for the benchmarks, so runs are comparable run to run.
 * (test/prng.mjs holds the same mulberry32 for the tests; the benchmarks compile on their own,
 * without test/, so they keep this copy.)
 */

/** murmur3's 32-bit finaliser: a good bijective mix. */
function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Fills out with pseudo-random 32-byte "leaf hashes" of leaves [first, first + count), cheaply. */
export function fillHashes(out: Uint8Array, first: number, count: number): void {
  const dv = new DataView(out.buffer, out.byteOffset, count * 32);
  for (let k = 0; k < count; k++) {
    const i = first + k;
    const a = fmix(i ^ 0x9e3779b9);
    const b = fmix((i / 0x1_0000_0000) ^ a);
    for (let w = 0; w < 8; w++) dv.setUint32(k * 32 + w * 4, fmix(a + Math.imul(w + 1, b) + w), true);
  }
}

/** mulberry32: floats in [0, 1) from a 32-bit seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
