/**
 * A write-ahead journal: an append-only sequence of records, each durable once append()
 * resolves, at the cost of one synchronous (O_DSYNC) write into a preallocated file.
 *
 * Why: making a batch's new tiles durable one by one (temp file, fsync, rename, directory fsync)
 * costs a journal commit of the filesystem per directory, tens of milliseconds per batch on a
 * virtual disk. One fdatasync of an overwrite inside an already-allocated file costs about
 * 0.2 ms: the data is the only thing to flush, no metadata changes. So a batch is made durable
 * by its journal record, and the files it implies are flushed later in bulk (see DurableWriter's
 * deferred writes); a crash before that flush is repaired from the journal.
 *
 * On disk: a directory of segments named by a sequence number (`<dir>/<seq>`, decimal). Each
 * segment is created full of zeros (written, not fallocated: overwriting written blocks needs no
 * metadata update at fdatasync time) and holds records back to back from offset 0:
 *
 *     "tlj1" (4 bytes) || u32 payload length || payload || SHA-256(all the preceding bytes)
 *
 * big-endian, so a reader with `xxd`, `dd` and `sha256sum` can split and check them. A scan stops
 * at the first record that does not check out (zeros past the last record, or a record torn by a
 * crash: it was never acknowledged).
 *
 * Contract: one writer; append() calls are serialized in call order; a segment is deleted only
 * by release(), which the owner calls once the records' effects are durable elsewhere.
 * Not safe for concurrent use by two processes (the log's lock covers that).
 */
import { promises as fsp, constants as fsc } from 'node:fs';
import path from 'node:path';
import { isCanonicalDecimal } from '../decimal.js';
import { TlogError, ErrorCode, ioError } from '../errors.js';
import { equalHashes, sha256 } from '../merkle/hash.js';
import { syncDir } from './durable.js';
import { freeBytes } from './space.js';

const MAGIC = Buffer.from('tlj1', 'latin1');
const HEADER = 8;
const TRAILER = 32;
/** The most bytes a segment is created with. A record bigger than a segment gets one of its own size. */
export const SEGMENT_BYTES = 16 << 20;
/** The fewest: below this a segment would hold too few records to be worth its fdatasync. */
export const MIN_SEGMENT_BYTES = 64 << 10;

/**
 * The size of a new segment on a filesystem with `free` bytes: at most a 32nd of them (a power
 * of two between MIN_SEGMENT_BYTES and SEGMENT_BYTES), so that a small disk (20 MiB) keeps
 * most of its room for the log's files instead of two preallocated 16 MiB segments.
 */
export function segmentBytesFor(free: number): number {
  let bytes = SEGMENT_BYTES;
  while (bytes > MIN_SEGMENT_BYTES && bytes > free / 32) bytes /= 2;
  return bytes;
}

/**
 * A record write failed after it may have reached the file: the journal may now hold a record
 * nobody was acknowledged for, so its owner must stop and let recovery sort it out on restart
 * (the commit point decides which records count).
 */
export class JournalTornError extends TlogError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.io, message, options);
  }
}

export interface JournalRecord {
  /** Sequence number of the segment holding it. */
  readonly segment: number;
  readonly payload: Uint8Array;
}

export interface JournalOptions {
  /** Bytes of a new segment (tests make it small to exercise rotation); by default sized to the free space (segmentBytesFor). */
  readonly segmentBytes?: number;
  /** Test hook: called before each record is written; throwing simulates a failing disk. */
  readonly beforeAppend?: () => void;
}

interface Segment {
  readonly seq: number;
  readonly path: string;
  /** Owner-supplied mark of the newest record in it (the log uses the tree size it ends at). */
  mark: number;
  /** Owner-supplied start mark of its first record, -1 before one (the log: the size it starts at). */
  first: number;
  /** Its size on disk. */
  readonly bytes: number;
}

export function frameRecord(payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(HEADER + payload.length + TRAILER);
  MAGIC.copy(out, 0);
  out.writeUInt32BE(payload.length, 4);
  out.set(payload, HEADER);
  out.set(sha256(out.subarray(0, HEADER + payload.length)), HEADER + payload.length);
  return out;
}

