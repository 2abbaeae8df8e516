/**
 * The write-ahead journal (src/storage/journal.ts): records come back exactly as appended, in
 * order, across segments; a torn or damaged record ends the scan; a failed append stops the
 * journal; release() deletes only whole segments whose records are covered, oldest first.
 */
import { constants, existsSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, isTlogError } from '../../src/errors.js';
import { sha256 } from '../../src/merkle/hash.js';
import {
  Journal,
  JournalTornError,
  MIN_SEGMENT_BYTES,
  SEGMENT_BYTES,
  frameRecord,
  readJournal,
  scanSegment,
  segmentBytesFor,
} from '../../src/storage/journal.js';
import { freeBytes } from '../../src/storage/space.js';
import { makeTempDir, removeDir } from '../helpers/temp-dirs.js';

let dir: string;
beforeEach(() => {
  dir = path.join(makeTempDir('tlog-journal-'), 'journal');
});
afterEach(() => removeDir(path.dirname(dir)));

const payload = (i: number, n = 100) => Buffer.from(`record ${i} `.padEnd(n, String.fromCharCode(97 + (i % 26))));
const segmentFiles = () =>
  readdirSync(dir)
    .filter((n) => /^[0-9]+$/.test(n))
    .sort((a, b) => Number(a) - Number(b));

describe('record framing', () => {
  it('is "tlj1" || u32 length || payload || SHA-256 of everything before, big-endian', () => {
    const p = Buffer.from('hello journal');
    const r = frameRecord(p);
    expect(r.subarray(0, 4).toString('latin1')).toBe('tlj1');
    expect(r.readUInt32BE(4)).toBe(p.length);
    expect(r.subarray(8, 8 + p.length).equals(p)).toBe(true);
    expect(Buffer.from(sha256(r.subarray(0, 8 + p.length))).equals(r.subarray(8 + p.length))).toBe(true);
    expect(r.length).toBe(8 + p.length + 32);
  });

  it('a scan stops at zeros, at a cut record, and at a record whose hash does not match', () => {
    const recs = [0, 1, 2].map((i) => frameRecord(payload(i)));
    const all = Buffer.concat([...recs, Buffer.alloc(500)]);
    expect(scanSegment(all, 7).map((r) => Buffer.from(r.payload).toString())).toEqual([0, 1, 2].map((i) => payload(i).toString()));
    expect(scanSegment(all, 7)[0]!.segment).toBe(7);
    // Cut in the middle of the third record.
    expect(scanSegment(all.subarray(0, recs[0]!.length + recs[1]!.length + 50), 0)).toHaveLength(2);
    // One flipped payload byte in the second record: the scan keeps only the first.
    const damaged = Buffer.from(all);
    damaged[recs[0]!.length + 20]! ^= 1;
    expect(scanSegment(damaged, 0)).toHaveLength(1);
    // A length that runs past the end.
    const long = Buffer.from(all);
    long.writeUInt32BE(1 << 30, recs[0]!.length + 4);
    expect(scanSegment(long, 0)).toHaveLength(1);
  });
});

