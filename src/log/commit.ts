/**
 * The commit point: the last checkpoint the log signed and made durable, i.e. its tree size,
 * root hash and the signed note itself. It moves only after every tile the size implies is
 * durable, and before the checkpoint is published; recovery trusts it over anything else.
 */
import path from 'node:path';
import { TlogError, ErrorCode } from '../errors.js';
import { sha256 } from '../merkle/hash.js';
import { parseCheckpoint, type Checkpoint } from '../note/checkpoint.js';
import { parseNote } from '../note/note.js';
import { readIfExists, writeFileDurably } from '../storage/durable.js';

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
 * Where the commit point is kept. Contract: store() is durable when it resolves; load() returns
 * the last stored value, or null if none was ever stored. One writer at a time.
 */
export interface CommitStore {
  load(): Promise<CommitPoint | null>;
  store(cp: CommitPoint): Promise<void>;
}

/** The commit point as a private file holding the signed note (replaced atomically). */
export class FileCommitStore implements CommitStore {
  readonly file: string;
  constructor(stateDir: string) {
    this.file = path.join(stateDir, 'commit-point');
  }

  async load(): Promise<CommitPoint | null> {
    const data = await readIfExists(this.file);
    if (!data) return null;
    try {
      return commitPointOf(data.toString('utf8'));
    } catch (e) {
      throw new TlogError(ErrorCode.corrupt, `commit point ${this.file} is unreadable: ${(e as Error).message}`);
    }
  }

  async store(cp: CommitPoint): Promise<void> {
    await writeFileDurably(this.file, cp.note, 0o600);
  }
}
