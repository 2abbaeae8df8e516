/**
 * Recovery from the journal. A batch's tiles, bundles, private note and checkpoint copies are
 * written without fsync; its journal record (entries + signed note) is durable before the commit
 * point moves, and the files are flushed later in bulk. After a crash (power loss, not just a
 * killed process) those files may be missing, empty or torn. Replay rebuilds them from the
 * records, in order, up to the commit point, and makes them durable.
 *
 * Records beyond the commit point may have been acknowledged (the commit slot is written
 * without a sync, so a power loss can take it back to where the last flush synced it) or not
 * (the process died between the record's write and the commit point's), but their checkpoints
 * are signed and durable: they are adopted, and the commit point moves to the last of them, so
 * that no other root is ever signed at their sizes. The journal is dropped once replay has made
 * everything durable.
 */
import path from 'node:path';
import { TlogError, ErrorCode } from '../errors.js';
import type { Logger } from '../logger.js';
import type { CommitPoint as IndexCommitPoint } from '../hot-index/index.js';
import { equalHashes, leafHash, sha256 } from '../merkle/hash.js';
import { openNote, type NoteVerifier } from '../note/note.js';
import { DurableWriter, readIfExists, type FileWrite } from '../storage/durable.js';
import type { JournalRecord } from '../storage/journal.js';
import { commitPointOf, notePath } from './commit-point.js';
import { Edge } from './edge.js';
import { parseBatchRecord } from './journal-record.js';
import { historyPath, type LogPaths } from '../tile-store/paths.js';
import type { TileReader } from '../tile-store/tile-reader.js';
import { TILE_WIDTH, tileWidthInTree } from '../tiles/layout.js';

export interface ReplayResult {
  /** Records applied. */
  readonly batches: number;
  /** The tree size the replayed records reached (0 when there were none). */
  readonly treeSize: number;
  /** Files that were missing or held other bytes, now rewritten. */
  readonly repaired: number;
  /** The new commit point when records beyond the old one were adopted, else null. */
  readonly adopted: IndexCommitPoint | null;
}

/**
 * Replays every journal record, in order: those up to `committed`, then those beyond it
 * (adopted, see above). Every file each record implies is compared with the disk and rewritten durably where it differs;
 * the note of the last applied record is written to the private notes directory.
 *
 * Refuses (a corrupt-state error, thrown before the offending record writes anything) when:
 * the journal starts beyond the commit point; the tiles up to its first record are unreadable;
 * a record does not start where the tree is; a record's note is not signed by this log; a record
 * does not hash to its own checkpoint; the record ending at the commit point holds another
 * checkpoint; a record spans the commit point (none ends there).
 */