/** The valid records at the start of one segment's bytes. */
export function scanSegment(bytes: Uint8Array, segment: number): JournalRecord[] {
  const out: JournalRecord[] = [];
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  let off = 0;
  while (off + HEADER + TRAILER <= b.length && b.subarray(off, off + 4).equals(MAGIC)) {
    const len = b.readUInt32BE(off + 4);
    const end = off + HEADER + len;
    if (end + TRAILER > b.length) break;
    if (!equalHashes(sha256(b.subarray(off, end)), b.subarray(end, end + TRAILER))) break;
    out.push({ segment, payload: b.subarray(off + HEADER, end) });
    off = end + TRAILER;
  }
  return out;
}

async function listSegments(dir: string): Promise<number[]> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw ioError('readdir', dir, e);
  }
  return names
    .filter((n) => isCanonicalDecimal(n, 16))
    .map(Number)
    .sort((a, b) => a - b);
}

/** Reads every record of every segment, oldest first. Read-only: usable without the lock. */
export async function readJournal(dir: string): Promise<JournalRecord[]> {
  const out: JournalRecord[] = [];
  for (const seq of await listSegments(dir)) {
    const p = path.join(dir, String(seq));
    let bytes: Buffer;
    try {
      bytes = await fsp.readFile(p);
    } catch (e) {
      throw ioError('read', p, e);
    }
    out.push(...scanSegment(bytes, seq));
  }
  return out;
}

export class Journal {
  private current: { seg: Segment; fh: fsp.FileHandle; size: number; offset: number } | null = null;
  /** A segment created ahead of need, so rotating costs no file creation on the hot path. */
  private spare: Promise<{ seg: Segment; fh: fsp.FileHandle; size: number } | null> | null = null;
  /** Segments before the current one, oldest first, waiting for release(). */
  private readonly older: Segment[] = [];
  private tail: Promise<void> = Promise.resolve();
  private broken = false;
  private closed = false;
  /**
   * A record whose write failed for want of space (ENOSPC, EDQUOT): some of it may be in the
   * file. The next append must be this very record, written again at the same offset (which
   * makes the file whole whatever the failed write left); anything else breaks the journal.
   */
  private unfinished: Buffer | null = null;
  /** The size of the last segment made or planned (what the next one will roughly need). */
  private plannedBytes: number;
  /** The size of the spare segment once it exists on disk (0 while there is none). */
  private spareBytes = 0;

  private constructor(
    readonly dir: string,
    private nextSeq: number,
    private readonly opts: JournalOptions,
  ) {
    this.plannedBytes = this.newSegmentBytes();
  }

  /** The size of a segment made now: the option, or what the free space allows. */
  private newSegmentBytes(): number {
    if (this.opts.segmentBytes !== undefined) return this.opts.segmentBytes;
    try {
      return segmentBytesFor(freeBytes(this.dir));
    } catch {
      return SEGMENT_BYTES;
    }
  }

  /** Bytes the next segment will take (the owner keeps them free: see log/sequencer.ts's reserve). */
  get nextSegmentBytes(): number {
    return this.plannedBytes;
  }

  /** Bytes of the segment files on disk: the current one, the spare, and older ones not yet released. */
  get bytes(): number {
    let n = (this.current?.size ?? 0) + this.spareBytes;
    for (const s of this.older) n += s.bytes;
    return n;
  }

  /** Whether the last append failed for want of space and must be repeated before any other. */
  get mustRepeat(): boolean {
    return this.unfinished !== null;
  }

  /**
   * Opens the journal for writing. Existing segments are kept until dropReplayed(): the owner
   * replays them, makes their effects durable, then drops them. New records go to new segments.
   */
  static async open(dir: string, opts: JournalOptions = {}): Promise<Journal> {
    await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
    const existing = await listSegments(dir);
    const j = new Journal(dir, (existing.at(-1) ?? -1) + 1, opts);
    for (const seq of existing) {
      const p = path.join(dir, String(seq));
      const bytes = await fsp.stat(p).then(
        (st) => st.size,
        () => 0,
      );
      j.older.push({ seq, path: p, mark: Number.POSITIVE_INFINITY, first: -1, bytes });
    }
    return j;
  }

