/**
 * The batch sink (log/batch-sink.ts) of a log whose truth is an object store. A batch counts (is
 * acknowledged) once its journal object is in the store; what is derived from it is written
 * behind, in order (store-layout.ts):
 *
 *   1. journal/<start>, If-None-Match: the batch's record. THE ordering and durability point:
 *      of two writers of one tenant, the store lets exactly one create it. Refused (other bytes
 *      there): another writer owns this place in the log, so this one lost the tenant: the batch
 *      fails with code conflict and the engine stops the log; nothing of the batch is
 *      acknowledged. Stored: the batch may be acknowledged (issue 14: "durable in the store, or
 *      in a journal the store holds"), and a node taking the tenant over adopts it (store-log.ts).
 *   2. behind the acknowledgements, for every group of batches journaled while the previous
 *      group was being written: their tiles and bundles, and history/<end> of each, immutable.
 *      Only after their journal objects: they are derived byte for byte from the chain of
 *      records, so whoever writes them (this writer, or a node adopting its records) writes the
 *      same bytes; a loser writing them first could take a tile's place with its own entries.
 *      Of a group, only the newest version of each tile is written (a later batch's partial or
 *      full tile supersedes an earlier partial of the same tile: tlog-tiles readers of an older
 *      size read a prefix of the wider one); every full tile and every history note is written.
 *   3. then checkpoint, the group's newest note, If-Match the version this writer read or wrote
 *      last: published only once every tile it implies is in the store (groups are written one
 *      after the other, so the tiles of earlier groups are too). Refused: re-read it. A stored
 *      checkpoint behind ours is a prefix of our chain (the chain of journal objects is one: each
 *      object names where the next starts, and each place has one owner), so it is replaced,
 *      If-Match its new version. One at or beyond ours is kept: it covers our batch (same chain)
 *      and publishing ours would move it back. Two roots at one size: stop.
 *
 * So the store's checkpoint trails the acknowledged one by the group being written (and at most
 * maxBehind batches: a batch waits for room before its journal object). The invariant a take-over
 * relies on: every tile the store's checkpoint implies is in the store, and beyond it the journal
 * objects chain from its size with no gap, with any subset of their derived objects present
 * (each exactly the bytes derived from the chain). A failure writing behind stops the log
 * (attach); what it acknowledged is in the journal objects, adopted by the next take-over.
 *
 * The lease's fencing epoch is not written into the checkpoint (the brief of object-store.ts
 * suggests it): the checkpoint object must be exactly the signed note served to readers, and
 * its etag is the MD5 of those bytes, so an epoch in metadata would not change it. Fencing comes
 * from step 1 instead: a stale holder can only ever write a journal place nobody took, which
 * the new holder then adopts or is refused at (and stops): no fork, no lost acknowledgement.
 *
 * Errors reaching the store are code unavailable: the log stops; reopening (openStoreLog)
 * adopts whatever of the batch landed.
 */
import { TlogError, ErrorCode, isTlogError } from '../errors.js';
import type { Logger } from '../logger.js';
import { equalHashes } from '../merkle/hash.js';
import { parseCheckpoint } from '../note/checkpoint.js';
import { openNote, parseNote, type NoteVerifier } from '../note/note.js';
import { isPreconditionFailed, type ObjectStore, type PutOptions } from '../storage/object-store.js';
import { CHECKPOINT_HEADERS, HISTORY_HEADERS, TILE_HEADERS } from '../tiles/served-headers.js';
import type { TileFile } from '../tile-store/tile-store.js';
import type { BatchSink, SinkBatch } from '../log/batch-sink.js';
import { commitPointOf, type CommitPoint } from '../log/commit-point.js';
import { CHECKPOINT_KEY, historyKey, journalKey, tileKey } from './store-layout.js';

export type RetentionOption = PutOptions['retention'];

/** A store call failed other than by a refused condition: the store is out of reach. */
export function unavailable(tenant: string, what: string, e: unknown): TlogError {
  if (isTlogError(e) && e.code !== ErrorCode.io) return e;
  return new TlogError(ErrorCode.unavailable, `tenant ${tenant}: the store cannot be reached (${what}): ${(e as Error).message}`, { cause: e });
}

