/** Trees of the vectors' entries (`entry-<i>`) for proof tests, built with the naive hashes. */
import type { NodeReader } from '../../src/merkle/proof.js';
import { entry } from '../vectors.js';
import { naiveLeafHash, naiveNodeHash } from './naive.js';

const leafCache: Uint8Array[] = [];

/** The leaf hashes of entry-0 .. entry-(n-1). */
export function leafHashes(n: number): Uint8Array[] {
  for (let i = leafCache.length; i < n; i++) leafCache.push(naiveLeafHash(entry(i)));
  return leafCache.slice(0, n);
}

/** levels[h][i] = the perfect subtree of 2^h leaves starting at i * 2^h. */
export function perfectLevels(leaves: readonly Uint8Array[]): Uint8Array[][] {
  const levels: Uint8Array[][] = [leaves.slice()];
  for (let lv = levels[0]!; lv.length > 1; ) {
    const up: Uint8Array[] = [];
    for (let i = 0; i + 1 < lv.length; i += 2) up.push(naiveNodeHash(lv[i]!, lv[i + 1]!));
    levels.push(up);
    lv = up;
  }
  return levels;
}

/**
 * A NodeReader over perfect levels that enforces the NodeReader contract: it is only asked for
 * subtrees entirely inside the tree of `size` leaves being proved.
 */
export function levelReader(levels: readonly Uint8Array[][], size: number): NodeReader & { calls: number } {
  const reader = ((height: number, index: number) => {
    reader.calls++;
    if (!(Number.isInteger(height) && Number.isInteger(index) && height >= 0 && index >= 0)) {
      throw new Error(`reader asked for bad node (${height}, ${index})`);
    }
    if ((index + 1) * 2 ** height > size) {
      throw new Error(`reader asked for node (${height}, ${index}) outside a tree of size ${size}`);
    }
    const n = levels[height]?.[index];
    if (!n) throw new Error(`node (${height}, ${index}) not in fixture`);
    return n;
  }) as NodeReader & { calls: number };
  reader.calls = 0;
  return reader;
}