  /** Creates segment files full of zeros, durable with their directory entry. */
  private async createSegment(bytes: number): Promise<{ seg: Segment; fh: fsp.FileHandle; size: number }> {
    const seq = this.nextSeq++;
    const p = path.join(this.dir, String(seq));
    let fh: fsp.FileHandle | undefined;
    try {
      fh = await fsp.open(p, fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL, 0o600);
      const zeros = Buffer.alloc(Math.min(bytes, 1 << 20));
      for (let off = 0; off < bytes; off += zeros.length) await fh.write(zeros, 0, Math.min(zeros.length, bytes - off), off);
      // The zeros and the file's size must be durable before records rely on them: then each
      // record's write flushes only its own blocks.
      await fh.sync();
      await syncDir(this.dir);
      // Records are written through O_DSYNC: each write returns once durable, as write +
      // fdatasync would (POSIX synchronized I/O data integrity; on Linux the same
      // vfs_fsync_range, device cache flush included), in one call to the thread pool instead
      // of two: every hand-off costs the event loop a thread wake-up.
      const dsync = await fsp.open(p, fsc.O_RDWR | fsc.O_DSYNC);
      await fh.close().catch(() => {});
      fh = dsync;
    } catch (e) {
      // Only a file this call created is removed (O_EXCL failing means it is someone else's).
      if (fh) {
        await fh.close().catch(() => {});
        await fsp.unlink(p).catch(() => {});
      }
      throw ioError('create journal segment', p, e);
    }
    return { seg: { seq, path: p, mark: -1, first: -1, bytes }, fh, size: bytes };
  }

  private prepareSpare(): void {
    if (this.spare || this.closed) return;
    this.plannedBytes = this.newSegmentBytes();
    this.spare = this.createSegment(this.plannedBytes).then(
      (s) => {
        this.spareBytes = s.size;
        return s;
      },
      () => null,
    );
  }

  /**
   * Appends a record; durable when the promise resolves. `mark` is remembered with the segment
   * (release() compares it), and `start`, when this record is the segment's first (startMarks()).
   * (release() compares it). Appends run one at a time in call order. A failure while starting
   * a segment writes nothing (retry is fine). A failure writing the record for want of space
   * (a disk_full error) leaves it unfinished: the owner must append the same record again (once
   * there is room) or stop. Any other failure writing the record throws a JournalTornError and
   * every later append fails: the owner must stop.
   */
  append(payload: Uint8Array, mark: number, start = -1): Promise<void> {
    const run = this.tail.then(() => this.doAppend(payload, mark, start));
    this.tail = run.catch(() => {});
    return run;
  }

  private async doAppend(payload: Uint8Array, mark: number, start: number): Promise<void> {
    if (this.closed) throw new TlogError(ErrorCode.unavailable, `journal ${this.dir} is closed`);
    const record = frameRecord(payload);
    if (this.broken) throw new TlogError(ErrorCode.io, `journal ${this.dir} stopped after a failed append`);
    if (this.unfinished && !this.unfinished.equals(record)) {
      // Another record after one that may be (partly) in the file: it could follow a record
      // nobody was told about. Refuse, for good.
      this.broken = true;
      throw new JournalTornError(`journal ${this.dir}: an append must first repeat the record that failed for want of space`);
    }
    if (!this.unfinished && (!this.current || (this.current.offset > 0 && this.current.offset + record.length > this.current.size))) {
      // A failure here writes no record: the caller's batch fails cleanly and may be retried.
      await this.rotate(record.length);
    }
    const c = this.current!;
    try {
      this.opts.beforeAppend?.();
      let done = 0;
      while (done < record.length) {
        const { bytesWritten } = await c.fh.write(record, done, record.length - done, c.offset + done);
        done += bytesWritten;
      }
      // The write made the record durable (O_DSYNC, see createSegment): the segment's blocks
      // and size already were, unless this record grew the file, and then the new size too.
    } catch (e) {
      // Whatever reached the file is unacknowledged; it may even be complete. Never write
      // another record after it: it could then follow a record nobody was told about.
      const io = ioError('append to journal', c.seg.path, e);
      if (io.code === ErrorCode.diskFull) {
        // No room (a delayed allocation failing at fdatasync, a quota): the same bytes written
        // again at the same offset make the file whole, once there is room.
        this.unfinished = record;
        throw io;
      }
      this.broken = true;
      throw new JournalTornError(io.message, { cause: e });
    }
    this.unfinished = null;
    c.offset += record.length;
    c.seg.mark = Math.max(c.seg.mark, mark);
    if (c.seg.first < 0) c.seg.first = start;
    if (c.offset > c.size / 2) this.prepareSpare();
  }

