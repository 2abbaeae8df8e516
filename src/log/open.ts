/**
 * Opening a log (created by create.ts), and recovery on open. Gives the Log facade (log.ts) its parts:
 * keys, hot index, journal, tile store, publisher, partial-tile collector, and the commit point
 * with the right edge of its tree.
 *
 * A writer that opens a log after a crash: rebuilds from the journal whatever files the crash
 * lost (replay.ts), opens the hot index and finds the commit point (open-index.ts: the index
 * may trail, be missing or be damaged), refuses a published checkpoint that contradicts it,
 * deletes what batches that never committed left behind (notes, tiles), catches the index up,
 * publishes again if the crash came between commit and publish, and collects leftover partials.
 * A reader (opts.readOnly) takes no lock and changes nothing.
 */
import path from 'node:path';
import { TlogError, ErrorCode } from '../errors.js';
import type { CommitPoint as IndexCommitPoint, HotIndex } from '../hot-index/index.js';
import { silentLogger } from '../logger.js';
import { equalHashes } from '../merkle/hash.js';
import { parseCheckpoint } from '../note/checkpoint.js';
import { openNote, parseNote, type NoteVerifier } from '../note/note.js';
import { readIfExists, writeFileDurably } from '../storage/durable.js';
import { Journal, readJournal } from '../storage/journal.js';
import { PartialTiles } from '../tile-store/partials.js';
import { CHECKPOINT_FILE, type LogPaths } from '../tile-store/paths.js';
import { TileStore } from '../tile-store/tile-store.js';
import { commitPointOf, discardNotesBeyond, type CommitPoint } from './commit-point.js';
import { readLogConfig, type LogConfig } from './config-file.js';
import { Edge } from './edge.js';
import { batchRecordStart, parseBatchRecord } from './journal-record.js';
import { loadLogKeys, type LogKeys } from './keys.js';
import { catchUpIndex, openIndexAndCommitPoint, type IndexOpenOptions } from './open-index.js';
import { Publisher } from './publisher.js';
import { journalDir, replayJournal } from './replay.js';
import { widenRecoverySpan } from './recovery-span.js';
import { settingsOf, type LogOptions, type LogSettings } from './settings.js';
import { sharedSignPool } from './sign-pool.js';

/** What a Log is made of, once created or opened. */
export interface LogParts {
  readonly paths: LogPaths;
  readonly config: LogConfig;
  readonly keys: LogKeys;
  readonly index: HotIndex;
  /** The write-ahead journal (null for a read-only log). */
  readonly journal: Journal | null;
  readonly store: TileStore;
  readonly publisher: Publisher;
  /** Which partial tiles stay on disk (null for a read-only log, which deletes nothing). */
  readonly partials: PartialTiles | null;
  /** The commit point the log opens at, and the right edge of its tree. */
  readonly committed: CommitPoint;
  readonly edge: Edge;
  readonly settings: LogSettings;
}

/**
 * Opens an existing log. A writer takes the log's lock (a second writer fails at once), brings
 * the index up to date (rebuilding it if damaged) and recovers the files to the commit point.
 * A reader (opts.readOnly) takes no lock and changes nothing.
 */
