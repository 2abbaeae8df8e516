/**
 * The dedup table: leafHash -> leafIndex by open addressing with linear probing, living in
 * the mapped file: lookups and inserts compare and write slots in place (on the plain backend
 * through one slot's scratch buffer), and nothing but scratch buffers lives in the JS heap.
 *
 * A leaf hash is SHA-256 output, so its own first 6 bytes are a uniform hash: the home slot is
 * that 48-bit number modulo the capacity. Slot s sits in bucket floor(s / 12) at position
 * s % 12 (see layout.ts); probing walks s, s+1, ... and wraps at the end.
 *
 * Semantics: the smallest index wins. Appending a duplicate keeps the original index, and a
 * replay that offers a hash already present with a larger index keeps the smaller one.
 */
import type { MappedFile } from '../../native/index.js';
import { BUCKET_SIZE, HASH_SIZE, SLOT_SIZE, SLOTS_PER_BUCKET, TABLE_OFFSET } from './layout.js';

/** What insert() found. */
export const InsertResult = {
  /** The hash was absent: a slot was filled. */
  inserted: 0,
  /** The same hash with the same index was already there (a replay). */
  same: 1,
  /** The hash was there with a smaller index, which is kept (a duplicate append). */
  keptSmaller: 2,
  /** The hash was there with a larger index, which was replaced by the smaller one. */
  replacedLarger: 3,
} as const;
export type InsertResult = (typeof InsertResult)[keyof typeof InsertResult];

/** Number of problems check() lists before it only counts. */
const MAX_PROBLEMS = 20;

export interface TableCheck {
  entries: number;
  problems: string[];
  problemCount: number;
}

export class DedupTable {
  readonly mf: MappedFile;
  readonly bucketCount: number;
  readonly capacity: number;
  /** The bucket of the slot the last insert() found or filled. */
  lastBucket = 0;
  /**
   * Whether slots are compared and written in place (on the mapping: nothing is copied out of
   * it), or through #slot (plain backend: one system call per slot read or written).
   */
  readonly #inPlace: boolean;
  #slot = new Uint8Array(SLOT_SIZE);
  #slotView = new DataView(this.#slot.buffer);
  /** A hash read out of a slot (check() only). */
  #hash = new Uint8Array(HASH_SIZE);
  #bucket = new Uint8Array(BUCKET_SIZE);
  #bucketView = new DataView(this.#bucket.buffer);

  constructor(mf: MappedFile, bucketCount: number) {
    this.mf = mf;
    this.bucketCount = bucketCount;
    this.capacity = bucketCount * SLOTS_PER_BUCKET;
    this.#inPlace = mf.backend === 'mmap';
  }

  /** The home slot of the hash at key[keyOffset]. */
  home(key: Uint8Array, keyOffset: number): number {
    const lo = (key[keyOffset]! | (key[keyOffset + 1]! << 8) | (key[keyOffset + 2]! << 16) | (key[keyOffset + 3]! << 24)) >>> 0;
    const hi = key[keyOffset + 4]! | (key[keyOffset + 5]! << 8);
    return (hi * 0x1_0000_0000 + lo) % this.capacity;
  }

  slotOffset(slot: number): number {
    const bucket = Math.floor(slot / SLOTS_PER_BUCKET);
    return TABLE_OFFSET + bucket * BUCKET_SIZE + (slot - bucket * SLOTS_PER_BUCKET) * SLOT_SIZE;
  }

  /**
   * The stored leafIndex + 1 of the slot at offset (0 = empty). On the mapping it is read in
   * place; on the plain backend, where every access is a system call, the whole slot is read
   * into #slot at once, for #matches() to compare right after.
   */
  #stored(offset: number): number {
    if (!this.#inPlace) {
      this.mf.readInto(offset, this.#slot, 0, SLOT_SIZE);
      return this.#slotView.getUint32(HASH_SIZE, true) + this.#slotView.getUint32(HASH_SIZE + 4, true) * 0x1_0000_0000;
    }
    // Two u32 reads, not readU64: a damaged slot above 2^53 reads as a large index that check()
    // reports, rather than throwing from a lookup.
    return this.mf.readU32(offset + HASH_SIZE) + this.mf.readU32(offset + HASH_SIZE + 4) * 0x1_0000_0000;
  }

