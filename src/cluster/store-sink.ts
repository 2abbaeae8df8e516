/**
 * The batch sink (log/batch-sink.ts) of a log whose truth is an object store: each batch is
 * durable in the store before the engine lets it count, in this order (store-layout.ts):
 *
 *   1. journal/<start>, If-None-Match: the batch's record. THE ordering point: of two writers
 *      of one tenant, the store lets exactly one create it. Refused (other bytes there): another
 *      writer owns this place in the log, so this one lost the tenant: the batch fails with code
 *      conflict and the engine stops the log; nothing of the batch is published.
 *   2. its tiles and bundles, and history/<end>, immutable. Only after the journal object: they
 *      are derived byte for byte from the chain of records, so whoever writes them (this
 *      writer, or a node adopting its records) writes the same bytes; a loser writing them
 *      first could take a tile's place with its own entries.
 *   3. checkpoint, If-Match the version this writer read or wrote last. Refused: re-read it. A
 *      stored checkpoint behind ours is a prefix of our chain (the chain of journal objects is
 *      one: each object names where the next starts, and each place has one owner), so it is
 *      replaced, If-Match its new version. One at or beyond ours is kept: it covers our batch
 *      (same chain) and publishing ours would move it back. Two roots at one size: stop.
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

export interface StoreSinkOptions {
  readonly store: ObjectStore;
  readonly tenant: string;
  readonly origin: string;
  readonly verifiers: readonly NoteVerifier[];
  readonly retention?: RetentionOption;
  readonly logger: Logger;
}

export class StoreSink implements BatchSink {
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

  async batch(b: SinkBatch, journaled: () => void = () => {}, previous: Promise<void> | null = null): Promise<void> {
    const { store, tenant } = this.o;
    const end = commitPointOf(b.note).treeSize;
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
    // The next batch may store its record now: the chain has this one.
    journaled();
    await this.putBatchFiles(b.files, end, b.note);
    // Published in order: never a checkpoint over one not yet published (a failed previous batch stops the log).
    if (previous) await previous;
    await this.publish(b.note);
  }

  /** A batch's tiles, bundles and history note, all at once (immutable; same bytes from any writer). */
  async putBatchFiles(files: readonly TileFile[], end: number, note: string): Promise<void> {
    const { store, tenant } = this.o;
    try {
      await Promise.all([
        ...files.map((f) => store.putImmutable(tileKey(f.coord), f.data, this.immutable(TILE_HEADERS))),
        store.putImmutable(historyKey(end), Buffer.from(note, 'utf8'), this.immutable(HISTORY_HEADERS)),
      ]);
    } catch (e) {
      // Other bytes at a tile's place after we own the journal place: the store contradicts the
      // chain. immutable_conflict stays what it is: the log stops.
      throw unavailable(tenant, `writing the tiles of the tree of size ${end}`, e);
    }
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
