/**
 * The log and a full disk: how many bytes a batch writes, the free-space reserve kept beyond
 * them, and the guard that refuses work the disk has no room for (SpaceGuard).
 *
 * A write refused for want of space (ENOSPC, EDQUOT) never stops the log (stop-rule.ts). Before
 * a batch is signed its failure is clean (the batch is refused, its files beyond the commit
 * point are deleted); after, the batch waits and retries its write until there is room (its
 * journal record, its checkpoint, its index entries: each write is idempotent). Meanwhile the
 * log "cannot write" (healthz says why) and refuses new appends with 503 disk_full; it writes
 * again by itself once space is back.
 */
import { TlogError, ErrorCode, diskFullErrno, isDiskFull } from '../errors.js';
import type { Logger } from '../logger.js';
import { formatBytes, type DiskSpace } from '../storage/space.js';
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

/** Below this many free bytes (plus what is queued), every append reads the disk's free space. */
const TIGHT_BYTES = 64 << 20;

/** What the guard asks of the log: the bytes a batch writes, and the reserve kept beyond them. */
export interface SpaceNeeds {
  /** batchBytes() of `entries` entries of `payload` bytes on the tree as it is now. */
  batchBytes(entries: number, payload: number): number;
  /** Bytes kept free beyond a batch's own: the next journal segment, the index's next growth, RESERVE_SLACK. */
  reserveBytes(entries: number): number;
}

/**
 * Refuses appends and batches the disk has no room for, and keeps a signed batch's writes
 * waiting for room. One per writer; `disk` null: no free-space checks (a reader, or a test
 * that wants to meet ENOSPC half-way).
 */
export class SpaceGuard {
  /**
   * Why appends are refused for want of space, while they are: `held` when a batch past its
   * signature waits to write (cleared when its write succeeds), else a shortage found by statfs
   * or a batch refused by ENOSPC (cleared once statfs shows room again).
   */
  private blocked: { reason: string; held: boolean } | null = null;
  /** Free bytes at the last statfs (admission reads the disk only when it was short). */
  private lastFree = Number.POSITIVE_INFINITY;

  constructor(
    private readonly disk: DiskSpace | null,
    private readonly needs: SpaceNeeds,
    private readonly tenant: string,
    private readonly logger: Logger,
  ) {}

  /** Why appends are refused for want of space now, or null. */
  get reason(): string | null {
    return this.blocked?.reason ?? null;
  }

  /** The error appends get while the log cannot write for want of space (HTTP 503 disk_full). */
  error(reason: string, cause?: unknown): TlogError {
    return new TlogError(ErrorCode.diskFull, `log ${this.tenant} cannot write: ${reason}; try again later`, { cause });
  }

  block(reason: string, held: boolean): void {
    if (this.blocked?.reason !== reason) this.logger.warn({ tenant: this.tenant, reason }, 'log cannot write');
    this.blocked = { reason, held };
  }

  private unblock(): void {
    if (!this.blocked) return;
    this.logger.info({ tenant: this.tenant, was: this.blocked.reason }, 'log writes again');
    this.blocked = null;
  }

  /**
   * Whether `entries` more entries of `payload` bytes fit on the disk now, with the reserve
   * (one statfs per filesystem): the bytes they need, and why not when they do not.
   */
  roomFor(entries: number, payload: number): { need: number; refusal: string | null } {
    if (!this.disk) return { need: 0, refusal: null };
    const need = this.needs.batchBytes(entries, payload);
    const reserve = this.needs.reserveBytes(entries);
    const { free, where } = this.disk.read();
    this.lastFree = free;
    if (free >= need + reserve) return { need, refusal: null };
    return {
      need,
      refusal: `disk full: ${formatBytes(free)} free for the log's ${where}, ${formatBytes(need + reserve)} needed (${formatBytes(reserve)} of it kept in reserve)`,
    };
  }

  /** Claims `bytes` of the disk for a batch in flight until the returned function is called. */
  claim(bytes: number): () => void {
    return this.disk?.claim(bytes) ?? (() => {});
  }

  /**
   * Refuses appends (disk_full) while a batch waits for room, or while the disk lacks room for
   * what is queued plus these entries and the reserve. Reads the disk only when it was short
   * at the last reading (or the log is blocked): a roomy disk costs no statfs per append.
   */
  admit(entries: readonly Uint8Array[], queued: { readonly entries: number; readonly bytes: number }): void {
    if (this.blocked?.held) throw this.error(this.blocked.reason);
    if (!this.disk) {
      // No free-space checks: the next batch finds out by trying.
      this.unblock();
      return;
    }
    let payload = 0;
    for (const e of entries) payload += e.length;
    const short = this.lastFree < TIGHT_BYTES + 4 * (queued.bytes + payload + this.needs.reserveBytes(0));
    if (!this.blocked && !short) return;
    const room = this.roomFor(queued.entries + entries.length, queued.bytes + payload);
    if (room.refusal) {
      this.block(room.refusal, false);
      throw this.error(room.refusal);
    }
    this.unblock();
  }

  /**
   * Runs a write of a signed batch until it succeeds: a write refused for want of space is
   * retried (with a growing pause, up to 2 s) while appends are refused; anything else, or the
   * log closing, throws. Each write retried here is idempotent.
   */
  async untilWritten<T>(what: string, write: () => Promise<T> | T, closed: () => boolean): Promise<T> {
    for (let pause = 10; ; pause = Math.min(pause * 2, 2000)) {
      try {
        const r = await write();
        if (this.blocked?.held) this.unblock();
        return r;
      } catch (e) {
        if (!isDiskFull(e) || closed()) throw e;
        this.block(`disk full (${diskFullErrno(e) ?? 'ENOSPC'}) writing ${what}: a signed batch waits for room`, true);
        await new Promise((r) => setTimeout(r, pause));
      }
    }
  }

  /**
   * Why the log cannot take appends for want of space, with `queued` entries waiting: a
   * shortage is read again from the disk, so this clears by itself once space is back.
   */
  recheck(queued: { readonly entries: number; readonly bytes: number }): string | null {
    if (!this.disk || this.blocked?.held) return this.reason;
    const room = this.roomFor(queued.entries + 1, queued.bytes);
    if (room.refusal) this.block(room.refusal, false);
    else this.unblock();
    return this.reason;
  }
}