describe('Journal', () => {
  it('returns every appended record, in order, from preallocated segment files', async () => {
    const j = await Journal.open(dir);
    for (let i = 0; i < 50; i++) await j.append(payload(i), i);
    await j.close();
    const files = segmentFiles();
    // The segment is created at full size (for the space free here), zeros past the last record.
    expect(statSync(path.join(dir, files[0]!)).size).toBe(segmentBytesFor(freeBytes(dir)));
    const recs = await readJournal(dir);
    expect(recs.map((r) => Buffer.from(r.payload).toString())).toEqual(Array.from({ length: 50 }, (_, i) => payload(i).toString()));
    // Segment files are private.
    expect(statSync(path.join(dir, files[0]!)).mode & 0o777).toBe(0o600);
  });

  it('writes records through an O_DSYNC descriptor: durable when the write returns, no separate fdatasync', async () => {
    const j = await Journal.open(dir);
    await j.append(payload(0), 0);
    const seg = path.join(dir, segmentFiles()[0]!);
    // This process's descriptors open on the segment, with their open flags (octal, fdinfo).
    const flags = readdirSync('/proc/self/fd').flatMap((fd) => {
      let target: string;
      try {
        target = readlinkSync(`/proc/self/fd/${fd}`);
      } catch {
        return [];
      }
      if (target !== seg) return [];
      return [Number.parseInt(/^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]!, 8)];
    });
    expect(flags).toHaveLength(1);
    expect(flags[0]! & constants.O_DSYNC).toBe(constants.O_DSYNC);
    await j.close();
  });

  it('serializes concurrent appends in call order', async () => {
    const j = await Journal.open(dir);
    await Promise.all(Array.from({ length: 40 }, (_, i) => j.append(payload(i, 50 + (i % 7) * 300), i)));
    await j.close();
    expect((await readJournal(dir)).map((r) => Buffer.from(r.payload).toString().split(' ')[1])).toEqual(Array.from({ length: 40 }, (_, i) => String(i)));
  });

  it('rotates to new segments when one is full, and a record bigger than a segment still fits', async () => {
    const j = await Journal.open(dir, { segmentBytes: 4096 });
    for (let i = 0; i < 30; i++) await j.append(payload(i, 1000), i);
    await j.append(payload(99, 10_000), 99);
    await j.close();
    expect(segmentFiles().length).toBeGreaterThan(5);
    const recs = await readJournal(dir);
    expect(recs).toHaveLength(31);
    expect(recs.at(-1)!.payload.length).toBe(10_000);
    // Segments are read in sequence order and each record is whole inside one segment.
    const segs = recs.map((r) => r.segment);
    expect([...segs].sort((a, b) => a - b)).toEqual(segs);
  });

  it('release() deletes whole segments covered by the mark, oldest first, never the current one', async () => {
    const j = await Journal.open(dir, { segmentBytes: 4096 });
    for (let i = 1; i <= 30; i++) await j.append(payload(i, 1000), i * 10);
    const before = segmentFiles();
    // Marks are the highest mark of the records in a segment: 3 records (~1.1 KB) per segment.
    await j.release(95);
    const after = segmentFiles();
    expect(after.length).toBeLessThan(before.length);
    const left = await readJournal(dir);
    // Everything above the mark is still there, and the journal has no hole.
    const marks = left.map((r) => Number(Buffer.from(r.payload).toString().split(' ')[1]) * 10);
    expect(marks.at(-1)).toBe(300);
    for (let k = 1; k < marks.length; k++) expect(marks[k]! - marks[k - 1]!).toBe(10);
    expect(marks[0]!).toBeLessThanOrEqual(100);
    // The current segment stays however high the mark, unless all is asked for.
    await j.release(10_000);
    expect(segmentFiles().length).toBeGreaterThanOrEqual(1);
    expect(await readJournal(dir)).not.toHaveLength(0);
    await j.release(10_000, true);
    expect(await readJournal(dir)).toHaveLength(0);
    // And the journal keeps working after that.
    await j.append(payload(1000), 10_010);
    await j.close();
    expect(await readJournal(dir)).toHaveLength(1);
  });

  it('a failed record write stops the journal (JournalTornError), later appends fail', async () => {
    let fail = false;
    const j = await Journal.open(dir, {
      beforeAppend: () => {
        if (fail) throw Object.assign(new Error('input/output error'), { code: 'EIO' });
      },
    });
    await j.append(payload(1), 1);
    fail = true;
    const e = await j.append(payload(2), 2).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(JournalTornError);
    expect(String((e as Error).message)).toMatch(/append to journal .*EIO/);
    fail = false;
    await expect(j.append(payload(3), 3)).rejects.toThrow(/stopped after a failed append/);
    await j.close();
    expect(await readJournal(dir)).toHaveLength(1);
  });

  it('a record write refused for want of space must be repeated: the same record completes it, another breaks the journal', async () => {
    let full = false;
    const noRoom = () => {
      if (full) throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
    };
    // A failed write may leave part of the record in the file: fabricated by writing half of it.
    const tornAfterFailure = async (j: Journal) => {
      await j.append(payload(1), 1);
      full = true;
      const e = await j.append(payload(2), 2).catch((x: unknown) => x);
      full = false;
      expect(isTlogError(e, ErrorCode.diskFull), String(e)).toBe(true);
      expect(e).not.toBeInstanceOf(JournalTornError);
      expect(j.mustRepeat).toBe(true);
      const seg = path.join(dir, segmentFiles().at(-1)!);
      const bytes = readFileSync(seg);
      const rec2 = frameRecord(payload(2));
      rec2.copy(bytes, frameRecord(payload(1)).length, 0, rec2.length >> 1);
      writeFileSync(seg, bytes);
    };

    let j = await Journal.open(dir, { beforeAppend: noRoom });
    await tornAfterFailure(j);
    // The same record again, once there is room: written whole over what the failure left.
    await j.append(payload(2), 2);
    expect(j.mustRepeat).toBe(false);
    await j.append(payload(3), 3);
    await j.close();
    expect((await readJournal(dir)).map((r) => Buffer.from(r.payload).toString())).toEqual([1, 2, 3].map((i) => payload(i).toString()));

    rmSync(dir, { recursive: true });
    j = await Journal.open(dir, { beforeAppend: noRoom });
    await tornAfterFailure(j);
    // Another record instead: it could follow a record nobody was told about. Refused for good.
    await expect(j.append(payload(3), 3)).rejects.toBeInstanceOf(JournalTornError);
    await expect(j.append(payload(2), 2)).rejects.toThrow(/stopped after a failed append/);
    await j.close();
    expect(await readJournal(dir)).toHaveLength(1);
  });

  it('new segments are sized to the free space: a 32nd of it, a power of two from 64 KiB to 16 MiB', () => {
    expect(segmentBytesFor(32 * SEGMENT_BYTES)).toBe(SEGMENT_BYTES);
    expect(segmentBytesFor(32 * SEGMENT_BYTES - 1)).toBe(SEGMENT_BYTES / 2);
    expect(segmentBytesFor(20 << 20)).toBe(512 << 10);
    expect(segmentBytesFor(32 * MIN_SEGMENT_BYTES)).toBe(MIN_SEGMENT_BYTES);
    expect(segmentBytesFor(32 * MIN_SEGMENT_BYTES - 1)).toBe(MIN_SEGMENT_BYTES);
    expect(segmentBytesFor(0)).toBe(MIN_SEGMENT_BYTES);
  });

  it('a segment that cannot be created writes nothing and the next append can succeed', async () => {
    // A file where the journal directory's next segment would go blocks its creation once.
    const j = await Journal.open(dir, { segmentBytes: 4096 });
    writeFileSync(path.join(dir, '0'), 'in the way');
    const e = await j.append(payload(1), 1).catch((x: unknown) => x);
    expect(isTlogError(e)).toBe(true);
    expect(e).not.toBeInstanceOf(JournalTornError);
    expect(String((e as Error).message)).toMatch(/create journal segment .*EEXIST/);
    await j.append(payload(2), 2);
    await j.close();
    expect(readFileSync(path.join(dir, '0'), 'utf8')).toBe('in the way');
    expect((await readJournal(dir)).map((r) => Buffer.from(r.payload).toString())).toEqual([payload(2).toString()]);
  });

  it('a reopened journal keeps old segments until dropReplayed(), and appends after them', async () => {
    const j = await Journal.open(dir);
    await j.append(payload(1), 1);
    await j.close();
    const k = await Journal.open(dir);
    expect(await readJournal(dir)).toHaveLength(1);
    await k.append(payload(2), 2);
    expect((await readJournal(dir)).map((r) => Buffer.from(r.payload).toString())).toEqual([payload(1).toString(), payload(2).toString()]);
    expect(await k.dropReplayed()).toBe(1);
    expect((await readJournal(dir)).map((r) => Buffer.from(r.payload).toString())).toEqual([payload(2).toString()]);
    await k.close();
    expect(existsSync(path.join(dir, '0'))).toBe(false);
  });
});