  /** Whether the slot at offset (just read by #stored) holds the hash at key[keyOffset]. */
  #matches(offset: number, key: Uint8Array, keyOffset: number): boolean {
    if (this.#inPlace) return this.mf.equals(offset, key, keyOffset, HASH_SIZE);
    const s = this.#slot;
    for (let k = 0; k < HASH_SIZE; k++) if (s[k] !== key[keyOffset + k]) return false;
    return true;
  }

  /**
   * Fills the slot at offset: the hash first, then leafIndex + 1, whose nonzero value is what
   * makes the slot occupied. A process killed between the two leaves an empty slot (index 0)
   * that the next insert overwrites; a slot never straddles a sector (see layout.ts), so a power
   * loss too leaves it all old or all new. (On the plain backend: one 40-byte pwrite.)
   */
  #fill(offset: number, key: Uint8Array, keyOffset: number, index: number): void {
    const v = index + 1;
    const lo = v >>> 0;
    if (this.#inPlace) {
      this.mf.writeBytes(offset, key, keyOffset, HASH_SIZE);
      this.mf.writeU64(offset + HASH_SIZE, v);
      return;
    }
    this.#slot.set(key.subarray(keyOffset, keyOffset + HASH_SIZE), 0);
    this.#slotView.setUint32(HASH_SIZE, lo, true);
    this.#slotView.setUint32(HASH_SIZE + 4, (v - lo) / 0x1_0000_0000, true);
    this.mf.writeBytes(offset, this.#slot, 0, SLOT_SIZE);
  }

