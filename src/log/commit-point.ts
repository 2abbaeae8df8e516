/**
 * The commit point: the checkpoint recovery trusts over anything else. The log keeps three
 * "current" checkpoints, named so everywhere:
 *  - committed (the commit point): the newest checkpoint whose batch is journaled and recorded
 *    in the hot index; the log's tree ends there, and reads are served against it.
 *  - answered: the newest checkpoint appends were answered with: committed, and its history
 *    copy (in 'each' mode also the published checkpoint) written.
 *  - published: the checkpoint served at tiles/<tenant>/checkpoint: in 'each' mode the answered
 *    one, in 'cosigned' mode the cosigner's latest (publisher.ts).
 * Neither of the other two is ever ahead of committed; between batches in 'each' mode all three
 * are the same checkpoint.
 *
 * The commit point moves once the batch's journal record is durable (its tiles are then
 * recoverable byte for byte), and before its checkpoint is published. Where it lives: the size,
 * root and note hash in the hot index's two commit slots (written alternately, each with a CRC,
 * per batch without a sync; the flush syncs them before it lets the journal go, so a power loss
 * never takes them back behind the journal's start: flush.ts); the note bytes in a private file `<state>/<tenant>/notes/<size>`:
 * the note of every batch is in the write-ahead journal, and the note file of the size
 * committed at each flush is written then; replay writes the newest one from the journal after
 * a crash.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { isCanonicalDecimal } from '../decimal.js';
import { TlogError, ErrorCode, ioError } from '../errors.js';
import { equalHashes, sha256 } from '../merkle/hash.js';
import { parseCheckpoint, type Checkpoint } from '../note/checkpoint.js';
import { parseNote } from '../note/note.js';
import { readIfExists } from '../storage/durable.js';

export interface CommitPoint {
  readonly treeSize: number;
  readonly rootHash: Uint8Array;
  /** The signed checkpoint note, exactly as published. */
  readonly note: string;
  /** SHA-256 of the note bytes. */
  readonly noteHash: Uint8Array;
}

export function commitPointOf(note: string): CommitPoint {
  const c: Checkpoint = parseCheckpoint(parseNote(note).text);
  return { treeSize: c.treeSize, rootHash: c.rootHash, note, noteHash: sha256(Buffer.from(note, 'utf8')) };
}

/**
 * The commit point of a note this process just signed over (treeSize, rootHash): commitPointOf
 * without parsing the note again (its ~3.3 KB of base64 signatures, per batch).
 */
export function commitPointOfSigned(treeSize: number, rootHash: Uint8Array, note: string): CommitPoint {
  // A Buffer copy, as parsing gives: callers may keep it, and may use Buffer methods on it.
  return { treeSize, rootHash: Buffer.from(rootHash), note, noteHash: sha256(Buffer.from(note, 'utf8')) };
}

export function notesDir(stateDir: string): string {
  return path.join(stateDir, 'notes');
}

export function notePath(stateDir: string, treeSize: number): string {
  return path.join(notesDir(stateDir), String(treeSize));
}

/** Reads the note of size `treeSize` and checks it against the committed root and note hash. */
export async function readCommittedNote(stateDir: string, treeSize: number, rootHash: Uint8Array, noteHash: Uint8Array): Promise<CommitPoint> {
  const p = notePath(stateDir, treeSize);
  const data = await readIfExists(p);
  if (!data) throw new TlogError(ErrorCode.corrupt, `the note of the commit point (size ${treeSize}) is missing: ${p}`);
  let cp: CommitPoint;
  try {
    cp = commitPointOf(data.toString('utf8'));
  } catch (e) {
    throw new TlogError(ErrorCode.corrupt, `${p}: ${(e as Error).message}`);
  }
  if (cp.treeSize !== treeSize || !equalHashes(cp.rootHash, rootHash) || !equalHashes(cp.noteHash, noteHash)) {
    throw new TlogError(ErrorCode.corrupt, `${p} does not match the commit point (size ${treeSize})`);
  }
  return cp;
}

/** Sizes of the notes kept in the private notes directory, largest first. */
export async function listNoteSizes(stateDir: string): Promise<number[]> {
  let names: string[];
  try {
    names = await fsp.readdir(notesDir(stateDir));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw ioError('readdir', notesDir(stateDir), e);
  }
  return names
    .filter((n) => isCanonicalDecimal(n))
    .map(Number)
    .sort((a, b) => b - a);
}

/**
 * Deletes notes of sizes other than `keep`. Not synced: a deleted note coming back after a
 * crash is harmless (recovery only reads the one the commit point names).
 */
export async function pruneNotes(stateDir: string, keep: number): Promise<void> {
  for (const size of await listNoteSizes(stateDir)) {
    if (size !== keep && size < keep) await fsp.unlink(notePath(stateDir, size)).catch(() => {});
  }
}

/**
 * On open: deletes the notes of batches that never committed (signed, never published) and
 * leftover temp files, so nothing but the commit point's note can ever be picked up again.
 */
export async function discardNotesBeyond(stateDir: string, treeSize: number): Promise<void> {
  let names: string[];
  try {
    names = await fsp.readdir(notesDir(stateDir));
  } catch {
    return;
  }
  for (const n of names) {
    const stale = /^\..+\.tmp$/.test(n) || (isCanonicalDecimal(n) && Number(n) > treeSize);
    if (stale) await fsp.unlink(path.join(notesDir(stateDir), n)).catch(() => {});
  }
}
