/**
 * A naive Merkle tree straight from RFC 6962 2.1 / 2.1.1 / 2.1.2, written independently of src/
 * (its own SHA-256 calls, its own split point, plain recursion), to cross-check the fast code.
 * Slow on purpose: clarity over speed.
 */
import { createHash } from 'node:crypto';

function h(...parts: Uint8Array[]): Uint8Array {
  const d = createHash('sha256');
  for (const p of parts) d.update(p);
  return new Uint8Array(d.digest());
}

/** RFC 6962 2.1: MTH({d(0)}) = SHA-256(0x00 || d(0)). */
export function naiveLeafHash(entry: Uint8Array): Uint8Array {
  return h(Uint8Array.of(0x00), entry);
}

/** RFC 6962 2.1: SHA-256(0x01 || left || right). */
export function naiveNodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return h(Uint8Array.of(0x01), left, right);
}

/** RFC 6962 2.1: k is the largest power of two smaller than n (n > 1). */
export function naiveSplit(n: number): number {
  let p = 1;
  while (p * 2 < n) p *= 2;
  return p;
}

/** MTH of D[lo:hi] for the ranges RFC 6962's recursion produces. */
export type RangeMTH = (lo: number, hi: number) => Uint8Array;

/**
 * RFC 6962 2.1 MTH(D[lo:hi]) over precomputed leaf hashes (`leaves[i]` = MTH({d(i)})).
 * MTH({}) = SHA-256().
 */
export function naiveMTH(leaves: readonly Uint8Array[], lo = 0, hi = leaves.length): Uint8Array {
  const n = hi - lo;
  if (n === 0) return h();
  if (n === 1) return leaves[lo]!;
  const k = naiveSplit(n);
  return naiveNodeHash(naiveMTH(leaves, lo, lo + k), naiveMTH(leaves, lo + k, hi));
}

/** MTH over leaf hashes, as a RangeMTH (memoized: the values never change). */
export function mthOverLeaves(leaves: readonly Uint8Array[]): RangeMTH {
  const memo = new Map<string, Uint8Array>();
  return (lo, hi) => {
    const key = `${lo},${hi}`;
    let v = memo.get(key);
    if (!v) memo.set(key, (v = naiveMTH(leaves, lo, hi)));
    return v;
  };
}

/**
 * MTH over a virtual tree whose perfect subtrees are given by `perfect(height, index)`: the
 * RFC 6962 recursion, stopping at aligned power-of-two ranges. Lets tests reach sizes near 2^53.
 */
export function mthOverPerfect(perfect: (height: number, index: number) => Uint8Array): RangeMTH {
  const mth: RangeMTH = (lo, hi) => {
    const n = hi - lo;
    if (n === 0) return h();
    const isPow2 = naiveSplit(n) * 2 === n || n === 1;
    if (isPow2 && lo % n === 0) return perfect(Math.log2(n), lo / n);
    const k = naiveSplit(n);
    return naiveNodeHash(mth(lo, lo + k), mth(lo + k, hi));
  };
  return mth;
}

/** RFC 6962 2.1.1 PATH(m, D[lo:hi]), leaf side first. */
export function naivePath(m: number, mth: RangeMTH, lo: number, hi: number): Uint8Array[] {
  const n = hi - lo;
  if (n === 1) return [];
  const k = naiveSplit(n);
  if (m < k) return [...naivePath(m, mth, lo, lo + k), mth(lo + k, hi)];
  return [...naivePath(m - k, mth, lo + k, hi), mth(lo, lo + k)];
}

/** RFC 6962 2.1.2 SUBPROOF(m, D[lo:hi], b). */
function naiveSubproof(m: number, mth: RangeMTH, lo: number, hi: number, b: boolean): Uint8Array[] {
  const n = hi - lo;
  if (m === n) return b ? [] : [mth(lo, hi)];
  const k = naiveSplit(n);
  if (m <= k) return [...naiveSubproof(m, mth, lo, lo + k, b), mth(lo + k, hi)];
  return [...naiveSubproof(m - k, mth, lo + k, hi, false), mth(lo, lo + k)];
}

