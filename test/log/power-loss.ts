/**
 * Simulated power loss for tests: what a crash of the machine (not just the process) may do to
 * files that were written but not yet fsynced. Which files those can be is exactly what the
 * journal covers (src/log/replay.ts): every tile, bundle, history copy and private note of the
 * batches whose records are still in the journal, and the published checkpoint. Each of them is
 * deleted, emptied, or overwritten with zeros, at random. Files the journal does not cover were
 * flushed before their segment was released, and stay.
 */
import { closeSync, openSync, promises as fsp, writeSync } from 'node:fs';
import path from 'node:path';
import { stateSlotOffset } from '../../src/hot-index/file.js';
import { COMMIT_SLOT_BYTES, decodeStateRecord, encodeStateRecord, LIVE_RECORD_BYTES, LIVE_RECORD_OFFSET } from '../../src/hot-index/layout.js';
import { sha256 } from '../../src/merkle/hash.js';
import { parseCheckpoint } from '../../src/note/checkpoint.js';
import { parseNote } from '../../src/note/note.js';
import { notePath } from '../../src/log/commit-point.js';
import { parseBatchRecord } from '../../src/log/journal-record.js';
import type { LogPaths } from '../../src/tile-store/paths.js';
import { historyPath } from '../../src/tile-store/paths.js';
import { journalDir } from '../../src/log/replay.js';
import { readJournal } from '../../src/storage/journal.js';
import { changedTiles, formatTilePath } from '../../src/tiles/layout.js';

export interface PowerLoss {
  /** Tree size the journal starts at: files up to it are durable and were left alone. */
  readonly from: number;
  readonly deleted: number;
  readonly emptied: number;
  readonly zeroed: number;
}

export async function simulatePowerLoss(paths: LogPaths, rand: () => number): Promise<PowerLoss | null> {
  const records = await readJournal(journalDir(paths));
  if (records.length === 0) return null;
  const batches = records.map((r) => parseBatchRecord(r.payload));
  const victims = new Set<string>([path.join(paths.tilesDir, 'checkpoint')]);
  for (const b of batches) {
    const end = b.start + b.entries.length;
    for (const t of changedTiles(b.start, end)) victims.add(path.join(paths.tilesDir, formatTilePath(t)));
    victims.add(historyPath(paths.historyDir, end));
    victims.add(notePath(paths.stateDir, end));
  }
  let deleted = 0;
  let emptied = 0;
  let zeroed = 0;
  for (const p of victims) {
    let size: number;
    try {
      size = (await fsp.stat(p)).size;
    } catch {
      continue;
    }
    const r = rand();
    if (r < 0.5) {
      await fsp.unlink(p);
      deleted++;
    } else if (r < 0.75) {
      await fsp.truncate(p, 0);
      emptied++;
    } else {
      await fsp.writeFile(p, Buffer.alloc(size));
      zeroed++;
    }
  }
  return { from: batches[0]!.start, deleted, emptied, zeroed };
}

/**
 * What a power loss may do to the hot index's commit slots, which the engine writes per batch
 * without a sync (src/log/sequencer.ts; the flush syncs them): the disk keeps an older commit
 * point. Writes `cp` (as the record of sequence number `seq`) into its slot, zeroes the other
 * slot (a write that never reached the disk, or was torn: its CRC fails) and the live record (a
 * reboot changes the boot id it carries), with the table watermark at zero (true of any table).
 */
export function rollBackCommitSlots(indexFile: string, cp: { treeSize: number; rootHash: Uint8Array; checkpointHash: Uint8Array }, seq: number): void {
  const fd = openSync(indexFile, 'r+');
  try {
    const rec = encodeStateRecord({ seq, treeSize: cp.treeSize, rootHash: cp.rootHash, checkpointHash: cp.checkpointHash, indexedSize: 0, entryCount: 0 });
    writeSync(fd, rec, 0, rec.length, stateSlotOffset(seq));
    writeSync(fd, Buffer.alloc(COMMIT_SLOT_BYTES), 0, COMMIT_SLOT_BYTES, stateSlotOffset(seq + 1));
    writeSync(fd, Buffer.alloc(LIVE_RECORD_BYTES), 0, LIVE_RECORD_BYTES, LIVE_RECORD_OFFSET);
  } finally {
    closeSync(fd);
  }
}

/**
 * The oldest commit slot a power loss can leave on disk: where the journal starts (the flush
 * syncs the slot before it lets segments go, and open before it drops a replayed journal).
 * Rolls the slots back to it (rollBackCommitSlots) with the note of that size from the
 * history, which was flushed before the segments that led to it were released. Returns the
 * size, or null when the journal is empty (the slot was synced before it was emptied).
 */
export async function rollBackCommitPointToJournalStart(paths: LogPaths): Promise<number | null> {
  const records = await readJournal(journalDir(paths));
  if (records.length === 0) return null;
  const first = parseBatchRecord(records[0]!.payload).start;
  const note = await fsp.readFile(historyPath(paths.historyDir, first));
  const indexFile = path.join(paths.stateDir, 'index.idx');
  const state = await fsp
    .readFile(indexFile)
    .then((b) => [0, 1].map((k) => decodeStateRecord(b.subarray(stateSlotOffset(k), stateSlotOffset(k) + COMMIT_SLOT_BYTES))));
  const seq = Math.max(1, ...state.map((s) => s?.seq ?? 0));
  const c = parseCheckpoint(parseNote(note.toString('utf8')).text);
  rollBackCommitSlots(indexFile, { treeSize: first, rootHash: c.rootHash, checkpointHash: sha256(note) }, seq);
  return first;
}
