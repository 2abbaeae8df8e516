/**
 * Rebuilding the hot index from the log, for when open() reports `index_corrupt` or the file
 * is gone: a fresh index is written under a temporary name and renamed over the old one, so a
 * crash during the rebuild leaves the old file (or nothing) in place, never half an index.
 */
import { existsSync, renameSync } from 'node:fs';
import { dirname } from 'node:path';
import { fsyncDirectory, lockFileExclusive, LOCK_HELD, NativeError, type FileLock, type LockKind, type MappedFileBackend } from '../../native/index.js';
import { IndexError } from './errors.js';
import { removeStale } from './file.js';
import { HotIndex, type CommitPoint } from './hot-index.js';

export interface RebuildOptions {
  /** The commit point the rebuilt index starts from (the log's last durable signed tree). */
  commitPoint: Omit<CommitPoint, 'seq'>;
  /** Leaves expected, to size the table once instead of growing it. */
  expectedLeaves?: number;
  /** Called after each chunk with the number of leaves indexed so far. */
  onProgress?: (indexed: number) => void;
  maxLoad?: number;
  backend?: MappedFileBackend;
  lockKind?: LockKind;
}

export interface RebuildResult {
  indexedSize: number;
  entryCount: number;
  capacity: number;
}

/**
 * Writes a new index at path holding the leaf hashes given in order from leaf 0 (chunks of
 * n * 32 bytes, any n), with opts.commitPoint as its commit point. Leaves beyond the commit
 * point are refused; fewer leaves are fine (the engine replays the rest after opening).
 * Takes the writer lock on an existing file first, so it fails with `locked` while a writer
 * runs. Durable on return (table and commit point synced, rename and directory fsynced).
 */
export async function rebuild(path: string, leafHashes: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, opts: RebuildOptions): Promise<RebuildResult> {
  let guard: FileLock | undefined;
  if (existsSync(path)) {
    try {
      guard = lockFileExclusive(path, { kind: opts.lockKind });
    } catch (e) {
      if (e instanceof NativeError && e.code === LOCK_HELD) throw new IndexError('locked', path, `locked by another writer (${e.message})`, { cause: e });
      throw e;
    }
  }
  const tmp = `${path}.rebuild.tmp`;
  try {
    removeStale(tmp);
    removeStale(`${tmp}.grow.tmp`);
    const index = HotIndex.open(tmp, {
      mode: 'writer',
      initialCapacity: opts.expectedLeaves,
      maxLoad: opts.maxLoad,
      // One table sync at the end is enough: until the rename nothing depends on this file.
      checkpointEvery: 0,
      backend: opts.backend,
      lockKind: opts.lockKind,
    });
    let result: RebuildResult;
    try {
      index.writeCommitPoint(opts.commitPoint);
      let next = 0;
      for await (const chunk of leafHashes) {
        index.insertMany(chunk, next);
        next += chunk.length / 32;
        opts.onProgress?.(next);
      }
      // close() syncs the table and moves the durable watermark to the end.
      result = { indexedSize: index.indexedSize, entryCount: index.entryCount, capacity: index.capacity };
    } finally {
      index.close();
    }
    renameSync(tmp, path);
    // Why fsync the directory: make the rename, and so the rebuilt index, durable.
    fsyncDirectory(dirname(path));
    return result;
  } catch (e) {
    removeStale(tmp);
    throw e;
  } finally {
    guard?.release();
  }
}
