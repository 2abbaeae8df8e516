/**
 * c2sp.org/tlog-tiles entry bundles: a sequence of (u16 big-endian length || entry), 256 entries
 * in a full bundle. So entries are 1..65535 bytes here: an empty entry is refused as well, since
 * it can carry no record and is almost always a client mistake.
 */
import { TlogError, ErrorCode } from '../errors.js';
import { TILE_WIDTH } from './layout.js';

export const MAX_ENTRY_SIZE = 0xffff;
export const MIN_ENTRY_SIZE = 1;

/** Throws a bad_input / too_large error for an entry the bundle format cannot hold. */
export function checkEntrySize(entry: Uint8Array): void {
  if (entry.length < MIN_ENTRY_SIZE) {
    throw new TlogError(ErrorCode.badInput, 'entry is empty: entries are 1 to 65535 bytes');
  }
  if (entry.length > MAX_ENTRY_SIZE) {
    throw new TlogError(ErrorCode.tooLarge, `entry is ${entry.length} bytes: entries are 1 to 65535 bytes (c2sp.org/tlog-tiles entry bundles)`);
  }
}

/** Encodes entries as bundle bytes. */
export function formatEntryBundle(entries: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const e of entries) {
    checkEntrySize(e);
    total += 2 + e.length;
  }
  const out = Buffer.allocUnsafe(total);
  let off = 0;
  for (const e of entries) {
    out.writeUInt16BE(e.length, off);
    out.set(e, off + 2);
    off += 2 + e.length;
  }
  return out;
}

/**
 * Decodes bundle bytes. Rejects truncation, trailing bytes, zero-length entries and more than
 * 256 entries: a bundle that does not decode exactly is corrupt, not partially readable.
 * `expected`, when given, is the number of entries the tree implies for this bundle.
 */
export function parseEntryBundle(data: Uint8Array, expected?: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let off = 0;
  while (off < data.length) {
    if (off + 2 > data.length) {
      throw new TlogError(ErrorCode.badInput, `entry bundle truncated in a length prefix at byte ${off}`);
    }
    const len = (data[off]! << 8) | data[off + 1]!;
    if (len === 0) throw new TlogError(ErrorCode.badInput, `entry bundle has an empty entry at byte ${off}`);
    if (off + 2 + len > data.length) {
      throw new TlogError(ErrorCode.badInput, `entry bundle truncated in entry ${out.length} at byte ${off}`);
    }
    out.push(data.subarray(off + 2, off + 2 + len));
    off += 2 + len;
    if (out.length > TILE_WIDTH) throw new TlogError(ErrorCode.badInput, 'entry bundle has more than 256 entries');
  }
  if (expected !== undefined && out.length !== expected) {
    throw new TlogError(ErrorCode.badInput, `entry bundle has ${out.length} entries, expected ${expected}`);
  }
  return out;
}

/**
 * Decodes a sequence of (u16 length || entry) of any length: the body of an append-batch
 * request, which uses the bundle encoding without the 256-entry bound.
 */
export function parseEntrySequence(data: Uint8Array, maxEntries: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let off = 0;
  while (off < data.length) {
    if (out.length >= maxEntries) throw new TlogError(ErrorCode.tooLarge, `more than ${maxEntries} entries in one request`);
    if (off + 2 > data.length) throw new TlogError(ErrorCode.badInput, `entry sequence truncated in a length prefix at byte ${off}`);
    const len = (data[off]! << 8) | data[off + 1]!;
    if (len === 0) throw new TlogError(ErrorCode.badInput, `empty entry at byte ${off}: entries are 1 to 65535 bytes`);
    if (off + 2 + len > data.length) throw new TlogError(ErrorCode.badInput, `entry sequence truncated in entry ${out.length} at byte ${off}`);
    out.push(data.subarray(off + 2, off + 2 + len));
    off += 2 + len;
  }
  return out;
}

/**
 * The bytes of the first `count` entries of a bundle: the partial bundle of width `count`
 * (c2sp.org/tlog-tiles: the entries of a narrower bundle are the first ones of every wider one
 * and of the full bundle). Throws when the bundle holds fewer entries or is malformed there.
 */
export function entryBundlePrefix(data: Uint8Array, count: number): Uint8Array {
  let off = 0;
  for (let i = 0; i < count; i++) {
    if (off + 2 > data.length) throw new TlogError(ErrorCode.badInput, `entry bundle holds ${i} entries, not ${count}`);
    const len = (data[off]! << 8) | data[off + 1]!;
    if (len === 0 || off + 2 + len > data.length) throw new TlogError(ErrorCode.badInput, `entry bundle is malformed in entry ${i}`);
    off += 2 + len;
  }
  return data.subarray(0, off);
}
