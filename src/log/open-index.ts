/**
 * The log's hot index (hot-index/: commit slots and dedup table), as the engine opens and keeps
 * it: opened with the commit point it holds, and the note of that commit point; caught up when
 * it trails the log after a crash; rebuilt from the tiles when it is missing or damaged (never
 * trusted, never a crash), the commit point then found among the signed notes; checked
 * against the tiles (`tlog index check`).
 */
import path from 'node:path';
import { TlogError, ErrorCode } from '../errors.js';
import { IndexError, initialCapacityFor, openIndex, rebuild, type CommitPoint as IndexCommitPoint, type HotIndex } from '../hot-index/index.js';
import type { Logger } from '../logger.js';
import { equalHashes, leafHash } from '../merkle/hash.js';
import { openNote, type NoteVerifier } from '../note/note.js';
import { readIfExists } from '../storage/durable.js';
import { freeBytes } from '../storage/space.js';
import type { LogPaths } from '../tile-store/paths.js';
import { leafHashesFromTiles, type TileReader } from '../tile-store/tile-reader.js';
import { ENTRIES_LEVEL, TILE_WIDTH, changedTiles } from '../tiles/layout.js';
import { TileTree } from '../tiles/tree.js';
import { commitPointOf, listNoteSizes, notePath, readCommittedNote, type CommitPoint } from './commit-point.js';

export const INDEX_FILE = 'index.idx';

export interface IndexOpenOptions {
  readonly readOnly: boolean;
  readonly logger: Logger;
  /** Entries a new index is sized for. */
  readonly indexCapacity?: number;
  readonly onRebuildProgress?: (done: number, total: number) => void;
  readonly backend?: 'mmap' | 'plain';
}

export function indexPath(paths: LogPaths): string {
  return path.join(paths.stateDir, INDEX_FILE);
}

/** Maps the index's own errors onto the log's. */
function mapIndexError(paths: LogPaths, e: unknown): unknown {
  if (e instanceof IndexError && e.code === 'locked') {
    return new TlogError(ErrorCode.locked, `log ${paths.tenant} is already open for writing by another process (lock on ${e.path})`, { cause: e });
  }
  return e;
}

export function openIndexFile(paths: LogPaths, opts: IndexOpenOptions, create: boolean): HotIndex {
  try {
    return openIndex(indexPath(paths), {
      mode: opts.readOnly ? 'readOnly' : 'writer',
      create,
      // A new file is sized to the disk it is on (a small disk gets a small file that grows).
      initialCapacity: opts.indexCapacity ?? (create ? initialCapacityFor(freeBytes(paths.stateDir)) : undefined),
      backend: opts.backend,
      // The table is synced every 4M leaves (on a thread) and on close; after a crash the engine
      // replays the rest from the bundles, so syncing more often would only cost write-back.
      checkpointEvery: 1 << 22,
      onWarning: (m) => opts.logger.warn({ tenant: paths.tenant, index: indexPath(paths) }, m),
    });
  } catch (e) {
    throw mapIndexError(paths, e);
  }
}

/**
 * Checks that the tiles and bundles of leaves [from, to) are all on disk and hash to the tree
 * of size `to` with root `root`, starting from the tree of size `from`. Used to adopt a signed
 * note the damaged index cannot vouch for.
 */
async function rangeIsComplete(reader: TileReader, from: number, to: number, root: Uint8Array): Promise<boolean> {
  try {
    const tree = TileTree.load(from, (l, i) => reader.readTileSync(l, i, from));
    const produced = new Map<string, Uint8Array>();
    tree.onFull = (t) => produced.set(`${t.level}/${t.index}`, Uint8Array.from(t.bytes()));
    for (let b = Math.floor(from / TILE_WIDTH); b * TILE_WIDTH < to; b++) {
      const entries = await reader.readBundle(b, to);
      for (let i = Math.max(from - b * TILE_WIDTH, 0); i < entries.length; i++) tree.append(leafHash(entries[i]!));
    }
    for (const t of changedTiles(from, to)) {
      if (t.level === ENTRIES_LEVEL) continue; // read above
      const want = produced.get(`${t.level}/${t.index}`) ?? tree.edgeTile(t.level)!.bytes(t.width);
      const got = await reader.readTile(t.level, t.index, to);
      if (!equalHashes(got, want.subarray(0, t.width * 32))) return false;
    }
    return equalHashes(tree.root(), root);
  } catch {
    return false;
  }
}

/**
 * Finds the commit point when the index cannot give it: the newest signed note in the private
 * notes directory whose tiles are all durable and consistent, no older than the published
 * checkpoint. Notes of batches that never committed may have incomplete tiles: those fail the
 * check and are skipped.
 */
async function commitPointFromNotes(
  paths: LogPaths,
  reader: TileReader,
  verifiers: readonly NoteVerifier[],
  published: CommitPoint | null,
): Promise<CommitPoint> {
  const floor = published?.treeSize ?? 0;
  for (const size of await listNoteSizes(paths.stateDir)) {
    if (size < floor) break;
    const data = await readIfExists(notePath(paths.stateDir, size));
    if (!data) continue;
    let cp: CommitPoint;
    try {
      cp = commitPointOf(data.toString('utf8'));
      openNote(cp.note, verifiers);
    } catch {
      continue;
    }
    if (published && size === floor) {
      if (equalHashes(cp.rootHash, published.rootHash)) return cp;
      continue;
    }
    const base = published ?? null;
    if (!base) {
      if (await rangeIsComplete(reader, 0, size, cp.rootHash)) return cp;
    } else if (await rangeIsComplete(reader, base.treeSize, size, cp.rootHash)) return cp;
  }
  if (published) return published;
  throw new TlogError(ErrorCode.corrupt, `log ${paths.tenant}: the index is unusable and no signed note can replace its commit point: refusing to start`);
}

