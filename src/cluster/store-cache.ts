/**
 * This node's local directories for a tenant whose truth is the store: a cache, brought to the
 * store's checkpoint on every take-over (store-log.ts). A stale cache must never win over the
 * store, so a cache is kept only when it provably is a prefix of the store's chain:
 *
 *  - it was closed cleanly: its local journal holds no record. A Log's clean close flushes
 *    every committed tile and then releases the journal (log/flush.ts), so the tiles up to its
 *    commit point are durable; a crash, or a batch the store refused (the log stopped and kept
 *    its journal), leaves records, and such a cache is wiped;
 *  - it is complete: the note of its index's commit point is there (a take-over writes it
 *    last, once all it downloaded is durable);
 *  - its commit point's root is the store's at that size (the history note there, or the
 *    checkpoint itself), signed by the tenant's keys, and no larger than the store's checkpoint.
 *
 * Then only the tiles that changed between its size and the store's are downloaded, and the
 * hot index is caught up instead of rebuilt. Anything else is removed first and rebuilt from the
 * store: the tiles downloaded, the index rebuilt from the level-0 tiles while the full entry
 * bundles (which the index does not read) are still downloading.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { TlogError, ErrorCode, ioError } from '../errors.js';
import { equalHashes } from '../merkle/hash.js';
import type { NoteVerifier } from '../note/note.js';
import { DurableWriter, writeFileDurably, type FileWrite } from '../storage/durable.js';
import { readJournal } from '../storage/journal.js';
import type { ObjectStore } from '../storage/object-store.js';
import { createSecretFile, ensureSecretDir, readSecretFile } from '../storage/secret-file.js';
import { changedTiles, ENTRIES_LEVEL, TILE_WIDTH, type TileCoord } from '../tiles/layout.js';
import { CHECKPOINT_FILE, historyPath, type LogPaths } from '../tile-store/paths.js';
import { TileReader } from '../tile-store/tile-reader.js';
import { readLogConfig, writeLogConfig } from '../log/config-file.js';
import { notePath, notesDir, readCommittedNote, type CommitPoint } from '../log/commit-point.js';
import { KEY_FILES } from '../log/keys.js';
import { openIndexFile, type IndexOpenOptions } from '../log/open-index.js';
import { journalDir } from '../log/replay.js';
import { historyKey, tileKey } from './store-layout.js';
import { checkedStoreCheckpoint } from './store-sink.js';

/** Parallel GETs while downloading tiles (below the SDK's 50 sockets per client). */
const DOWNLOADS = 32;

/** A kept cache: the size and root of its commit point. */
export interface KeptCache {
  readonly treeSize: number;
  readonly rootHash: Uint8Array;
}

/**
 * The local cache's commit point, when the cache may be kept (see the file comment): closed
 * cleanly, of this origin, and its root at its size is the store's. `published` is the store's
 * checkpoint. Null: wipe it.
 */
export async function keptCache(
  paths: LogPaths,
  store: ObjectStore,
  published: CommitPoint,
  o: { readonly tenant: string; readonly origin: string; readonly verifiers: readonly NoteVerifier[]; readonly index: IndexOpenOptions },
): Promise<KeptCache | null> {
  let local: KeptCache;
  try {
    if ((await readLogConfig(paths.stateDir)).origin !== o.origin) return null;
    if ((await readJournal(journalDir(paths))).length > 0) return null;
    const index = openIndexFile(paths, o.index, false);
    try {
      const cp = index.commitPoint;
      if (cp.seq === 0) return null;
      local = { treeSize: cp.treeSize, rootHash: cp.rootHash };
      // The note of its commit point: a take-over writes it last, once every tile it downloaded
      // is durable (store-log.ts), so a take-over that failed or died half-way leaves none.
      await readCommittedNote(paths.stateDir, cp.treeSize, cp.rootHash, cp.checkpointHash);
    } finally {
      index.close();
    }
  } catch {
    // No cache, a damaged one, or one still open: nothing to keep.
    return null;
  }
  if (local.treeSize > published.treeSize) return null;
  let theirs = published;
  if (local.treeSize < published.treeSize) {
    const note = await store.get(historyKey(local.treeSize));
    if (!note) return null;
    theirs = checkedStoreCheckpoint(o.tenant, store.where, note.bytes, o.origin, o.verifiers);
    if (theirs.treeSize !== local.treeSize) return null;
  }
  return equalHashes(theirs.rootHash, local.rootHash) ? local : null;
}

/**
 * Makes a kept cache's private state current: its journal (empty) and keys replaced, so the
 * keys are the deployed ones. Its tiles, notes and index stay.
 */
export async function refreshKeptCache(paths: LogPaths, keysDir: string): Promise<void> {
  for (const d of [journalDir(paths), path.join(paths.stateDir, 'keys')]) {
    await fsp.rm(d, { recursive: true, force: true }).catch((e: unknown) => Promise.reject(ioError('remove', d, e)));
  }
  await copyKeys(paths, keysDir);
}

/** Moves a kept cache's index to the commit point the take-over reached (the Log catches its table up on open). */
export function moveIndexTo(paths: LogPaths, cp: CommitPoint, index: IndexOpenOptions): void {
  const idx = openIndexFile(paths, index, false);
  try {
    idx.writeCommitPoint({ treeSize: cp.treeSize, rootHash: cp.rootHash, checkpointHash: cp.noteHash });
  } finally {
    idx.close();
  }
}