  /** Moves to a new segment (the spare one if it is ready and big enough). */
  private async rotate(need: number): Promise<void> {
    let next = this.spare ? await this.spare : null;
    this.spare = null;
    this.spareBytes = 0;
    if (next && next.size < need) {
      await next.fh.close().catch(() => {});
      await fsp.unlink(next.seg.path).catch(() => {});
      next = null;
    }
    if (!next) {
      this.plannedBytes = this.newSegmentBytes();
      next = await this.createSegment(Math.max(this.plannedBytes, need));
    }
    if (this.current) {
      await this.current.fh.close().catch(() => {});
      this.older.push(this.current.seg);
    }
    this.current = { ...next, offset: 0 };
  }

  /**
   * Deletes every segment but the current one whose mark is at most `mark` (their records'
   * effects are durable elsewhere), oldest first, and stops at the first one it must keep so the
   * journal never has a hole. With `all`, the current segment goes too (the owner has made
   * everything durable and the next append starts a new segment).
   */
  async release(mark: number, all = false): Promise<number> {
    await this.tail;
    if (all && this.current && this.current.seg.mark <= mark) {
      await this.current.fh.close().catch(() => {});
      this.older.push(this.current.seg);
      this.current = null;
    }
    return this.deleteOldest((seg) => seg.mark <= mark);
  }

  /**
   * The start mark of the oldest segment holding records (where a replay would start: the log
   * keeps the tiles of that tree size), or null when there is none or it predates this open.
   */
  startMark(): number | null {
    const oldest = this.older[0] ?? this.current?.seg;
    return oldest && oldest.first >= 0 ? oldest.first : null;
  }

  /** The start mark of the oldest segment release(mark) keeps: startMark() once it returns. */
  startMarkAfterRelease(mark: number): number | null {
    const kept = this.older.find((s) => s.mark > mark) ?? this.current?.seg;
    return kept && kept.first >= 0 ? kept.first : null;
  }

  /** Deletes the segments found at open (after the owner replayed them and made that durable). */
  async dropReplayed(): Promise<number> {
    await this.tail;
    return this.deleteOldest((seg) => seg.mark === Number.POSITIVE_INFINITY);
  }

  /** Deletes the older segments from the oldest on, while `done` says so. */
  private async deleteOldest(done: (seg: Segment) => boolean): Promise<number> {
    let removed = 0;
    while (this.older.length > 0 && done(this.older[0]!)) {
      const seg = this.older.shift()!;
      try {
        await fsp.unlink(seg.path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError('unlink', seg.path, e);
      }
      removed++;
    }
    // In order: a crash must not bring back an older segment after a newer one is gone.
    if (removed > 0) await syncDir(this.dir);
    return removed;
  }

  async close(): Promise<void> {
    await this.tail;
    this.closed = true;
    await this.current?.fh.close().catch(() => {});
    this.current = null;
    const spare = this.spare ? await this.spare : null;
    this.spare = null;
    this.spareBytes = 0;
    if (spare) {
      await spare.fh.close().catch(() => {});
      await fsp.unlink(spare.seg.path).catch(() => {});
    }
  }
}