export async function openLog(paths: LogPaths, opts: LogOptions): Promise<LogParts> {
  const config = await readLogConfig(paths.stateDir);
  const keys = await loadLogKeys(paths.stateDir, config.origin, opts.clock, offloadOf(opts));
  const logger = opts.logger ?? silentLogger;
  const readOnly = opts.readOnly ?? false;
  const settings = settingsOf(opts);
  const store = new TileStore(paths, opts.durable);
  const reader = store.reader;
  let publishedBytes = await readIfExists(path.join(paths.tilesDir, CHECKPOINT_FILE));
  // In 'cosigned' mode the published note carries witness lines: parse it for size and root only.
  const verifiers = verifiersOf(keys);
  let published: CommitPoint | null = null;
  if (publishedBytes) {
    try {
      published = checkedPublished(paths, publishedBytes.toString('utf8'), config.origin, verifiers);
    } catch (e) {
      // The checkpoint is replaced without fsync each batch (the journal holds its note): a
      // machine crash may leave it empty, zeroed or cut. Only then, and only when the journal
      // shows such a crash is possible, is it treated as missing and published again. A
      // well-formed note that is not ours is still refused.
      if (readOnly || isWellFormedNote(publishedBytes) || (await readJournal(journalDir(paths))).length === 0) throw e;
      logger.warn({ tenant: paths.tenant }, 'the published checkpoint was torn by a crash; it will be published again');
      publishedBytes = null;
    }
  }
  const indexOpts: IndexOpenOptions = {
    readOnly,
    logger,
    indexCapacity: opts.indexCapacity,
    onRebuildProgress: opts.onRebuildProgress,
    backend: opts.indexBackend,
  };
  // A writer first rebuilds from the journal whatever files a crash lost (replay.ts).
  /** Where the journal replayed on open starts: only tiles from there on can hold partials to collect. */
  let journalFrom: number | null = null;
  const replay = readOnly
    ? undefined
    : async (c: IndexCommitPoint | null) => {
        const records = await readJournal(journalDir(paths));
        if (records.length === 0) return null;
        journalFrom = batchRecordStart(records[0]!.payload);
        return (await replayJournal({ paths, reader, records, committed: c, verifiers, logger })).adopted;
      };
  const journaledNote = async (c: IndexCommitPoint) => {
    for (const r of (await readJournal(journalDir(paths))).reverse()) {
      const note = parseBatchRecord(r.payload).note;
      const cp = commitPointOf(note);
      if (cp.treeSize === c.treeSize && equalHashes(cp.noteHash, c.checkpointHash)) return cp;
    }
    return null;
  };
  const { index, committed: cp } = await openIndexAndCommitPoint(paths, reader, verifiers, published, indexOpts, replay, journaledNote);
  let journal: Journal | null = null;
  try {
    journal = readOnly ? null : await Journal.open(journalDir(paths), opts.journal);
    const publisher = new Publisher(paths, store.files, verifiers, opts.publishMode ?? 'each', published ?? cp);
    // The commit point's note is most often the published one, byte for byte: verified above
    // already (each verification is an Ed25519 and an ML-DSA-44 signature check, a fifth of
    // what opening a log costs).
    if (published?.note !== cp.note) verifyOwnNote(cp.note, verifiers, `commit point of ${paths.tenant}`);
    if (published) checkPublished(published, cp);
    if (!readOnly) {
      await discardNotesBeyond(paths.stateDir, cp.treeSize);
      // As far as any run of this log may have written, not only this run's settings.
      const span = await widenRecoverySpan(paths.stateDir, settings.recoverySpan);
      const removed = await store.discardBeyond(cp.treeSize, span);
      if (removed.length > 0) {
        logger.warn({ tenant: paths.tenant, treeSize: cp.treeSize, removed: removed.length }, 'discarded uncommitted tiles beyond the commit point');
      }
    }
    const edge = Edge.loadCommitted(reader, cp.treeSize, cp.rootHash, paths.tenant);
    let partials: PartialTiles | null = null;
    if (!readOnly) {
      const replayed = await catchUpIndex(index, reader, cp.treeSize);
      if (replayed > 0) logger.info({ tenant: paths.tenant, replayed }, 'index caught up with the log');
      // A crash between moving the commit point and publishing leaves the published
      // checkpoint behind: publishing is idempotent, so do it again.
      await publisher.recover(cp, publishedBytes ? publishedBytes.toString('utf8') : null);
      partials = await PartialTiles.open(store.partialsIO(logger), cp.treeSize, publisher.published.treeSize, journalFrom ?? cp.treeSize);
      // Everything the old journal could redo is durable now (replay flushed it), but for the
      // commit slot: the one read may only have been in the page cache (the killed writer moves
      // it without a sync), and a power loss must not take it back behind the files once the
      // journal that could redo them is gone.
      await index.syncCommitPoint();
      await journal!.dropReplayed();
      // Written once the log exists (a crash before may have kept it from being written).
      const vkeys = path.join(paths.historyDir, 'vkeys');
      if (!(await readIfExists(vkeys))) await writeFileDurably(vkeys, [keys.ed25519.vkey, keys.mldsa44.vkey].join('\n') + '\n');
    }
    return { paths, config, keys, index, journal, store, publisher, partials, committed: cp, edge, settings };
  } catch (e) {
    await journal?.close();
    index.close();
    throw e;
  }
}

export function verifiersOf(keys: LogKeys) {
  return [keys.ed25519.verifier, keys.mldsa44.verifier];
}

/** Parses and verifies the published checkpoint; anything else is a refusal to start. */
function checkedPublished(paths: LogPaths, note: string, origin: string, verifiers: readonly NoteVerifier[]): CommitPoint {
  let cp: CommitPoint;
  try {
    cp = commitPointOf(note);
    openNote(note, verifiers);
  } catch (e) {
    throw new TlogError(ErrorCode.corrupt, `published checkpoint of ${paths.tenant} is unreadable or not signed by this log: ${(e as Error).message}`);
  }
  if (parseCheckpoint(parseNote(note).text).origin !== origin) {
    throw new TlogError(ErrorCode.corrupt, `published checkpoint of ${paths.tenant} has another origin than ${origin}`);
  }
  return cp;
}

function verifyOwnNote(note: string, verifiers: readonly NoteVerifier[], what: string): void {
  try {
    openNote(note, verifiers);
  } catch (e) {
    throw new TlogError(ErrorCode.corrupt, `${what} is not signed by this log's keys: ${(e as Error).message}`);
  }
}

/** Refuses to start when the published checkpoint is ahead of, or contradicts, the commit point. */
function checkPublished(published: CommitPoint, cp: CommitPoint): void {
  if (published.treeSize > cp.treeSize) {
    throw new TlogError(
      ErrorCode.corrupt,
      `published checkpoint (size ${published.treeSize}) is ahead of the commit point (size ${cp.treeSize}): refusing to start`,
    );
  }
  if (published.treeSize === cp.treeSize && !equalHashes(published.rootHash, cp.rootHash)) {
    throw new TlogError(ErrorCode.corrupt, `published checkpoint contradicts the commit point at size ${cp.treeSize}: refusing to start`);
  }
}

/** Checkpoints are signed off the main thread unless a caller asks for inline signing. */
export function offloadOf(opts: LogOptions) {
  if (opts.signPool === 'inline') return undefined;
  return (opts.signPool ?? sharedSignPool()).offload;
}

function isWellFormedNote(bytes: Uint8Array): boolean {
  try {
    parseNote(Buffer.from(bytes).toString('utf8'));
    return true;
  } catch {
    return false;
  }
}
