/**
 * The log and a full disk: how many bytes a batch writes, the free-space reserve kept beyond
 * them, and which write failures stop the log.
 *
 * The rule (stopsTheLog): a write refused for want of space (ENOSPC, EDQUOT) never stops the
 * log. Before a batch is signed its failure is clean (the batch is refused, its files beyond
 * the commit point are deleted); after, the batch waits and retries its write until there is
 * room (its journal record, its checkpoint, its index entries: each write is idempotent).
 * Meanwhile the log "cannot write" (healthz says why) and refuses new appends with 503
 * disk_full; it writes again by itself once space is back. Any other failure once the batch's
 * journal record may be on disk, an immutable file found with other bytes, or a state that
 * contradicts itself stops the log: a restart recovers from the journal and the commit point.
 */
import { ErrorCode, isTlogError } from '../errors.js';
import { JournalTornError } from '../storage/journal.js';
import { TILE_WIDTH, topLevel } from '../tiles/layout.js';

/** A filesystem block: every small file takes at least one. */
const BLOCK = 4096;
/**
 * A signed checkpoint note, bounded with room to spare: origin, size, root, an Ed25519 line and
 * an ML-DSA-44 line (a 2420-byte signature, ~3.3 KB in base64).
 */
const NOTE_BYTES = 8192;
/** Kept free beyond every estimate: filesystem metadata, the flush's temp files, other writers. */
export const RESERVE_SLACK = 256 << 10;

const roundUp = (n: number) => Math.ceil(n / BLOCK) * BLOCK;

/**
 * An upper bound of the bytes a batch of `n` entries (`payload` bytes in all) writes before it
 * is answered, on a tree of size `start` whose partial bundle holds `edgeBundle` bytes: its
 * bundles and tiles (full and partial, each rounded up to blocks, with a block for each
 * possibly new directory), its journal record, its checkpoint copies (the history, the
 * published file's temp beside the old one, the private note the next flush writes).
 */
export function batchBytes(start: number, n: number, payload: number, edgeBundle: number): number {
  if (n === 0) return 0;
  const end = start + n;
  // Tiles and bundles filled or changed: at level 0 one per 256 entries (plus both edges), and
  // above it fewer; every level up to the top has a partial tile.
  const levels = topLevel(end) + 1;
  const files = 2 * (Math.ceil(n / TILE_WIDTH) + 2) + 2 * levels;
  const hashes = 32 * (n + TILE_WIDTH) * 2;
  const bundles = edgeBundle + payload + 2 * n;
  const record = 16 + payload + 2 * n + NOTE_BYTES + 40;
  return roundUp(hashes + bundles) + files * 2 * BLOCK + roundUp(record) + 4 * NOTE_BYTES;
}


/**
 * Whether a failed batch stops the log (see the rule above). `mayCount`: the batch's journal
 * record may be on disk (it will count after a restart) or the batch committed, so nothing
 * else may be written after it in this process.
 */
export function stopsTheLog(e: unknown, mayCount: boolean): boolean {
  if (mayCount || e instanceof JournalTornError) return true;
  return isTlogError(e, ErrorCode.immutableConflict) || isTlogError(e, ErrorCode.corrupt);
}