/** RFC 6962 2.1.2 PROOF(m, D[n]) = SUBPROOF(m, D[n], true); empty for m = 0. */
export function naiveConsistency(m: number, n: number, mth: RangeMTH): Uint8Array[] {
  if (m === 0) return [];
  return naiveSubproof(m, mth, 0, n, true);
}

const same = (a: Uint8Array, b: Uint8Array) => Buffer.compare(a, b) === 0;

/**
 * Rebuilds the root of a size-n tree from a leaf and an inclusion proof by walking PATH(m, D[n])'s
 * recursion (the shape of the size-n tree), consuming the proof from its root-side end. Null
 * when the proof has the wrong number of elements.
 */
export function naiveRootFromPath(m: number, n: number, leaf: Uint8Array, proof: readonly Uint8Array[]): Uint8Array | null {
  if (!(m >= 0 && m < n)) return null;
  let end = proof.length;
  const rebuild = (m: number, n: number): Uint8Array | null => {
    if (n === 1) return leaf;
    if (end === 0) return null;
    const sib = proof[--end]!;
    const k = naiveSplit(n);
    const sub = m < k ? rebuild(m, k) : rebuild(m - k, n - k);
    if (!sub) return null;
    return m < k ? naiveNodeHash(sub, sib) : naiveNodeHash(sib, sub);
  };
  const r = rebuild(m, n);
  return r !== null && end === 0 ? r : null;
}

/** A naive inclusion verifier built on naiveRootFromPath. */
export function naiveVerifyInclusion(m: number, n: number, leaf: Uint8Array, proof: readonly Uint8Array[], root: Uint8Array): boolean {
  if (proof.some((p) => p.length !== 32)) return false;
  const r = naiveRootFromPath(m, n, leaf, proof);
  return r !== null && same(r, root);
}

/**
 * Rebuilds the old and new roots from a consistency proof by walking SUBPROOF(m, D[n], true)'s
 * recursion, consuming the proof from its root-side end. `oldRoot` is needed only where the
 * recursion reaches the whole old tree as one subtree (m a power of two: SUBPROOF(m, D[m], true)
 * contributes nothing). Null when the proof has the wrong number of elements.
 */
export function naiveRootsFromSubproof(
  m: number,
  n: number,
  oldRoot: Uint8Array,
  proof: readonly Uint8Array[],
): { oldRoot: Uint8Array; newRoot: Uint8Array } | null {
  if (!(m >= 1 && m <= n)) return null;
  let end = proof.length;
  const rebuild = (m: number, n: number, b: boolean): { o: Uint8Array; n: Uint8Array } | null => {
    if (m === n) {
      if (b) return { o: oldRoot, n: oldRoot };
      if (end === 0) return null;
      const x = proof[--end]!;
      return { o: x, n: x };
    }
    if (end === 0) return null;
    const sib = proof[--end]!;
    const k = naiveSplit(n);
    if (m <= k) {
      const r = rebuild(m, k, b);
      return r && { o: r.o, n: naiveNodeHash(r.n, sib) };
    }
    const r = rebuild(m - k, n - k, false);
    return r && { o: naiveNodeHash(sib, r.o), n: naiveNodeHash(sib, r.n) };
  };
  const r = rebuild(m, n, true);
  return r !== null && end === 0 ? { oldRoot: r.o, newRoot: r.n } : null;
}

/** A naive consistency verifier built on naiveRootsFromSubproof. */
export function naiveVerifyConsistency(m: number, n: number, oldRoot: Uint8Array, newRoot: Uint8Array, proof: readonly Uint8Array[]): boolean {
  if (!(m >= 0 && m <= n) || proof.some((p) => p.length !== 32)) return false;
  // RFC 6962 2.1.2 defines proofs for 0 < m < n; the empty tree (root SHA-256()) is trivially
  // consistent with every tree, and a tree only with itself.
  if (m === 0) return proof.length === 0 && same(oldRoot, h()) && (n > 0 || same(newRoot, h()));
  const r = naiveRootsFromSubproof(m, n, oldRoot, proof);
  return r !== null && same(r.oldRoot, oldRoot) && same(r.newRoot, newRoot);
}
