/**
 * The widest recovery span (settings.ts recoverySpan) any run of a log has used, kept in the
 * log's private state directory (`recovery-span`, a decimal number and a newline). Recovery on
 * open scans that far beyond the commit point, not just as far as the settings of the run that
 * opens: a run restarted with a smaller batch or pipeline than the one that crashed would
 * otherwise leave tiles beyond its scan, which the next batch to write there would meet (an
 * immutable conflict: the log would stop).
 *
 * Written (durably) before a run with a wider span writes its first batch; never narrowed.
 */
import path from 'node:path';
import { TlogError, ErrorCode } from '../errors.js';
import { parseCanonicalDecimal } from '../decimal.js';
import { readIfExists, writeFileDurably } from '../storage/durable.js';

export const RECOVERY_SPAN_FILE = 'recovery-span';

/** The recorded span, or 0 when none is recorded (a log older than this file, or a new one). */
export async function recordedRecoverySpan(stateDir: string): Promise<number> {
  const file = path.join(stateDir, RECOVERY_SPAN_FILE);
  const bytes = await readIfExists(file);
  if (bytes === null) return 0;
  const text = bytes.toString('utf8');
  const n = text.endsWith('\n') ? parseCanonicalDecimal(text.slice(0, -1)) : null;
  if (n === null || n < 1)
    throw new TlogError(ErrorCode.corrupt, `${file}: want a positive decimal number and a newline, found ${JSON.stringify(text.slice(0, 40))}`);
  return n;
}

/**
 * The span recovery must scan before a run with span `current` writes: the wider of the two.
 * Records `current` first when it is wider than what was recorded.
 */
export async function widenRecoverySpan(stateDir: string, current: number): Promise<number> {
  const recorded = await recordedRecoverySpan(stateDir);
  if (current > recorded) await writeFileDurably(path.join(stateDir, RECOVERY_SPAN_FILE), `${current}\n`, 0o600);
  return Math.max(recorded, current);
}
