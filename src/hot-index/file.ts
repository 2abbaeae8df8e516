/**
 * Creating and validating index files. A new file is always built under a temporary name and
 * renamed into place, so the index path only ever names a complete file.
 */
import { existsSync, renameSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { fsyncDirectory, openMappedFile, type MappedFile, type MappedFileBackend } from '../../native/index.js';
import { corrupt, IndexError } from './errors.js';
import {
  BUCKET_SIZE,
  COMMIT_SLOT_BYTES,
  COMMIT_SLOT_STRIDE,
  decodeHeader,
  decodeLiveRecord,
  decodeStateRecord,
  encodeHeader,
  encodeStateRecord,
  fileSizeFor,
  HEADER_FIELDS,
  LAYOUT_VERSION,
  LIVE_RECORD_BYTES,
  LIVE_RECORD_OFFSET,
  MAX_BUCKET_COUNT,
  pickStateRecord,
  SLOTS_PER_BUCKET,
  STATE_OFFSET,
  STATE_SIZE,
  TABLE_OFFSET,
  type Header,
  type LiveRecord,
  type StateRecord,
} from './layout.js';

/** The smallest power-of-two bucket count that holds `entries` below `maxLoad`. */
export function bucketsFor(entries: number, maxLoad: number): number {
  const need = Math.max(1, Math.ceil(entries / maxLoad / SLOTS_PER_BUCKET));
  let b = 1;
  while (b < need) b *= 2;
  if (b > MAX_BUCKET_COUNT) throw new RangeError(`index capacity for ${entries} entries is too large`);
  return b;
}

export function stateSlotOffset(seq: number): number {
  return STATE_OFFSET + (seq % 2) * COMMIT_SLOT_STRIDE;
}

/** Removes a leftover temporary file of a crashed writer (we hold the lock, so it is dead). */
export function removeStale(path: string): void {
  try {
    unlinkSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

/**
 * Creates a new, empty index file at tmpPath (which must not exist) with the header and one
 * commit slot written, and returns it mapped read-write. The table region is zero (allocated
 * by posix_fallocate on the mmap backend). Not durable: the caller fills it, then publish().
 * With `allocated`, tmpPath is an empty file made by allocateFile() (whose blocks may still be
 * on their way: what is missing is allocated here).
 */
export function createIndexFile(
  tmpPath: string,
  bucketCount: number,
  createdAtMs: number,
  state: StateRecord,
  backend: MappedFileBackend | undefined,
  allocated = false,
): MappedFile {
  const fileSize = fileSizeFor(bucketCount);
  const mf = allocated
    ? openMappedFile(tmpPath, { size: fileSize, backend })
    : openMappedFile(tmpPath, { create: true, exclusive: true, mode: 0o600, size: fileSize, backend });
  try {
    const header: Header = {
      layoutVersion: LAYOUT_VERSION,
      fileSize,
      createdAtMs,
      stateOffset: STATE_OFFSET,
      stateSize: STATE_SIZE,
      tableOffset: TABLE_OFFSET,
      tableSize: bucketCount * BUCKET_SIZE,
      bucketCount,
    };
    mf.writeBytes(0, encodeHeader(header));
    mf.writeBytes(stateSlotOffset(state.seq), encodeStateRecord(state));
  } catch (e) {
    mf.close();
    throw e;
  }
  return mf;
}

/**
 * Makes the file at tmpPath durable and renames it over path. Only the lock holder of path
 * (or a creator racing for a path that does not exist yet) may call this.
 */
export function publish(mf: MappedFile, tmpPath: string, path: string): void {
  // Why sync: the complete file must be on disk before its name can replace the old one, or a
  // power loss could leave the index name pointing at a half-written table.
  mf.sync();
  renameSync(tmpPath, path);
  // Why fsync the directory: the rename itself is not durable until the directory is.
  fsyncDirectory(dirname(path));
}

/** Creates an empty index at path (temp + rename) unless one appeared meanwhile. */
export function createEmptyIndex(path: string, bucketCount: number, backend: MappedFileBackend | undefined): void {
  const tmp = `${path}.${process.pid}.init.tmp`;
  removeStale(tmp);
  const zero = new Uint8Array(32);
  const mf = createIndexFile(
    tmp,
    bucketCount,
    Date.now(),
    {
      seq: 0,
      treeSize: 0,
      rootHash: zero,
      checkpointHash: zero,
      indexedSize: 0,
      entryCount: 0,
    },
    backend,
  );
  try {
    if (existsSync(path)) {
      removeStale(tmp); // lost a race with another creator: use theirs
      return;
    }
    publish(mf, tmp, path);
  } finally {
    mf.close();
  }
}

export interface LoadedState {
  header: Header;
  state: StateRecord;
  live: LiveRecord | undefined;
}

/**
 * Validates a mapped index file and reads its state. Never reads outside the file: the size
 * is checked before anything else, and the header's geometry must match the real size.
 * Throws IndexError(index_corrupt) with the reason.
 */
export function loadIndexFile(mf: MappedFile): LoadedState {
  if (mf.size < TABLE_OFFSET) throw corrupt(mf.path, `file too short (${mf.size} bytes)`);
  const header = decodeHeader(mf.readBytes(0, HEADER_FIELDS), mf.size);
  if (typeof header === 'string') throw corrupt(mf.path, header);
  const state = readState(mf);
  if (state === undefined) throw corrupt(mf.path, 'both commit slots are corrupt');
  if (state.entryCount > header.bucketCount * SLOTS_PER_BUCKET) throw corrupt(mf.path, 'entry count exceeds capacity');
  const live = decodeLiveRecord(mf.readBytes(LIVE_RECORD_OFFSET, LIVE_RECORD_BYTES));
  return { header, state, live };
}

/** The current commit slot, or undefined when both are bad. */
export function readState(mf: MappedFile): StateRecord | undefined {
  const a = decodeStateRecord(mf.readBytes(STATE_OFFSET, COMMIT_SLOT_BYTES));
  const b = decodeStateRecord(mf.readBytes(STATE_OFFSET + COMMIT_SLOT_STRIDE, COMMIT_SLOT_BYTES));
  return pickStateRecord(a, b);
}

export function missing(path: string): IndexError {
  return new IndexError('index_missing', path, 'no such file');
}
