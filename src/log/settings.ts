/**
 * A log's options (what a caller may set) and settings (what the engine runs with): the batch
 * caps, the pipeline depth, the flush interval, the back-pressure bound, and the recovery span
 * they imply. Every default and cap of the engine is here.
 */
import type { BatchSink } from './batch-sink.js';
import type { Clock } from '../note/signers.js';
import type { Logger } from '../logger.js';
import type { DurableOptions } from '../storage/durable.js';
import type { JournalOptions } from '../storage/journal.js';
import type { BatchStats } from './batch.js';
import type { PublishMode } from './publisher.js';
import type { SignPool } from './sign-pool.js';
import type { BatchTracer } from './tracing.js';

/** The most entries one batch integrates (the cap on the maxBatch setting). */
export const MAX_BATCH_ENTRIES = 1 << 16;
/** Entries per batch unless the caller says otherwise. */
export const DEFAULT_MAX_BATCH = 16384;
/** Entries waiting (queued or in a batch) beyond which appends are refused. */
export const DEFAULT_MAX_PENDING = 1 << 20;
/**
 * Batches in flight at once. Three: one batch committing, one signing, one being hashed and
 * written (measured ~10% more appends/s than two at 64 and 256 connections; bench/http.ts).
 */
export const DEFAULT_PIPELINE_DEPTH = 3;
export const MAX_PIPELINE_DEPTH = 16;
/**
 * Closed-loop clients (each waits for its answer before sending again) split into groups that
 * alternate between the batches in flight: 64 connections made batches of ~31 entries, and every
 * batch costs a signed checkpoint, its files and a journal record. So a batch cut while others
 * are in flight waits until as many entries are pending as they hold or the oldest is done, and
 * a batch cut right after one is answered waits up to this long (ms) for as many entries as that
 * one answered. Measured (bench/peer, 64 and 256 connections; TLOG_BATCH_LINGER_MS): 2 ms left
 * batches at ~40 of 64, 4 ms gathers all 64: +20% appends/s, -25% CPU per append; 6 and 8 no
 * better. A lone client never waits: its next append is all the batch waits for. 0 turns both
 * waits off.
 */
export const DEFAULT_BATCH_LINGER_MS = 4;
export const MAX_BATCH_LINGER_MS = 1000;
/** How long deferred tile writes wait for their fsync, at most (ms). */
export const DEFAULT_FLUSH_INTERVAL_MS = 1000;

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
  /** See DEFAULT_BATCH_LINGER_MS; 0 turns both waits off (TLOG_BATCH_LINGER_MS, at most MAX_BATCH_LINGER_MS). */
  readonly batchLingerMs?: number;
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
  /** Where batches are made durable beyond the local journal before they count (batch-sink.ts); none by default. */
  readonly batchSink?: BatchSink;
  /** Traces each batch and its stages, linked to what appended its entries (tracing.ts); none by default. */
  readonly tracer?: BatchTracer;
}

/** The numbers the engine runs with, from the options (out-of-range values fall back to the defaults). */
export interface LogSettings {
  readonly maxBatch: number;
  readonly maxPending: number;
  readonly pipelineDepth: number;
  readonly flushIntervalMs: number;
  readonly batchLingerMs: number;
  /** recoverySpan(pipelineDepth, maxBatch). */
  readonly recoverySpan: number;
}

export function settingsOf(opts: LogOptions, env: NodeJS.ProcessEnv = process.env): LogSettings {
  const batch = opts.maxBatch ?? DEFAULT_MAX_BATCH;
  const maxBatch = Number.isInteger(batch) && batch >= 1 ? Math.min(batch, MAX_BATCH_ENTRIES) : DEFAULT_MAX_BATCH;
  const depth = opts.pipelineDepth ?? Number(env.TLOG_PIPELINE_DEPTH ?? DEFAULT_PIPELINE_DEPTH);
  const pipelineDepth = Number.isInteger(depth) && depth >= 1 && depth <= MAX_PIPELINE_DEPTH ? depth : DEFAULT_PIPELINE_DEPTH;
  // The environment's value is bounded (a typo must not stall a log); the option is the caller's.
  const fromEnv = Number(env.TLOG_BATCH_LINGER_MS ?? DEFAULT_BATCH_LINGER_MS);
  const linger = opts.batchLingerMs ?? (fromEnv <= MAX_BATCH_LINGER_MS ? fromEnv : NaN);
  const batchLingerMs = Number.isFinite(linger) && linger >= 0 ? linger : DEFAULT_BATCH_LINGER_MS;
  return {
    maxBatch,
    maxPending: opts.maxPending ?? DEFAULT_MAX_PENDING,
    pipelineDepth,
    flushIntervalMs: opts.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS,
    batchLingerMs,
    recoverySpan: recoverySpan(pipelineDepth, maxBatch),
  };
}

/**
 * How far beyond the commit point a crashed or failed run can have written tiles: the sequencer
 * keeps at most `pipelineDepth` batches in flight (each writes its tiles before it commits), of
 * at most `maxBatch` entries each. Recovery scans exactly this far.
 *
 * On open, recovery scans the widest span any run of the log has used (recovery-span.ts), so a
 * restart with smaller settings than the run that crashed still finds every tile it left.
 */
export function recoverySpan(pipelineDepth: number, maxBatch: number): number {
  return pipelineDepth * maxBatch;
}
