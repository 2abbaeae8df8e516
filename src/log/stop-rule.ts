/**
 * When a failure stops the log: the one rule, for every batch that fails.
 *
 * A batch that fails before it may count (below) is refused or abandoned: its callers get the
 * error, its files beyond the commit point are deleted, and the log goes on. A write refused
 * for want of space (ENOSPC, EDQUOT) is that case, or never fails at all: once the batch is
 * signed it waits for room instead (disk-space.ts).
 *
 * The log stops (every later append fails; a restart recovers from the journal and the commit
 * point) when the failed batch may count, the journal was torn by a failed record write, an
 * immutable file was found with other bytes, or the state contradicts itself.
 */
import { ErrorCode, isTlogError } from '../errors.js';
import { JournalTornError } from '../storage/journal.js';
import type { BatchStage } from './batch.js';

/**
 * Whether a batch may count after a restart: its journal record is durable (replay adopts it),
 * or it committed, or the journal must still repeat a record write that may have reached the
 * file. Nothing else may then be written after it in this process.
 */
export function mayCount(stage: BatchStage, journalMustRepeat: boolean): boolean {
  return stage !== 'prepared' || journalMustRepeat;
}

/** Whether a batch that failed with `e` stops the log (the rule above). */
export function stopsTheLog(e: unknown, batchMayCount: boolean): boolean {
  if (batchMayCount || e instanceof JournalTornError) return true;
  return isTlogError(e, ErrorCode.immutableConflict) || isTlogError(e, ErrorCode.corrupt);
}
