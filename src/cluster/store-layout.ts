/**
 * A tenant's objects in the store, under its prefix (STORE-API.md in the design notes of issue
 * 14): the tlog-tiles URL space itself, so the bucket (or a CDN in front of it) serves the log
 * as is, plus the journal and the history.
 *
 *     checkpoint                  mutable: the published checkpoint, the signed note's bytes
 *     tile/<L>/<N>[.p/<W>]        immutable, c2sp.org/tlog-tiles
 *     tile/entries/<N>[.p/<W>]    immutable
 *     journal/<start, 20 digits>  immutable: one per batch, its record (entries + signed note);
 *                                 of two writers, the one whose If-None-Match PUT wins owns it
 *     history/<N path>            immutable: the signed note of size N, from the journal record
 */
import { TlogError, ErrorCode } from '../errors.js';
import { formatIndexPath, formatTilePath, type TileCoord } from '../tiles/layout.js';

export const CHECKPOINT_KEY = 'checkpoint';

/** Digits of a journal key: sorted as numbers when listed bytewise (2^53 has 16). */
const JOURNAL_DIGITS = 20;

export function journalKey(start: number): string {
  if (!Number.isSafeInteger(start) || start < 0) throw new TlogError(ErrorCode.badInput, `bad journal start ${start}`);
  return `journal/${String(start).padStart(JOURNAL_DIGITS, '0')}`;
}

export function tileKey(t: TileCoord): string {
  return formatTilePath(t);
}

export function historyKey(size: number): string {
  return `history/${formatIndexPath(size)}`;
}