/** The store's published checkpoint, checked: signed by the tenant's keys, of its origin. */
export function checkedStoreCheckpoint(tenant: string, where: string, bytes: Uint8Array, origin: string, verifiers: readonly NoteVerifier[]): CommitPoint {
  const note = Buffer.from(bytes).toString('utf8');
  try {
    openNote(note, verifiers);
    if (parseCheckpoint(parseNote(note).text).origin !== origin) throw new Error(`another origin than ${origin}`);
    return commitPointOf(note);
  } catch (e) {
    throw new TlogError(ErrorCode.corrupt, `tenant ${tenant}: ${where}${CHECKPOINT_KEY} is not a checkpoint of this log: ${(e as Error).message}`);
  }
}

/** Batches acknowledged but not yet under the store's checkpoint, at most (a take-over adopts them one by one). */
export const MAX_BEHIND = 16;

/** What one write behind published: for logs, metrics and the bench. */
export interface StorePublished {
  /** The store's checkpoint now. */
  readonly treeSize: number;
  /** Batches it covers that were behind it. */
  readonly batches: number;
  /** Milliseconds from the oldest of them being journaled in the store (acknowledgeable) to the checkpoint landing. */
  readonly trailingMs: number;
}

export interface StoreSinkOptions {
  readonly store: ObjectStore;
  readonly tenant: string;
  readonly origin: string;
  readonly verifiers: readonly NoteVerifier[];
  readonly retention?: RetentionOption;
  readonly logger: Logger;
  /** Batches acknowledged ahead of the store's checkpoint, at most (default MAX_BEHIND). */
  readonly maxBehind?: number;
  /** Told after every checkpoint written behind the acknowledgements. */
  readonly onPublished?: (p: StorePublished) => void;
}

/** A batch whose journal object is stored and whose derived objects are not yet (all) written. */
interface Behind {
  readonly end: number;
  readonly files: readonly TileFile[];
  readonly note: string;
  readonly journaledAt: number;
}

export class StoreSink implements BatchSink {
  /** Journaled batches waiting for the next write behind, in order. */
  private behind: Behind[] = [];
  /** Batches journaled and not yet under the store's checkpoint (waiting, or being written). */
  private ahead = 0;
  private writing: Promise<void> | null = null;
  /** Why writing behind failed: every later batch is refused with it. */
  private failure: TlogError | null = null;
  private stopLog: (e: TlogError) => void = () => {};
  /** Batches waiting for room (ahead < maxBehind) before their journal object. */
  private waiting: (() => void)[] = [];

  constructor(
    private readonly o: StoreSinkOptions,
    /** The version of the store's checkpoint this writer read or wrote last (its If-Match). */
    private etag: string,
    /** The tree size of that checkpoint. */
    public publishedSize: number,
  ) {}

  private immutable(headers: { contentType: string; cacheControl: string }): PutOptions {
    return { ...headers, ...(this.o.retention ? { retention: this.o.retention } : {}) };
  }

  attach(stop: (e: TlogError) => void): void {
    this.stopLog = stop;
  }

  async batch(b: SinkBatch, journaled: () => void = () => {}): Promise<void> {
    const { store, tenant } = this.o;
    const max = this.o.maxBehind ?? MAX_BEHIND;
    while (this.ahead >= max && !this.failure) await new Promise<void>((r) => this.waiting.push(r));
    if (this.failure) throw this.failure;
    try {
      await store.putImmutable(journalKey(b.start), b.record, this.immutable({ contentType: 'application/octet-stream', cacheControl: 'no-store' }));
    } catch (e) {
      if (isTlogError(e, ErrorCode.immutableConflict)) {
        throw new TlogError(
          ErrorCode.conflict,
          `tenant ${tenant}: another writer owns ${store.where}${journalKey(b.start)}: this node lost the tenant (the batch at ${b.start} is not acknowledged)`,
          { cause: e },
        );
      }
      throw unavailable(tenant, `writing ${journalKey(b.start)}`, e);
    }
    // Durable in the store: it counts. Queued before the next batch may store its record, so
    // the writes behind follow the chain's order.
    this.behind.push({ end: commitPointOf(b.note).treeSize, files: b.files, note: b.note, journaledAt: performance.now() });
    this.ahead++;
    journaled();
    this.writeBehind();
  }

  /** Starts writing what is behind, unless a write is running (it starts the next when done). */
  private writeBehind(): void {
    if (this.writing || this.behind.length === 0 || this.failure) return;
    const group = this.behind.splice(0);
    this.writing = this.writeGroup(group).finally(() => {
      this.writing = null;
      this.writeBehind();
    });
  }