  /** The leaf index stored for the hash at key[keyOffset], or -1. */
  lookup(key: Uint8Array, keyOffset = 0): number {
    const slot = this.home(key, keyOffset);
    let bucket = Math.floor(slot / SLOTS_PER_BUCKET);
    let pos = slot - bucket * SLOTS_PER_BUCKET;
    for (let probes = 0; probes < this.capacity; probes++) {
      const offset = TABLE_OFFSET + bucket * BUCKET_SIZE + pos * SLOT_SIZE;
      const stored = this.#stored(offset);
      if (stored === 0) return -1;
      if (this.#matches(offset, key, keyOffset)) return stored - 1;
      if (++pos === SLOTS_PER_BUCKET) {
        pos = 0;
        if (++bucket === this.bucketCount) bucket = 0;
      }
    }
    return -1;
  }

  /**
   * Inserts hash -> index, the smallest index winning. The caller keeps the load factor below
   * 1 (it grows the table first), so an empty slot always exists.
   */
  insert(key: Uint8Array, keyOffset: number, index: number): InsertResult {
    const slot = this.home(key, keyOffset);
    let bucket = Math.floor(slot / SLOTS_PER_BUCKET);
    let pos = slot - bucket * SLOTS_PER_BUCKET;
    for (let probes = 0; probes < this.capacity; probes++) {
      const offset = TABLE_OFFSET + bucket * BUCKET_SIZE + pos * SLOT_SIZE;
      const stored = this.#stored(offset);
      this.lastBucket = bucket;
      if (stored === 0) {
        this.#fill(offset, key, keyOffset, index);
        return InsertResult.inserted;
      }
      if (this.#matches(offset, key, keyOffset)) {
        const existing = stored - 1;
        if (existing === index) return InsertResult.same;
        if (existing < index) return InsertResult.keptSmaller;
        // Same hash: only the index changes, in one 8-byte write inside the slot's sector.
        this.mf.writeU64(offset + HASH_SIZE, index + 1);
        return InsertResult.replacedLarger;
      }
      if (++pos === SLOTS_PER_BUCKET) {
        pos = 0;
        if (++bucket === this.bucketCount) bucket = 0;
      }
    }
    throw new Error('dedup table full: the load factor check failed');
  }

  /**
   * Calls fn(bucketBytes, slotPosition, index) for every occupied slot, bucket by bucket (one
   * 512-byte read each, sequential, as rehashing wants). The bytes are reused between calls.
   */
  forEachEntry(fn: (bucket: Uint8Array, hashOffset: number, index: number, slot: number) => void): void {
    this.forEachEntryIn(0, this.bucketCount, fn);
  }

  /** forEachEntry over buckets [fromBucket, toBucket) only. */
  forEachEntryIn(fromBucket: number, toBucket: number, fn: (bucket: Uint8Array, hashOffset: number, index: number, slot: number) => void): void {
    const buf = this.#bucket;
    const dv = this.#bucketView;
    for (let b = fromBucket; b < toBucket; b++) {
      this.mf.readInto(TABLE_OFFSET + b * BUCKET_SIZE, buf, 0, BUCKET_SIZE);
      for (let p = 0; p < SLOTS_PER_BUCKET; p++) {
        const at = p * SLOT_SIZE;
        const stored = dv.getUint32(at + HASH_SIZE, true) + dv.getUint32(at + HASH_SIZE + 4, true) * 0x1_0000_0000;
        if (stored !== 0) fn(buf, at, stored - 1, b * SLOTS_PER_BUCKET + p);
      }
    }
  }

  /**
   * Inserts every entry of buckets [fromBucket, toBucket) into `target` (a table of another
   * size), the smallest index winning there as always. Returns the entries copied.
   */
  copyInto(target: DedupTable, fromBucket: number, toBucket: number): number {
    let copied = 0;
    this.forEachEntryIn(fromBucket, toBucket, (bytes, at, index) => {
      target.insert(bytes, at, index);
      copied++;
    });
    return copied;
  }

  /**
   * Full scan for corruption: every index below `indexLimit`, no all-zero hash, the padding
   * of every bucket zero, and every entry reachable from its home slot without crossing an
   * empty slot (a flipped hash byte usually breaks that). O(capacity).
   */
  check(indexLimit: number): TableCheck {
    const problems: string[] = [];
    let problemCount = 0;
    const problem = (msg: string): void => {
      problemCount++;
      if (problems.length < MAX_PROBLEMS) problems.push(msg);
    };
    const cap = this.capacity;
    // Find an empty slot to start from, so that every run of occupied slots is seen whole.
    let start = -1;
    for (let s = 0; s < cap; s++) {
      if (this.#stored(this.slotOffset(s)) === 0) {
        start = s;
        break;
      }
    }
    if (start < 0) {
      problem('no empty slot: table is full');
      return { entries: cap, problems, problemCount };
    }
    let entries = 0;
    let runStart = -1;
    const zero = new Uint8Array(HASH_SIZE);
    for (let k = 1; k <= cap; k++) {
      const s = (start + k) % cap;
      const offset = this.slotOffset(s);
      const stored = this.#stored(offset);
      if (stored === 0) {
        runStart = -1;
        continue;
      }
      entries++;
      if (runStart < 0) runStart = s;
      const index = stored - 1;
      if (!Number.isSafeInteger(index) || index >= indexLimit) problem(`slot ${s}: leaf index ${index} is beyond ${indexLimit}`);
      if (this.mf.equals(offset, zero, 0, HASH_SIZE)) problem(`slot ${s}: all-zero leaf hash`);
      this.mf.readInto(offset, this.#hash, 0, HASH_SIZE);
      const home = this.home(this.#hash, 0);
      const distance = (s - home + cap) % cap;
      const runLength = (s - runStart + cap) % cap;
      if (distance > runLength) problem(`slot ${s}: unreachable from its home slot ${home} (hash bytes damaged?)`);
    }
    const pad = new Uint8Array(BUCKET_SIZE - SLOTS_PER_BUCKET * SLOT_SIZE);
    for (let b = 0; b < this.bucketCount; b++) {
      const at = TABLE_OFFSET + b * BUCKET_SIZE + SLOTS_PER_BUCKET * SLOT_SIZE;
      if (!this.mf.equals(at, pad)) problem(`bucket ${b}: padding is not zero`);
    }
    return { entries, problems, problemCount };
  }
}
