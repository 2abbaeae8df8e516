/**
 * The on-disk layout of the hot index file. Pure encoding and decoding: no I/O.
 *
 *   offset 0     header page (4096 bytes): fixed fields + CRC32, written once per file
 *   offset 4096  state page (4096 bytes): two commit slots (own 512-byte sectors) and the
 *                live record; the page is pinned with mlock
 *   offset 8192  dedup table: bucketCount buckets of 512 bytes, each 12 slots of 40 bytes
 *
 * All integers are little-endian. A slot is leafHash (32 bytes) then leafIndex + 1 (u64):
 * 0 marks an empty slot. Twelve slots fill 480 bytes of a 512-byte bucket so that no slot
 * straddles a disk sector: under power loss a slot is either all old or all new (the usual
 * sector-atomicity assumption), never a new hash with an old index.
 *
 * Growth (growth.ts) builds a file of this same layout, with twice the buckets, under
 * `<index>.grow.tmp`; it is only ever read after it is complete, synced and renamed over the
 * index, and a writer opening the index deletes any left over. A leaf hash's home slot is its
 * first 6 bytes (little-endian) modulo the slot count, so the same file decodes the same
 * whatever table it grew from.
 */
import { crc32 } from 'node:zlib';

/** "tlogidx" + NUL. */
export const MAGIC = Uint8Array.from([0x74, 0x6c, 0x6f, 0x67, 0x69, 0x64, 0x78, 0x00]);
export const LAYOUT_VERSION = 1;
/** Stored little-endian; read back as anything else, the file was byte-swapped. */
export const ENDIAN_MARKER = 0x01020304;

export const HEADER_OFFSET = 0;
export const HEADER_FIELDS = 128;
export const STATE_OFFSET = 4096;
export const STATE_SIZE = 4096;
export const TABLE_OFFSET = 8192;
export const BUCKET_SIZE = 512;
export const SLOT_SIZE = 40;
export const SLOTS_PER_BUCKET = 12;
export const HASH_SIZE = 32;
/** 2^31 buckets = 25.7e9 slots: far beyond any log, and keeps slot numbers exact. */
export const MAX_BUCKET_COUNT = 2 ** 31;

/** Commit slot k lives at STATE_OFFSET + k * COMMIT_SLOT_STRIDE, each in its own sector. */
export const COMMIT_SLOT_STRIDE = 512;
export const COMMIT_SLOT_BYTES = 100;
export const LIVE_RECORD_OFFSET = STATE_OFFSET + 1024;
export const LIVE_RECORD_BYTES = 36;

export interface Header {
  layoutVersion: number;
  fileSize: number;
  /** Unix epoch milliseconds at which this index was first initialised. */
  createdAtMs: number;
  stateOffset: number;
  stateSize: number;
  tableOffset: number;
  tableSize: number;
  bucketCount: number;
}

/** The commit point and the durable table watermark, as stored in one commit slot. */
export interface StateRecord {
  /** Strictly increasing; the valid slot with the highest seq is current. */
  seq: number;
  treeSize: number;
  rootHash: Uint8Array;
  /** SHA-256 of the signed checkpoint note bytes. */
  checkpointHash: Uint8Array;
  /** The table holds every leaf in [0, indexedSize) on disk (it was msynced first). */
  indexedSize: number;
  /** Occupied slots among those leaves. */
  entryCount: number;
}

/**
 * Where the writer got to, updated after every insert batch without msync. It survives the
 * death of the process (it sits in the page cache with the table) but not power loss, so it is
 * trusted only when its boot id is the running kernel's.
 */
export interface LiveRecord {
  bootId: Uint8Array;
  indexedSize: number;
  entryCount: number;
}

export function fileSizeFor(bucketCount: number): number {
  return TABLE_OFFSET + bucketCount * BUCKET_SIZE;
}

function u64(dv: DataView, at: number): number {
  const lo = dv.getUint32(at, true);
  const hi = dv.getUint32(at + 4, true);
  // Values above 2^53 cannot be written by us: only corruption makes them.
  return hi > 0x1f_ffff ? Number.NaN : hi * 0x1_0000_0000 + lo;
}

function setU64(dv: DataView, at: number, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`u64 field ${value}`);
  const lo = value >>> 0;
  dv.setUint32(at, lo, true);
  dv.setUint32(at + 4, (value - lo) / 0x1_0000_0000, true);
}

export function encodeHeader(h: Header): Uint8Array {
  const b = new Uint8Array(HEADER_FIELDS);
  const dv = new DataView(b.buffer);
  b.set(MAGIC, 0);
  dv.setUint32(8, h.layoutVersion, true);
  dv.setUint32(12, ENDIAN_MARKER, true);
  setU64(dv, 16, h.fileSize);
  setU64(dv, 24, h.createdAtMs);
  setU64(dv, 32, h.stateOffset);
  setU64(dv, 40, h.stateSize);
  setU64(dv, 48, h.tableOffset);
  setU64(dv, 56, h.tableSize);
  setU64(dv, 64, h.bucketCount);
  dv.setUint32(72, BUCKET_SIZE, true);
  dv.setUint32(76, SLOT_SIZE, true);
  dv.setUint32(80, SLOTS_PER_BUCKET, true);
  dv.setUint32(124, crc32(b.subarray(0, 124)), true);
  return b;
}