export async function replayJournal(p: {
  paths: LogPaths;
  reader: TileReader;
  records: readonly JournalRecord[];
  committed: IndexCommitPoint | null;
  verifiers: readonly NoteVerifier[];
  logger: Logger;
}): Promise<ReplayResult> {
  const { paths, reader, records, committed } = p;
  const batches = records.map((r) => parseBatchRecord(r.payload));
  if (batches.length === 0) return { batches: 0, treeSize: 0, repaired: 0, adopted: null };
  const first = batches[0]!.start;
  if (committed && first > committed.treeSize) {
    throw new TlogError(ErrorCode.corrupt, `journal of ${paths.tenant} starts at ${first}, beyond the commit point (size ${committed.treeSize})`);
  }
  // Segments are deleted oldest first and only once their files were flushed: the tree up to
  // the first record's start is durable on disk.
  let edge: Edge;
  try {
    edge = Edge.load(reader, first);
  } catch (e) {
    throw new TlogError(ErrorCode.corrupt, `journal of ${paths.tenant} starts at ${first}, but the tiles up to there are unreadable: ${(e as Error).message}`);
  }
  const writer = new DurableWriter({ mode: 0o644 });
  let repaired = 0;
  let applied = 0;
  let lastNote: string | null = null;
  const last = batches[batches.length - 1]!;
  const finalSize = last.start + last.entries.length;
  for (const b of batches) {
    if (b.start !== edge.size) {
      throw new TlogError(ErrorCode.corrupt, `journal of ${paths.tenant}: a record starts at ${b.start} where the tree is at ${edge.size}`);
    }
    const end = b.start + b.entries.length;
    const ext = edge.extend(
      b.entries,
      b.entries.map((e) => leafHash(e)),
    );
    let cp;
    try {
      openNote(b.note, p.verifiers);
      cp = commitPointOf(b.note);
    } catch (e) {
      throw new TlogError(ErrorCode.corrupt, `journal of ${paths.tenant}: the note of the record at ${b.start} is not this log's: ${(e as Error).message}`);
    }
    if (cp.treeSize !== end || !equalHashes(cp.rootHash, ext.rootHash)) {
      throw new TlogError(ErrorCode.corrupt, `journal of ${paths.tenant}: the record at ${b.start} does not hash to its own checkpoint`);
    }
    // Checked before this record writes anything: a refusal leaves its files as they are.
    if (committed && end === committed.treeSize && !equalHashes(sha256(Buffer.from(b.note, 'utf8')), committed.checkpointHash)) {
      throw new TlogError(
        ErrorCode.corrupt,
        `journal of ${paths.tenant}: the record at the commit point (size ${committed.treeSize}) holds another checkpoint`,
      );
    }
    if (committed && b.start < committed.treeSize && end > committed.treeSize) {
      throw new TlogError(ErrorCode.corrupt, `journal of ${paths.tenant}: no record ends at the commit point (size ${committed.treeSize})`);
    }
    const noteBytes = Buffer.from(b.note, 'utf8');
    // A superseded partial the crash lost stays lost: the log had collected it or would have
    // (tile-store/partials.ts), and serves it from the prefix of a wider file. Those the final
    // tree implies are rebuilt, and any still on disk is checked (a crash may have torn it).
    const optional = new Set<string>();
    const wanted: FileWrite[] = [
      ...ext.files.map((f) => {
        const p = reader.tilePath(f.coord.level, f.coord.index, f.coord.width);
        if (f.coord.width < TILE_WIDTH && tileWidthInTree(f.coord.level, f.coord.index, finalSize) !== f.coord.width) optional.add(p);
        return { path: p, data: f.data, kind: 'replace' as const };
      }),
      // The history keeps every checkpoint the log published (the archive a monitor audits).
      { path: historyPath(paths.historyDir, end), data: noteBytes, kind: 'replace' },
    ];
    const writes: FileWrite[] = [];
    const same: string[] = [];
    for (const w of wanted) {
      const onDisk = await readIfExists(w.path);
      if (onDisk && Buffer.compare(onDisk, w.data) === 0) same.push(w.path);
      else if (onDisk || !optional.has(w.path)) writes.push(w);
    }
    // Right bytes may still be only in the page cache (the process died, the machine did not):
    // they must be durable too before the journal that could redo them is dropped.
    writer.adopt(same);
    // The records are the truth for these files: they were never durable, so whatever the crash
    // left at their paths (nothing, zeros, a torn prefix) is replaced.
    await writer.write(writes);
    repaired += writes.length;
    applied++;
    lastNote = b.note;
  }
  if (lastNote !== null) {
    await writer.write([{ path: notePath(paths.stateDir, edge.size), data: Buffer.from(lastNote, 'utf8'), kind: 'replace', mode: 0o600 }]);
  }
  await writer.flush();
  if (repaired > 0) p.logger.warn({ tenant: paths.tenant, treeSize: edge.size, repaired }, 'rebuilt files lost in a crash from the journal');
  let adopted: IndexCommitPoint | null = null;
  if (committed && lastNote !== null && edge.size > committed.treeSize) {
    adopted = { treeSize: edge.size, rootHash: edge.root(), checkpointHash: sha256(Buffer.from(lastNote, 'utf8')), seq: 0 };
    p.logger.warn(
      { tenant: paths.tenant, from: committed.treeSize, treeSize: edge.size },
      'adopted journaled batches beyond the commit point (signed and durable, acknowledged or not)',
    );
  }
  return { batches: applied, treeSize: edge.size, repaired, adopted };
}

export function journalDir(paths: LogPaths): string {
  return path.join(paths.stateDir, 'journal');
}