export interface OpenedState {
  readonly index: HotIndex;
  readonly committed: CommitPoint;
}

/**
 * Opens the index and returns it with the commit point. A damaged or missing index is rebuilt
 * from the tiles (writers only); an index that trails the commit point is caught up from the
 * tiles. `published` is the published checkpoint, if any, as a last resort for the commit point.
 */
export async function openIndexAndCommitPoint(
  paths: LogPaths,
  reader: TileReader,
  verifiers: readonly NoteVerifier[],
  published: CommitPoint | null,
  opts: IndexOpenOptions,
  /**
   * Writers: rebuilds files a crash lost from the journal, given the index's commit point (null
   * when the index cannot give one), before the commit point's note is read. Returns the commit
   * point to move to when it adopted journaled batches beyond it.
   */
  replay?: (c: IndexCommitPoint | null) => Promise<IndexCommitPoint | null>,
  /** The commit point's note from the journal, for a reader when the note file is not written yet. */
  journaledNote?: (c: IndexCommitPoint) => Promise<CommitPoint | null>,
): Promise<OpenedState> {
  let index: HotIndex | null = null;
  let why = '';
  try {
    index = openIndexFile(paths, opts, false);
  } catch (e) {
    if (!(e instanceof IndexError) || e.code === 'locked') throw mapIndexError(paths, e);
    why = e.code === 'index_missing' ? 'the index file is missing' : `the index is damaged (${e.reason})`;
  }
  if (index && index.commitPoint.seq > 0) {
    let c = index.commitPoint;
    try {
      const adopted = await replay?.(c);
      if (adopted) {
        index.writeCommitPoint(adopted);
        c = index.commitPoint;
      }
      let committed: CommitPoint;
      try {
        committed = await readCommittedNote(paths.stateDir, c.treeSize, c.rootHash, c.checkpointHash);
      } catch (e) {
        // A live writer keeps the newest notes only in its journal until its next flush: a
        // reader finds the commit point's note there.
        // (Or, if the writer flushed in between, in the note file after all.)
        const fromJournal =
          (await journaledNote?.(c)) ??
          (journaledNote ? await readCommittedNote(paths.stateDir, c.treeSize, c.rootHash, c.checkpointHash).catch(() => null) : null);
        if (!fromJournal) throw e;
        committed = fromJournal;
      }
      return { index, committed };
    } catch (e) {
      index.close();
      throw e;
    }
  }
  if (index) {
    index.close();
    why = 'the index has no commit point';
  }
  if (opts.readOnly) throw new TlogError(ErrorCode.corrupt, `log ${paths.tenant}: ${why}; open it for writing (or run \`tlog index rebuild\`) to rebuild it`);
  await replay?.(null);
  const committed = await commitPointFromNotes(paths, reader, verifiers, published);
  opts.logger.warn({ tenant: paths.tenant, treeSize: committed.treeSize, reason: why }, `rebuilding the index: ${why}`);
  await rebuildIndex(paths, reader, committed, opts);
  return { index: openIndexFile(paths, opts, false), committed };
}

/** Writes a fresh index for `committed` from the level-0 tiles (durable on return). */
export async function rebuildIndex(paths: LogPaths, reader: TileReader, committed: CommitPoint, opts: IndexOpenOptions): Promise<void> {
  await rebuild(indexPath(paths), leafHashesFromTiles(reader, 0, committed.treeSize), {
    commitPoint: { treeSize: committed.treeSize, rootHash: committed.rootHash, checkpointHash: committed.noteHash },
    expectedLeaves: Math.max(committed.treeSize * 2, opts.indexCapacity ?? 0, 1024),
    onProgress: (n) => opts.onRebuildProgress?.(n, committed.treeSize),
    backend: opts.backend,
  });
}

/** Indexes the committed leaves the index has not seen (it may trail the log after a crash). */
export async function catchUpIndex(index: HotIndex, reader: TileReader, treeSize: number): Promise<number> {
  const from = index.indexedSize;
  if (from >= treeSize) return 0;
  let next = from;
  for await (const chunk of leafHashesFromTiles(reader, from, treeSize)) {
    index.insertMany(chunk, next);
    next += chunk.length / 32;
  }
  return treeSize - from;
}

/**
 * Checks the hot index against the log: the table's own structure, then every committed leaf
 * looked up by its hash must give its own index or an earlier one holding the same hash.
 * Returns the problems found (empty when the index is sound). O(tree size).
 */
export async function checkIndex(
  index: HotIndex,
  reader: TileReader,
  treeSize: number,
  leafHashAt: (index: number) => Promise<Uint8Array>,
  onProgress?: (done: number, total: number) => void,
): Promise<string[]> {
  const structural = index.check();
  const problems = [...structural.problems];
  let i = 0;
  for await (const chunk of leafHashesFromTiles(reader, 0, treeSize)) {
    for (let off = 0; off < chunk.length; off += 32, i++) {
      const found = index.lookup(chunk, off);
      if (found === i) continue;
      if (found < 0) problems.push(`leaf ${i} is missing from the index`);
      else if (found > i) problems.push(`leaf ${i} maps to the later index ${found}`);
      else if (!equalHashes(await leafHashAt(found), chunk.subarray(off, off + 32)))
        problems.push(`leaf ${i} maps to index ${found}, which holds another hash`);
      if (problems.length >= 100) return problems;
    }
    onProgress?.(i, treeSize);
  }
  return problems;
}
