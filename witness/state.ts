/**
 * The witness's per-log state: the last checkpoint it cosigned. That note is the whole state:
 * its body gives the size and root the next add-checkpoint must extend, and, with the log's
 * verified signatures and ours, it is what GET <hex(sha256(origin))>/checkpoint serves.
 *
 * Files: <data>/state/<hex sha256(origin)>.checkpoint, one per log, replaced durably (temp file,
 * fsync, rename, directory fsync). A crash at any point leaves either the old note or the new
 * one, never a mix and never nothing.
 */
import path from 'node:path';
import { TlogError, ErrorCode } from '../src/errors.js';
import { EMPTY_ROOT } from '../src/merkle/hash.js';
import { parseCheckpoint } from '../src/note/checkpoint.js';
import { parseNote } from '../src/note/note.js';
import type { TypedVerifier } from '../src/note/signers.js';
import { DurableWriter, readIfExists } from '../src/storage/durable.js';
import { originHash } from './config.js';

export interface LogState {
  readonly origin: string;
  readonly treeSize: number;
  readonly rootHash: Uint8Array;
  /** The cosigned checkpoint: the log's verified signatures, then ours. */
  readonly note: string;
}

/** The state of a log never cosigned: size 0, the empty tree (c2sp.org/tlog-witness: "0 if none"). */
export function emptyState(origin: string): LogState {
  return { origin, treeSize: 0, rootHash: EMPTY_ROOT, note: '' };
}

/**
 * Where log states live. Contract: save() is durable when it resolves (a crash after that
 * keeps the new state) and atomic (a crash or a rejection before that leaves the old state or
 * the new one, never anything else). The witness calls save() for one origin at a time; calls
 * for different origins may run concurrently. read() returns the last state saved, or null.
 */
export interface StateStore {
  read(origin: string): Promise<LogState | null>;
  save(state: LogState): Promise<void>;
}

/**
 * Parses a stored cosigned note and checks it is ours: it names `origin` and carries a valid
 * cosignature from `own` (our 0x04 key). Anything else is corruption or tampering.
 */
export function parseStoredState(origin: string, note: string, own: TypedVerifier, where: string): LogState {
  let state: LogState;
  try {
    const n = parseNote(note);
    const c = parseCheckpoint(n.text);
    if (c.origin !== origin) throw new Error(`names origin ${JSON.stringify(c.origin)}, want ${JSON.stringify(origin)}`);
    const mine = n.signatures.filter((s) => s.name === own.name && s.keyID === own.keyID);
    if (mine.length === 0 || !mine.every((s) => own.verify(n.text, s.signature))) {
      throw new Error('carries no valid cosignature of this witness');
    }
    state = { origin, treeSize: c.treeSize, rootHash: c.rootHash, note };
  } catch (e) {
    throw new TlogError(ErrorCode.corrupt, `witness state ${where}: ${(e as Error).message}`);
  }
  return state;
}

export class FileStateStore implements StateStore {
  readonly dir: string;
  private readonly writer = new DurableWriter({ mode: 0o644 });

  /** `own` is our 0x04 verifier: states are checked to carry our cosignature when read. */
  constructor(
    dataDir: string,
    private readonly own: TypedVerifier,
  ) {
    this.dir = path.join(dataDir, 'state');
  }

  fileOf(origin: string): string {
    return path.join(this.dir, `${originHash(origin)}.checkpoint`);
  }

  async read(origin: string): Promise<LogState | null> {
    const file = this.fileOf(origin);
    const bytes = await readIfExists(file);
    if (bytes === null) return null;
    return parseStoredState(origin, bytes.toString('utf8'), this.own, file);
  }

  async save(state: LogState): Promise<void> {
    // Durable replace: the old note stays until the new one is complete and synced.
    await this.writer.write([{ path: this.fileOf(state.origin), data: Buffer.from(state.note, 'utf8'), kind: 'replace' }]);
  }
}

/** A store in memory, for tests and benchmarks that measure everything but the disk. */
export class MemoryStateStore implements StateStore {
  readonly states = new Map<string, LogState>();
  async read(origin: string): Promise<LogState | null> {
    return this.states.get(origin) ?? null;
  }
  async save(state: LogState): Promise<void> {
    this.states.set(state.origin, state);
  }
}