/**
 * Parses and validates the header bytes against the actual file size. Returns the header or
 * a reason string saying what is wrong. Checks run from the most basic (is this an index at
 * all?) to the most specific so the reason names the real problem.
 */
export function decodeHeader(b: Uint8Array, actualFileSize: number): Header | string {
  if (b.length < HEADER_FIELDS) return 'header too short';
  const dv = new DataView(b.buffer, b.byteOffset, HEADER_FIELDS);
  for (let i = 0; i < MAGIC.length; i++) if (b[i] !== MAGIC[i]) return 'bad magic';
  const marker = dv.getUint32(12, true);
  if (marker !== ENDIAN_MARKER) return `wrong endianness marker 0x${marker.toString(16)}`;
  const layoutVersion = dv.getUint32(8, true);
  if (layoutVersion !== LAYOUT_VERSION) return `unknown layout version ${layoutVersion}`;
  if (dv.getUint32(124, true) !== crc32(b.subarray(0, 124))) return 'header crc mismatch';
  const h: Header = {
    layoutVersion,
    fileSize: u64(dv, 16),
    createdAtMs: u64(dv, 24),
    stateOffset: u64(dv, 32),
    stateSize: u64(dv, 40),
    tableOffset: u64(dv, 48),
    tableSize: u64(dv, 56),
    bucketCount: u64(dv, 64),
  };
  if (
    dv.getUint32(72, true) !== BUCKET_SIZE ||
    dv.getUint32(76, true) !== SLOT_SIZE ||
    dv.getUint32(80, true) !== SLOTS_PER_BUCKET ||
    h.stateOffset !== STATE_OFFSET ||
    h.stateSize !== STATE_SIZE ||
    h.tableOffset !== TABLE_OFFSET
  ) {
    return 'unexpected region geometry';
  }
  const b0 = h.bucketCount;
  if (!(Number.isSafeInteger(b0) && b0 >= 1 && b0 <= MAX_BUCKET_COUNT && 2 ** Math.round(Math.log2(b0)) === b0)) {
    return `bad bucket count ${b0}`;
  }
  if (h.tableSize !== b0 * BUCKET_SIZE || h.fileSize !== fileSizeFor(b0)) return 'region sizes disagree';
  if (h.fileSize !== actualFileSize) return `size mismatch: header says ${h.fileSize}, file is ${actualFileSize}`;
  return h;
}

export function encodeStateRecord(s: StateRecord): Uint8Array {
  if (s.rootHash.length !== HASH_SIZE || s.checkpointHash.length !== HASH_SIZE) throw new RangeError('hash must be 32 bytes');
  const b = new Uint8Array(COMMIT_SLOT_BYTES);
  const dv = new DataView(b.buffer);
  setU64(dv, 0, s.seq);
  setU64(dv, 8, s.treeSize);
  b.set(s.rootHash, 16);
  b.set(s.checkpointHash, 48);
  setU64(dv, 80, s.indexedSize);
  setU64(dv, 88, s.entryCount);
  dv.setUint32(96, crc32(b.subarray(0, 96)), true);
  return b;
}

/** The record, or undefined when its CRC or its numbers do not hold up. */
export function decodeStateRecord(b: Uint8Array): StateRecord | undefined {
  const dv = new DataView(b.buffer, b.byteOffset, COMMIT_SLOT_BYTES);
  if (dv.getUint32(96, true) !== crc32(b.subarray(0, 96))) return undefined;
  const s: StateRecord = {
    seq: u64(dv, 0),
    treeSize: u64(dv, 8),
    rootHash: b.slice(16, 48),
    checkpointHash: b.slice(48, 80),
    indexedSize: u64(dv, 80),
    entryCount: u64(dv, 88),
  };
  if (![s.seq, s.treeSize, s.indexedSize, s.entryCount].every(Number.isSafeInteger)) return undefined;
  if (s.indexedSize > s.treeSize || s.entryCount > s.indexedSize) return undefined;
  return s;
}

/** Of two decoded slots, the current one (highest seq), or undefined when both are bad. */
export function pickStateRecord(a: StateRecord | undefined, b: StateRecord | undefined): StateRecord | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return b.seq > a.seq ? b : a;
}

export function encodeLiveRecord(r: LiveRecord): Uint8Array {
  const b = new Uint8Array(LIVE_RECORD_BYTES);
  const dv = new DataView(b.buffer);
  b.set(r.bootId.subarray(0, 16), 0);
  setU64(dv, 16, r.indexedSize);
  setU64(dv, 24, r.entryCount);
  dv.setUint32(32, crc32(b.subarray(0, 32)), true);
  return b;
}

export function decodeLiveRecord(b: Uint8Array): LiveRecord | undefined {
  const dv = new DataView(b.buffer, b.byteOffset, LIVE_RECORD_BYTES);
  if (dv.getUint32(32, true) !== crc32(b.subarray(0, 32))) return undefined;
  const r: LiveRecord = { bootId: b.slice(0, 16), indexedSize: u64(dv, 16), entryCount: u64(dv, 24) };
  if (!Number.isSafeInteger(r.indexedSize) || !Number.isSafeInteger(r.entryCount) || r.entryCount > r.indexedSize) return undefined;
  return r;
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
