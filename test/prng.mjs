/**
 * A small seeded PRNG (mulberry32) so random tests are reproducible run to run, and the same in
 * every process. Plain ESM JavaScript (types in prng.d.mts): child processes that run without a
 * TypeScript loader (test/log/crash-child.mjs) draw from it too.
 */

/** mulberry32: floats in [0, 1) from a 32-bit seed. */
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A uniform integer in [lo, hi). */
export function randInt(rand, lo, hi) {
  return lo + Math.floor(rand() * (hi - lo));
}

/** n pseudo-random bytes. */
export function randBytes(rand, n) {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(rand() * 256);
  return out;
}
