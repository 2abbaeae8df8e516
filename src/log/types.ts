/**
 * The log engine's public types and small helpers: what an append answers, the options of a log,
 * its private configuration file, and how a tree is signed.
 */
import path from 'node:path';
import { TlogError, ErrorCode } from '../errors.js';
import { formatCheckpoint, parseCheckpoint } from '../note/checkpoint.js';
import { formatNote, openNote, parseNote, signNote, signNoteAsync, type NoteVerifier } from '../note/note.js';
import type { Clock } from '../note/signers.js';
import { readIfExists, type DurableOptions } from '../storage/durable.js';
import type { JournalOptions } from '../storage/journal.js';
import type { SignPool } from './sign-pool.js';
import { commitPointOf, type CommitPoint } from './commit.js';
import type { LogKeys } from './keys.js';
import type { LogPaths } from './paths.js';
import type { PublishMode } from './publisher.js';

export const CONFIG_FILE = 'log.json';

export interface AppendResult {
  readonly index: number;
  readonly leafHash: Uint8Array;
  /** The tree size of the checkpoint that first included the entry. */
  readonly treeSize: number;
  /** That checkpoint, signed, exactly as published. */
  readonly checkpoint: string;
  /** RFC 6962 inclusion proof of the entry in that checkpoint, leaf side first. */
  readonly proof: readonly Uint8Array[];
  /** True when the entry was already in the log: index and proof are of the first copy. */
  readonly duplicate: boolean;
}

export interface Logger {
  /** Things an operator looks at only when digging (optional: not every sink has it). */
  debug?(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentLogger: Logger = { info() {}, warn() {}, error() {} };

export interface LogOptions {
  readonly clock?: Clock;
  /** Entries per batch; at most MAX_BATCH_ENTRIES. */
  readonly maxBatch?: number;
  /** Entries waiting beyond which append() refuses with `unavailable` (back-pressure). */
  readonly maxPending?: number;
  readonly logger?: Logger;
  /** Test hooks for the served-file writer (a disk that fails). */
  readonly durable?: DurableOptions;
  /** The write-ahead journal's options (tests: small segments, failing appends). */
  readonly journal?: JournalOptions;
  /** Where checkpoints are signed; the process-wide worker by default (sharedSignPool). */
  readonly signPool?: SignPool | 'inline';
  /** Batches in flight at once (hashed, written, signed, committing); 3 by default (TLOG_PIPELINE_DEPTH). */
  readonly pipelineDepth?: number;
  /** How long deferred tile writes may wait for their fsync (ms); 1000 by default. */
  readonly flushIntervalMs?: number;
  /** Keep every copy of a repeated entry instead of answering with the first one's index. */
  readonly allowDuplicates?: boolean;
  /**
   * Refuse appends (disk_full) when the disk lacks room for them plus a reserve (default true).
   * Tests turn it off to meet a real ENOSPC half-way through a batch.
   */
  readonly checkFreeSpace?: boolean;
  /** Open for reading only: no lock, no recovery writes, appends refused. */
  readonly readOnly?: boolean;
  /** Entries a new hot index is sized for before its first growth. */
  readonly indexCapacity?: number;
  /** The index file's backend: mmap through koffi (default when it loads) or plain file I/O. */
  readonly indexBackend?: 'mmap' | 'plain';
  /** Progress of an index rebuild on open. */
  readonly onRebuildProgress?: (done: number, total: number) => void;
  /**
   * 'each' (default): every committed checkpoint is published. 'cosigned': a tenant with
   * witnesses; the cosigner publishes (see publisher.ts).
   */
  readonly publishMode?: PublishMode;
  /** Told about every committed batch (for metrics). */
  readonly onBatch?: (b: BatchStats) => void;
}

export interface BatchStats {
  readonly tenant: string;
  readonly entries: number;
  /** From taking the batch to answering it. */
  readonly seconds: number;
  /** Putting its bundles and tiles in place, then making its journal record durable. */
  readonly writeSeconds: number;
  /** Moving the commit point (msync). */
  readonly commitSeconds: number;
}

/** The log's private configuration, in <state>/log.json. */
export interface LogConfig {
  readonly version: 1;
  readonly origin: string;
  readonly createdAt: string;
  /** Made by `tlog serve` on first start with its default origin (see create.ts). */
  readonly implicit?: boolean;
}


export async function readLogConfig(stateDir: string): Promise<LogConfig> {
  const p = path.join(stateDir, CONFIG_FILE);
  const data = await readIfExists(p);
  if (!data) throw new TlogError(ErrorCode.notFound, `no log at ${stateDir}: run \`tlog init\` first`);
  let cfg: LogConfig;
  try {
    cfg = JSON.parse(data.toString('utf8')) as LogConfig;
  } catch (e) {
    throw new TlogError(ErrorCode.corrupt, `${p}: ${(e as Error).message}`);
  }
  if (cfg.version !== 1 || typeof cfg.origin !== 'string') throw new TlogError(ErrorCode.corrupt, `${p}: unknown version or no origin`);
  return cfg;
}

/** Parses and verifies the published checkpoint; anything else is a refusal to start. */
export function checkedPublished(paths: LogPaths, note: string, origin: string, verifiers: readonly NoteVerifier[]): CommitPoint {
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

/** Signs the checkpoint of a tree with the log's Ed25519 and ML-DSA-44 keys. */
export function signTree(origin: string, treeSize: number, rootHash: Uint8Array, keys: LogKeys): string {
  return formatNote(signNote(treeText(origin, treeSize, rootHash), [keys.ed25519.signer, keys.mldsa44.signer]));
}

/**
 * signTree's note, signed concurrently and, when the keys were loaded with an offload (a
 * SignPool), off this thread. Calls may overlap; each note is signed independently, so the
 * caller still decides that no two roots are ever signed for one size.
 */
export async function signTreeAsync(origin: string, treeSize: number, rootHash: Uint8Array, keys: LogKeys): Promise<string> {
  return formatNote(await signNoteAsync(treeText(origin, treeSize, rootHash), [keys.ed25519.signer, keys.mldsa44.signer]));
}

function treeText(origin: string, treeSize: number, rootHash: Uint8Array): string {
  return formatCheckpoint({ origin, treeSize, rootHash, extensions: [] });
}