async function copyKeys(paths: LogPaths, keysDir: string): Promise<void> {
  await ensureSecretDir(path.join(paths.stateDir, 'keys'));
  for (const f of Object.values(KEY_FILES)) {
    await createSecretFile(path.join(paths.stateDir, 'keys', f), await readSecretFile(path.join(keysDir, f)));
  }
}

/** Removes the tenant's local directories and makes its private state: keys (copied, 0600 in 0700) and log.json. */
export async function resetCache(paths: LogPaths, keysDir: string, origin: string): Promise<void> {
  for (const d of [paths.tilesDir, paths.historyDir, paths.stateDir]) {
    await fsp.rm(d, { recursive: true, force: true }).catch((e: unknown) => Promise.reject(ioError('remove', d, e)));
  }
  await fsp.mkdir(path.dirname(paths.stateDir), { recursive: true, mode: 0o700 });
  await ensureSecretDir(paths.stateDir);
  await copyKeys(paths, keysDir);
  await ensureSecretDir(notesDir(paths.stateDir));
  await writeLogConfig(paths.stateDir, { version: 1, origin, createdAt: new Date().toISOString() });
}

/**
 * The tiles and bundles the tree of `size` implies that the tree of `from` did not (all of them
 * from 0), in two parts: `full`, the full entry bundles left of the tree's right edge (nothing
 * reads them while the Log opens: the index is rebuilt from the level-0 tiles), and `first`,
 * everything else.
 */
export function tilesToDownload(from: number, size: number): { first: TileCoord[]; full: TileCoord[] } {
  const first: TileCoord[] = [];
  const full: TileCoord[] = [];
  const edgeBundle = Math.floor(size / TILE_WIDTH);
  for (const c of changedTiles(from, size)) (c.level === ENTRIES_LEVEL && c.index < edgeBundle && c.width === TILE_WIDTH ? full : first).push(c);
  return { first, full };
}

/**
 * Downloads `first`, then `rest`, into the tiles directory, through one set of parallel GETs
 * (the rest start while the last of the first are still in flight). `first` resolves once those
 * are durable, `all` once everything is; `size` is the store's checkpoint, for errors.
 */
export function downloadTiles(
  store: ObjectStore,
  paths: LogPaths,
  first: readonly TileCoord[],
  rest: readonly TileCoord[],
  size: number,
  tenant: string,
): { first: Promise<void>; all: Promise<number> } {
  const reader = new TileReader(paths.tilesDir);
  const writers = [new DurableWriter({ mode: 0o644 }), new DurableWriter({ mode: 0o644 })] as const;
  const coords = [...first, ...rest];
  let next = 0;
  let firstLeft = first.length;
  let firstDone!: () => void;
  const firstWritten = new Promise<void>((r) => (firstDone = r));
  if (firstLeft === 0) firstDone();
  const one = async (i: number) => {
    const c = coords[i]!;
    const obj = await store.get(tileKey(c));
    if (!obj)
      throw new TlogError(ErrorCode.corrupt, `tenant ${tenant}: ${store.where}${tileKey(c)} is missing, yet the store's checkpoint (size ${size}) implies it`);
    await writers[i < first.length ? 0 : 1].writeDeferred([{ path: reader.tilePath(c.level, c.index, c.width), data: obj.bytes, kind: 'replace' }]);
    if (i < first.length && --firstLeft === 0) firstDone();
  };
  // A failed GET stops every worker; the pool settles once none is left writing.
  let failed = false;
  const pool = Promise.allSettled(
    Array.from({ length: Math.min(DOWNLOADS, coords.length) }, async () => {
      while (!failed && next < coords.length) {
        try {
          await one(next++);
        } catch (e) {
          failed = true;
          throw e;
        }
      }
    }),
  ).then((rs) => {
    const bad = rs.find((r) => r.status === 'rejected');
    if (bad) throw bad.reason;
  });
  // A failed GET fails both (the first may be waiting for a part that will never come).
  const firstPart = Promise.race([firstWritten, pool]).then(() => writers[0].flush());
  const all = Promise.all([pool, firstPart]).then(async () => {
    await writers[1].flush();
    return coords.length;
  });
  firstPart.catch(() => {});
  all.catch(() => {});
  return { first: firstPart, all };
}

/**
 * Writes the files that make `note` the local commit point and published checkpoint: its note
 * in the private notes (the index rebuild finds the commit point there), the served checkpoint
 * and its history copy.
 */
export async function writeCommitted(paths: LogPaths, note: string, size: number, extra: FileWrite[] = []): Promise<void> {
  const bytes = Buffer.from(note, 'utf8');
  const writer = new DurableWriter({ mode: 0o644 });
  await writer.write([
    ...extra,
    { path: historyPath(paths.historyDir, size), data: bytes, kind: 'replace' },
    { path: path.join(paths.tilesDir, CHECKPOINT_FILE), data: bytes, kind: 'replace' },
  ]);
  await writeFileDurably(notePath(paths.stateDir, size), bytes, 0o600);
}
