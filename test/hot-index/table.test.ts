/**
 * The dedup table on its own, over a file mapped in one-page windows, so that probing crosses
 * a window boundary (and the end of the table) where lookups and inserts compare and write
 * slots in place.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openMappedFile, pageSize } from '../../native/index.js';
import { BUCKET_SIZE, fileSizeFor, HASH_SIZE, SLOT_SIZE, SLOTS_PER_BUCKET, TABLE_OFFSET } from '../../src/hot-index/layout.js';
import { DedupTable, InsertResult } from '../../src/hot-index/table.js';
import { tempDirPerTest } from '../helpers/temp-dirs.js';
import { mappedFileBackends } from '../native/helpers.js';

const BUCKETS = 16;
const CAPACITY = BUCKETS * SLOTS_PER_BUCKET;

/** A leaf hash whose home slot is `home`, told apart from others by `tag` (its last byte). */
function keyAt(home: number, tag: number): Uint8Array {
  const k = new Uint8Array(HASH_SIZE).fill(0xa5);
  // The home slot is the first 6 bytes (little-endian) modulo the capacity.
  const v = home + CAPACITY * (tag + 1);
  k[0] = v & 0xff;
  k[1] = (v >>> 8) & 0xff;
  k[2] = 0;
  k[3] = 0;
  k[4] = 0;
  k[5] = 0;
  k[31] = tag;
  return k;
}

describe.each(mappedFileBackends)('DedupTable (%s)', (backend) => {
  const tmp = tempDirPerTest('tlog-table-');

  const open = () => {
    const mf = openMappedFile(join(tmp.dir, 't.idx'), {
      create: true,
      size: fileSizeFor(BUCKETS),
      backend,
      ...(backend === 'mmap' ? { chunkSize: pageSize } : {}),
    });
    return { mf, table: new DedupTable(mf, BUCKETS) };
  };

  it('probes across a window boundary: lookups, duplicates and a smaller index compare and write in place', () => {
    const { mf, table } = open();
    // The last slot before a window boundary: its bucket ends short of the page's end, and the
    // next slot is the first of the next window.
    const boundary = pageSize * Math.ceil((TABLE_OFFSET + 1) / pageSize);
    const bucketBefore = (boundary - TABLE_OFFSET) / BUCKET_SIZE - 1;
    const home = bucketBefore * SLOTS_PER_BUCKET + SLOTS_PER_BUCKET - 1;
    expect(table.slotOffset(home) + SLOT_SIZE).toBeLessThanOrEqual(boundary);
    expect(table.slotOffset(home + 1)).toBe(boundary);
    const [a, b, c, absent] = [keyAt(home, 1), keyAt(home, 2), keyAt(home, 3), keyAt(home, 4)];
    expect(table.home(a, 0)).toBe(home);
    expect(table.insert(a, 0, 10)).toBe(InsertResult.inserted);
    expect(table.insert(b, 0, 20)).toBe(InsertResult.inserted);
    expect(table.lastBucket).toBe(bucketBefore + 1);
    expect(table.insert(c, 0, 30)).toBe(InsertResult.inserted);
    expect([table.lookup(a), table.lookup(b), table.lookup(c), table.lookup(absent)]).toEqual([10, 20, 30, -1]);
    // Stored where the probe sequence says, hash then index + 1, little-endian.
    expect(mf.equals(boundary, b)).toBe(true);
    expect(mf.readU64(boundary + HASH_SIZE)).toBe(21);
    expect(table.insert(b, 0, 25)).toBe(InsertResult.keptSmaller);
    expect(table.insert(b, 0, 20)).toBe(InsertResult.same);
    expect(table.insert(b, 0, 5)).toBe(InsertResult.replacedLarger);
    expect(table.lookup(b)).toBe(5);
    expect(mf.equals(boundary, b)).toBe(true);
    // A key found at offset 32 of a larger buffer, as insertMany passes them.
    const packed = new Uint8Array(2 * HASH_SIZE);
    packed.set(c, HASH_SIZE);
    expect(table.lookup(packed, HASH_SIZE)).toBe(30);
    // A hash that differs from a stored one in its last byte only is another hash.
    const twin = a.slice();
    twin[HASH_SIZE - 1] = twin[HASH_SIZE - 1]! ^ 0x80;
    expect(table.lookup(twin)).toBe(-1);
    expect(table.insert(twin, 0, 40)).toBe(InsertResult.inserted);
    expect([table.lookup(a), table.lookup(twin)]).toEqual([10, 40]);
    expect(table.check(100)).toEqual({ entries: 4, problems: [], problemCount: 0 });
    mf.close();
  });

  it('wraps from the last slot to the first', () => {
    const { mf, table } = open();
    const [a, b] = [keyAt(CAPACITY - 1, 1), keyAt(CAPACITY - 1, 2)];
    table.insert(a, 0, 1);
    table.insert(b, 0, 2);
    expect(mf.equals(TABLE_OFFSET, b)).toBe(true);
    expect([table.lookup(a), table.lookup(b), table.lookup(keyAt(CAPACITY - 1, 3))]).toEqual([1, 2, -1]);
    expect(table.check(3).problems).toEqual([]);
    mf.close();
  });

  it('a slot whose hash was written but not its index (a kill between the two) is empty, and the next insert fills it', () => {
    const { mf, table } = open();
    const a = keyAt(7, 1);
    mf.writeBytes(table.slotOffset(7), keyAt(7, 9));
    expect(table.lookup(a)).toBe(-1);
    expect(table.lookup(keyAt(7, 9))).toBe(-1);
    expect(table.insert(a, 0, 4)).toBe(InsertResult.inserted);
    expect(mf.equals(table.slotOffset(7), a)).toBe(true);
    expect(table.lookup(a)).toBe(4);
    expect(table.check(5)).toEqual({ entries: 1, problems: [], problemCount: 0 });
    mf.close();
  });
});
