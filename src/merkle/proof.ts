/**
 * RFC 6962 / RFC 9162 inclusion and consistency proofs over any store of perfect subtree
 * hashes, and their verifiers. Pure: no I/O.
 *
 * Sizes and indexes are JS numbers (exact to 2^53), so this file does arithmetic with
 * multiplication and division, never with the 32-bit bitwise operators.
 */
import { EMPTY_ROOT, equalHashes, nodeHash, splitPoint } from './hash.js';

/**
 * Returns the hash of the perfect subtree of 2^height leaves starting at leaf index * 2^height.
 * The contract: it is only asked for subtrees entirely inside the tree being proved.
 */
export type NodeReader = (height: number, index: number) => Uint8Array;

/** Largest h with 2^h dividing lo and lo + 2^h <= hi. */
function largestAlignedPower(lo: number, hi: number): number {
  let size = 1;
  while (lo % (size * 2) === 0 && lo + size * 2 <= hi) size *= 2;
  return size;
}

/**
 * MTH(D[lo:hi]) for the ranges RFC 6962's recursion produces (lo a multiple of a power of two
 * at least hi - lo): the range splits into perfect subtrees of descending size, folded from
 * the right, exactly like MTH's own recursion.
 */
export function rangeHash(lo: number, hi: number, node: NodeReader, memo?: ProofMemo): Uint8Array {
  if (hi <= lo) throw new Error(`rangeHash: empty range [${lo}, ${hi})`);
  // A perfect subtree is one node: no hashing, nothing to remember.
  const span = hi - lo;
  if ((span & (span - 1)) === 0 && span <= 0x40000000 && lo % span === 0) return node(Math.log2(span), lo / span);
  const key = memo ? `${lo}:${hi}` : '';
  const known = memo?.ranges.get(key);
  if (known) return known;
  const parts: Uint8Array[] = [];
  while (lo < hi) {
    const size = largestAlignedPower(lo, hi);
    parts.push(node(Math.log2(size), lo / size));
    lo += size;
  }
  let h = parts[parts.length - 1]!;
  for (let j = parts.length - 2; j >= 0; j--) h = nodeHash(parts[j]!, h);
  // Only ranges that needed hashing are worth remembering.
  if (memo && parts.length > 1) memo.ranges.set(key, h);
  return h;
}

/** Entries per shared proof prefix: one level-0 tile. */
const PREFIX_BLOCK = 256;

/**
 * Work shared by the proofs of one tree size: the hashes of imperfect ranges (the right edge),
 * and, per 256-entry block, the root-side part of the inclusion path every entry of the block
 * has in common. Valid only for one tree size.
 */
export class ProofMemo {
  readonly ranges = new Map<string, Uint8Array>();
  readonly prefixes = new Map<number, { siblings: Uint8Array[]; lo: number; hi: number }>();
}

/** MTH of the first `size` leaves. */
export function treeHash(size: number, node: NodeReader): Uint8Array {
  return size === 0 ? EMPTY_ROOT : rangeHash(0, size, node);
}

/** RFC 6962 2.1.1 PATH(m, D[n]), ordered leaf-side first. */
export function inclusionProof(index: number, size: number, node: NodeReader, memo?: ProofMemo): Uint8Array[] {
  if (!(index >= 0 && index < size)) throw new Error(`inclusionProof: index ${index} not in tree of size ${size}`);
  let siblings: Uint8Array[] = [];
  let lo = 0;
  let hi = size;
  const block = Math.floor(index / PREFIX_BLOCK);
  const blockLo = block * PREFIX_BLOCK;
  const shared = memo?.prefixes.get(block);
  if (shared) {
    siblings = shared.siblings.slice();
    lo = shared.lo;
    hi = shared.hi;
  }
  let remembered = !!shared || !memo;
  while (hi - lo > 1) {
    if (!remembered && lo >= blockLo && hi <= blockLo + PREFIX_BLOCK) {
      // From here down the path depends on the entry; above, the whole block shares it.
      memo!.prefixes.set(block, { siblings: siblings.slice(), lo, hi });
      remembered = true;
    }
    const k = splitPoint(hi - lo);
    if (index < lo + k) {
      siblings.push(rangeHash(lo + k, hi, node, memo));
      hi = lo + k;
    } else {
      siblings.push(rangeHash(lo, lo + k, node));
      lo += k;
    }
  }
  // Collected root-side first; the proof lists the leaf's sibling first.
  return siblings.reverse();
}

