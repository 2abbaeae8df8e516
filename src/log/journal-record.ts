/**
 * The log's journal records: one per batch, written before the commit point moves, so that a
 * crash before the batch's tiles are flushed loses nothing (see storage/journal.ts).
 *
 * Payload, big-endian:
 *
 *     u64 start || u32 count || count x (u16 length || entry) || u32 note length || note
 *
 * The entries are in the tlog-tiles entry bundle encoding; the note is the batch's signed
 * checkpoint (tree size start + count), byte for byte as published. With those, recovery
 * rebuilds every tile, bundle and checkpoint file the batch implied.
 */
import { TlogError, ErrorCode } from '../errors.js';
import { parseEntrySequence } from '../tiles/bundle.js';

export interface BatchRecord {
  readonly start: number;
  readonly entries: readonly Uint8Array[];
  readonly note: string;
}

export function formatBatchRecord(start: number, entries: readonly { readonly entry: Uint8Array }[], note: string): Uint8Array {
  const noteBytes = Buffer.from(note, 'utf8');
  let total = 8 + 4 + 4 + noteBytes.length;
  for (const e of entries) total += 2 + e.entry.length;
  const out = Buffer.allocUnsafe(total);
  out.writeBigUInt64BE(BigInt(start), 0);
  out.writeUInt32BE(entries.length, 8);
  let off = 12;
  for (const { entry } of entries) {
    out.writeUInt16BE(entry.length, off);
    out.set(entry, off + 2);
    off += 2 + entry.length;
  }
  out.writeUInt32BE(noteBytes.length, off);
  noteBytes.copy(out, off + 4);
  return out;
}

export function parseBatchRecord(payload: Uint8Array): BatchRecord {
  const b = Buffer.from(payload.buffer, payload.byteOffset, payload.length);
  const bad = (why: string) => new TlogError(ErrorCode.corrupt, `journal record: ${why}`);
  if (b.length < 16) throw bad('too short');
  const start = Number(b.readBigUInt64BE(0));
  const count = b.readUInt32BE(8);
  if (!Number.isSafeInteger(start)) throw bad('start is out of range');
  // The entries run up to the note's length field, which ends the record with the note.
  let off = 12;
  for (let i = 0; i < count; i++) {
    if (off + 2 > b.length) throw bad(`truncated in entry ${i}`);
    off += 2 + b.readUInt16BE(off);
  }
  if (off + 4 > b.length) throw bad('truncated before the note');
  const noteLength = b.readUInt32BE(off);
  if (off + 4 + noteLength !== b.length) throw bad('note length does not match the record');
  const entries = parseEntrySequence(b.subarray(12, off), count);
  if (entries.length !== count) throw bad(`holds ${entries.length} entries, says ${count}`);
  return { start, entries, note: b.subarray(off + 4).toString('utf8') };
}

/** The tree size a record starts at, without parsing the rest of it. */
export function batchRecordStart(payload: Uint8Array): number {
  return Number(Buffer.from(payload.buffer, payload.byteOffset, payload.length).readBigUInt64BE(0));
}