  /** One group: its newest tiles, every full tile and history note, then its newest checkpoint. */
  private async writeGroup(group: readonly Behind[]): Promise<void> {
    const newest = new Map<string, TileFile>();
    // Keyed by the tile, not its width: a later batch's version (wider, or full) supersedes.
    for (const b of group) for (const f of b.files) newest.set(`${f.coord.level}/${f.coord.index}`, f);
    const last = group[group.length - 1]!;
    try {
      await this.putFiles([...newest.values()], group, last.end);
      await this.publish(last.note);
    } catch (e) {
      const err = isTlogError(e) ? e : unavailable(this.o.tenant, `publishing the tree of size ${last.end}`, e);
      this.failure ??= err;
      this.o.logger.error(
        { tenant: this.o.tenant, err: err.message, behind: this.ahead },
        'writing behind the acknowledgements failed; the journal objects hold them',
      );
      for (const w of this.waiting.splice(0)) w();
      this.stopLog(err);
      return;
    }
    this.ahead -= group.length;
    for (const w of this.waiting.splice(0)) w();
    this.o.onPublished?.({ treeSize: this.publishedSize, batches: group.length, trailingMs: performance.now() - group[0]!.journaledAt });
  }

  async drain(): Promise<void> {
    while (this.writing) await this.writing;
  }

  /** Tiles and bundles, and the history note of each batch, all at once (immutable; same bytes from any writer). */
  private async putFiles(files: readonly TileFile[], notes: readonly { end: number; note: string }[], end: number): Promise<void> {
    const { store, tenant } = this.o;
    try {
      await Promise.all([
        ...files.map((f) => store.putImmutable(tileKey(f.coord), f.data, this.immutable(TILE_HEADERS))),
        ...notes.map((n) => store.putImmutable(historyKey(n.end), Buffer.from(n.note, 'utf8'), this.immutable(HISTORY_HEADERS))),
      ]);
    } catch (e) {
      // Other bytes at a tile's place after we own the journal place: the store contradicts the
      // chain. immutable_conflict stays what it is: the log stops.
      throw unavailable(tenant, `writing the tiles of the tree of size ${end}`, e);
    }
  }

  /** A batch's tiles, bundles and history note, all at once (a take-over adopting a journal record). */
  putBatchFiles(files: readonly TileFile[], end: number, note: string): Promise<void> {
    return this.putFiles(files, [{ end, note }], end);
  }

  /** Publishes `note` as the store's checkpoint unless the store already has one at or beyond it. */
  async publish(note: string): Promise<void> {
    const { store, tenant } = this.o;
    const cp = commitPointOf(note);
    const bytes = Buffer.from(note, 'utf8');
    for (;;) {
      try {
        this.etag = await store.putMutable(CHECKPOINT_KEY, bytes, { etag: this.etag }, CHECKPOINT_HEADERS);
        this.publishedSize = cp.treeSize;
        return;
      } catch (e) {
        if (!isPreconditionFailed(e)) throw unavailable(tenant, `publishing the checkpoint of size ${cp.treeSize}`, e);
      }
      let have;
      try {
        have = await store.get(CHECKPOINT_KEY);
      } catch (e) {
        throw unavailable(tenant, 're-reading the checkpoint', e);
      }
      if (!have) throw new TlogError(ErrorCode.corrupt, `tenant ${tenant}: ${store.where}${CHECKPOINT_KEY} has disappeared`);
      const theirs = checkedStoreCheckpoint(tenant, store.where, have.bytes, this.o.origin, this.o.verifiers);
      this.etag = have.etag;
      if (theirs.treeSize === cp.treeSize && !equalHashes(theirs.rootHash, cp.rootHash)) {
        throw new TlogError(ErrorCode.corrupt, `tenant ${tenant}: the store publishes another root at size ${cp.treeSize} than this writer's journal chain`);
      }
      if (theirs.treeSize >= cp.treeSize) {
        this.o.logger.warn({ tenant, ours: cp.treeSize, theirs: theirs.treeSize }, 'another writer published at or beyond this batch; keeping its checkpoint');
        this.publishedSize = theirs.treeSize;
        return;
      }
      // Behind ours: a prefix of our chain, published by someone else since we last wrote. Try again over it.
    }
  }
}