/** RFC 6962 2.1.2 PROOF(m, D[n]) = SUBPROOF(m, D[n], true). */
export function consistencyProof(oldSize: number, newSize: number, node: NodeReader): Uint8Array[] {
  if (!(oldSize >= 0 && oldSize <= newSize)) {
    throw new Error(`consistencyProof: sizes ${oldSize} -> ${newSize}`);
  }
  if (oldSize === 0 || oldSize === newSize) return [];
  const out: Uint8Array[] = [];
  let lo = 0;
  let hi = newSize;
  let m = oldSize;
  let complete = true;
  // Iterative SUBPROOF: each step appends the sibling after the deeper part, so collect
  // root-side first and reverse at the end.
  for (;;) {
    const n = hi - lo;
    if (m === n) {
      if (!complete) out.push(rangeHash(lo, hi, node));
      break;
    }
    const k = splitPoint(n);
    if (m <= k) {
      out.push(rangeHash(lo + k, hi, node));
      hi = lo + k;
    } else {
      out.push(rangeHash(lo, lo + k, node));
      lo += k;
      m -= k;
      complete = false;
    }
  }
  return out.reverse();
}

const isOdd = (x: number) => x % 2 === 1;
const half = (x: number) => Math.floor(x / 2);
function isPowerOfTwo(x: number): boolean {
  while (x > 1 && x % 2 === 0) x /= 2;
  return x === 1;
}

/** RFC 9162 2.1.3.2: verifies an inclusion proof; returns false rather than throwing. */
export function verifyInclusion(index: number, size: number, leaf: Uint8Array, proof: readonly Uint8Array[], root: Uint8Array): boolean {
  if (!(Number.isSafeInteger(index) && Number.isSafeInteger(size) && index >= 0 && index < size)) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (p.length !== 32 || sn === 0) return false;
    if (isOdd(fn) || fn === sn) {
      r = nodeHash(p, r);
      if (!isOdd(fn)) {
        while (!isOdd(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && equalHashes(r, root);
}

/** RFC 9162 2.1.4.2: verifies a consistency proof between two tree heads. */
export function verifyConsistency(oldSize: number, newSize: number, oldRoot: Uint8Array, newRoot: Uint8Array, proof: readonly Uint8Array[]): boolean {
  if (!(Number.isSafeInteger(oldSize) && Number.isSafeInteger(newSize) && oldSize >= 0 && oldSize <= newSize)) {
    return false;
  }
  if (proof.some((p) => p.length !== 32)) return false;
  if (oldSize === newSize) return proof.length === 0 && equalHashes(oldRoot, newRoot);
  // An empty tree is consistent with any tree, and its root is fixed (RFC 6962 2.1).
  if (oldSize === 0) return proof.length === 0 && equalHashes(oldRoot, EMPTY_ROOT);
  if (proof.length === 0) return false;
  const path = [...proof];
  if (isPowerOfTwo(oldSize)) path.unshift(oldRoot);
  let fn = oldSize - 1;
  let sn = newSize - 1;
  while (isOdd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr = path[0]!;
  let sr = path[0]!;
  for (let i = 1; i < path.length; i++) {
    const c = path[i]!;
    if (sn === 0) return false;
    if (isOdd(fn) || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (!isOdd(fn)) {
        while (!isOdd(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && equalHashes(fr, oldRoot) && equalHashes(sr, newRoot);
}
