/**
 * A log whose truth is an object store (issue 14): openStoreLog takes a tenant over from the
 * store and returns a writable Log that makes every batch durable there before it counts
 * (store-sink.ts). The node's local directories are a cache (store-cache.ts).
 *
 * Take-over, in order:
 *  1. read the store's checkpoint (none: a new tenant; the empty tree's note is published with
 *     If-None-Match, and of two creators one wins, the other reads the winner's);
 *  2. bring the local cache to it: kept when it provably is a prefix of the store's chain,
 *     else wiped (store-cache.ts); the tiles it lacks downloaded (the full entry bundles, which
 *     nothing reads until the Log is open, while 3 and the index build run);
 *  3. adopt every journal object beyond it: journal/<size>, then journal/<its end>, ... until
 *     none (a writer acknowledges a batch once its journal object is stored and writes its
 *     tiles, history and checkpoint behind: up to MAX_BEHIND batches may be there, with any
 *     subset of their derived objects). Each record must start where the tree is, carry a note signed by the tenant's keys
 *     whose root is the one its entries hash to: the tiles re-derived from it are the bytes its
 *     writer wrote (or would have), and go to the store (immutable: same bytes) and the cache;
 *  4. open the cache as a Log (the hot index built from the level-0 tiles, or a kept one
 *     caught up from them), then publish the last adopted checkpoint with If-Match of the
 *     version read in 1.
 * Records are found by their keys, not by listing: a place in the log has at most one journal
 * object, and the chain of them is the one walk from the checkpoint.
 */
import { TlogError, ErrorCode } from '../errors.js';
import { silentLogger } from '../logger.js';
import { EMPTY_ROOT, equalHashes, leafHash } from '../merkle/hash.js';
import { openNote } from '../note/note.js';
import { DurableWriter } from '../storage/durable.js';
import { checkKey, isPreconditionFailed, type Expected, type ObjectStore, type PutOptions, type StoredObject } from '../storage/object-store.js';
import type { Retention } from '../storage/s3-store.js';
import { CHECKPOINT_HEADERS, HISTORY_HEADERS } from '../tiles/served-headers.js';
import { logPaths, type DataRoots } from '../tile-store/paths.js';
import { TileReader } from '../tile-store/tile-reader.js';
import { signTree } from '../log/checkpoint-signing.js';
import { commitPointOf, type CommitPoint } from '../log/commit-point.js';
import { Edge, type Extension } from '../log/edge.js';
import { parseBatchRecord } from '../log/journal-record.js';
import { loadLogKeysFrom } from '../log/keys.js';
import { Log, type LogOptions } from '../log/log.js';
import { offloadOf, verifiersOf } from '../log/open.js';
import { rebuildIndex, type IndexOpenOptions } from '../log/open-index.js';
import { downloadTiles, keptCache, moveIndexTo, refreshKeptCache, resetCache, tilesToDownload, writeCommitted } from './store-cache.js';
import { CHECKPOINT_KEY, historyKey, journalKey } from './store-layout.js';
import { checkedStoreCheckpoint, StoreSink, unavailable, type StorePublished } from './store-sink.js';

export interface StoreLogOptions {
  /** The tenant's store, already scoped to its prefix (keys as in store-layout.ts). */
  readonly store: ObjectStore;
  readonly tenant: string;
  /** This node's local cache roots (tiles/, checkpoints/, state/): a cache, rebuilt from the store as needed. */
  readonly cacheRoots: DataRoots;
  /** Directory holding the tenant's key files (same files as a local log's keys/): deployed to every node. */
  readonly keysDir: string;
  /** The tenant's origin (must match the keys). */
  readonly origin: string;
  /** The lease's fencing epoch, for logs (see store-sink.ts for why not in the checkpoint). */
  readonly epoch: number;
  readonly logOptions?: LogOptions;
  /** Object Lock retention for every immutable object (checked against the bucket first by the caller: checkObjectLock). */
  readonly retention?: Retention;
  /** Batches acknowledged ahead of the store's checkpoint, at most (store-sink.ts; default MAX_BEHIND). */
  readonly maxBehind?: number;
  /** Told each time the store's checkpoint catches up with batches acknowledged before it (store-sink.ts). */
  readonly onPublished?: (p: StorePublished) => void;
}

/** What a take-over did, for logs and the take-over bench. */
export interface TakeOver {
  readonly storeSize: number;
  /** The size of the local cache kept (a prefix of the store's chain), or null when it was wiped. */
  readonly kept: number | null;
  readonly adopted: number;
  readonly treeSize: number;
  readonly tilesDownloaded: number;
  /**
   * Seconds of each step: downloading the tiles but the full bundles, adopting journal records,
   * building (or moving) the index while the full bundles download, opening the Log, publishing.
   */
  readonly seconds: { readonly download: number; readonly adopt: number; readonly index: number; readonly open: number; readonly publish: number };
}

/**
 * Takes over a tenant from the store: catches the local cache up, adopts journal records beyond
 * the published checkpoint, publishes, and returns a writable Log that writes through the store.
 */
export async function openStoreLog(o: StoreLogOptions, onTakeOver?: (t: TakeOver) => void): Promise<Log> {
  const { store, tenant, origin } = o;
  const logger = o.logOptions?.logger ?? silentLogger;
  const paths = logPaths(o.cacheRoots, tenant);
  const keys = await loadLogKeysFrom(o.keysDir, origin, o.logOptions?.clock, offloadOf(o.logOptions ?? {}));
  const verifiers = verifiersOf(keys);
  const sinkOpts = { store, tenant, origin, verifiers, retention: o.retention, logger, maxBehind: o.maxBehind, onPublished: o.onPublished };
  const lock: PutOptions = o.retention ? { retention: o.retention } : {};
  const call = async <T>(what: string, f: () => Promise<T>): Promise<T> => {
    try {
      return await f();
    } catch (e) {
      throw unavailable(tenant, what, e);
    }
  };

  // 1. The store's checkpoint, or a new tenant's first one.
  let found = await call('reading the checkpoint', () => store.get(CHECKPOINT_KEY));
  if (!found) {
    const first = await call('reading journal/0', () => store.get(journalKey(0)));
    if (first) throw new TlogError(ErrorCode.corrupt, `tenant ${tenant}: ${store.where} holds journal records but no checkpoint`);
    const note = signTree(origin, 0, EMPTY_ROOT, keys);
    const bytes = Buffer.from(note, 'utf8');
    await call('writing history/0', () => store.putImmutable(historyKey(0), bytes, { ...HISTORY_HEADERS, ...lock }));
    try {
      found = { bytes, etag: await store.putMutable(CHECKPOINT_KEY, bytes, 'absent', CHECKPOINT_HEADERS) };
    } catch (e) {
      if (!isPreconditionFailed(e)) throw unavailable(tenant, 'creating the checkpoint', e);
      // Another node created it first: take over its log.
      found = await call('reading the checkpoint', () => store.get(CHECKPOINT_KEY));
      if (!found) throw new TlogError(ErrorCode.corrupt, `tenant ${tenant}: ${store.where}${CHECKPOINT_KEY} was created and is gone`);
    }
  }
  const published = checkedStoreCheckpoint(tenant, store.where, found.bytes, origin, verifiers);
  const sink = new StoreSink(sinkOpts, found.etag, published.treeSize);

  // 2. The local cache at the store's checkpoint: kept when it provably is a prefix of the
  // store's chain, else wiped (store-cache.ts); then the tiles it lacks, downloaded. The full
  // entry bundles left of the edge come last, while the journal is adopted and the index built.
  const indexOpts: IndexOpenOptions = {
    readOnly: false,
    logger,
    indexCapacity: o.logOptions?.indexCapacity,
    onRebuildProgress: o.logOptions?.onRebuildProgress,
    backend: o.logOptions?.indexBackend,
  };
  const t0 = performance.now();
  let kept = await call('reading the history', () => keptCache(paths, store, published, { tenant, origin, verifiers, index: indexOpts }));
  const reader = new TileReader(paths.tilesDir);
  let edge: Edge;
  let download: ReturnType<typeof downloadTiles>;
  for (;;) {
    if (kept) await refreshKeptCache(paths, o.keysDir);
    else await resetCache(paths, o.keysDir, origin);
    const { first, full } = tilesToDownload(kept?.treeSize ?? 0, published.treeSize);
    download = downloadTiles(store, paths, first, full, published.treeSize, tenant);
    await call('downloading tiles', () => download.first);
    try {
      edge = Edge.load(reader, published.treeSize, (root) => {
        if (!equalHashes(root, published.rootHash))
          throw new TlogError(ErrorCode.corrupt, `tenant ${tenant}: the store's tiles do not hash to its checkpoint (size ${published.treeSize})`);
      });
      break;
    } catch (e) {
      await download.all.catch(() => {});
      // A kept cache whose edge does not hash to the store's root after all: wipe it and start over.
      if (!kept) throw e;
      logger.warn({ tenant, kept: kept.treeSize, err: (e as Error).message }, 'the local cache does not continue into the store; rebuilding it');
      kept = null;
    }
  }
  const bundles = call('downloading entry bundles', () => download.all);
  bundles.catch(() => {});
  const t1 = performance.now();

  let last: CommitPoint = published;
  let adopted = 0;
  let t2 = t1;
  let tilesDownloaded = 0;
  try {
    // 3. Journal records beyond it.
    const writer = new DurableWriter({ mode: 0o644 });
    for (;;) {
      const obj = await call(`reading ${journalKey(last.treeSize)}`, () => store.get(journalKey(last.treeSize)));
      if (!obj) break;
      const { cp, files } = adoptRecord(tenant, store.where, obj, last.treeSize, edge, verifiers);
      await sink.putBatchFiles(files, cp.treeSize, cp.note);
      await writer.writeDeferred(
        files.map((f) => ({ path: reader.tilePath(f.coord.level, f.coord.index, f.coord.width), data: f.data, kind: 'replace' as const })),
      );
      last = cp;
      adopted++;
    }
    await writer.flush();
    t2 = performance.now();
    // The hot index: a kept one moves to the new commit point (the Log catches its table up from
    // the level-0 tiles on open); otherwise it is built from them now, while bundles download.
    if (kept) moveIndexTo(paths, last, indexOpts);
    else await rebuildIndex(paths, reader, last, indexOpts);
    tilesDownloaded = await bundles;
    // Last: the commit point's note (with the served checkpoint) marks the cache complete.
    await writeCommitted(paths, last.note, last.treeSize);
  } catch (e) {
    // Nothing of this take-over writes to the cache once it failed.
    await bundles.catch(() => {});
    throw e;
  }
  const t3 = performance.now();
  logger.info(
    { tenant, epoch: o.epoch, storeSize: published.treeSize, kept: kept?.treeSize ?? null, adopted, treeSize: last.treeSize },
    'took the tenant over from the store',
  );

  // 4. The Log, then the adopted checkpoint published.
  const log = await Log.open(paths, { ...o.logOptions, publishMode: 'each', batchSink: sink });
  try {
    if (!equalHashes(log.committed.rootHash, last.rootHash) || log.committed.treeSize !== last.treeSize) {
      throw new TlogError(ErrorCode.corrupt, `tenant ${tenant}: the local cache opened at size ${log.committed.treeSize}, not the store's ${last.treeSize}`);
    }
    const t4 = performance.now();
    if (last.treeSize > published.treeSize) await sink.publish(last.note);
    const t5 = performance.now();
    const sec = (a: number, b: number) => (b - a) / 1000;
    onTakeOver?.({
      storeSize: published.treeSize,
      kept: kept?.treeSize ?? null,
      adopted,
      treeSize: last.treeSize,
      tilesDownloaded,
      seconds: { download: sec(t0, t1), adopt: sec(t1, t2), index: sec(t2, t3), open: sec(t3, t4), publish: sec(t4, t5) },
    });
  } catch (e) {
    await log.close();
    throw e;
  }
  return log;
}

/** Checks one journal record against the tree (see the file comment) and extends the edge with it. */
function adoptRecord(
  tenant: string,
  where: string,
  obj: StoredObject,
  size: number,
  edge: Edge,
  verifiers: ReturnType<typeof verifiersOf>,
): { cp: CommitPoint; files: Extension['files'] } {
  const bad = (why: string) => new TlogError(ErrorCode.corrupt, `tenant ${tenant}: ${where}${journalKey(size)} ${why}: refusing to adopt it`);
  let rec;
  try {
    rec = parseBatchRecord(obj.bytes);
  } catch (e) {
    throw bad(`is not a batch record (${(e as Error).message})`);
  }
  if (rec.start !== size) throw bad(`starts at ${rec.start}`);
  if (rec.entries.length === 0) throw bad('holds no entries');
  let cp: CommitPoint;
  try {
    openNote(rec.note, verifiers);
    cp = commitPointOf(rec.note);
  } catch (e) {
    throw bad(`carries a note that is not this log's (${(e as Error).message})`);
  }
  const ext = edge.extend(
    rec.entries,
    rec.entries.map((e) => leafHash(e)),
  );
  if (cp.treeSize !== ext.end || !equalHashes(cp.rootHash, ext.rootHash)) throw bad('does not hash to its own checkpoint');
  return { cp, files: ext.files };
}

/** A prefix-scoped view of a store (`tenants/audit/`): every key is the prefix + the key. */
export function scopedStore(store: ObjectStore, prefix: string): ObjectStore {
  if (prefix !== '') {
    if (!prefix.endsWith('/')) throw new TlogError(ErrorCode.badInput, `store prefix ${JSON.stringify(prefix)} must end with "/"`);
    checkKey(prefix.slice(0, -1));
  }
  return {
    where: `${store.where}${prefix}`,
    putImmutable: (key, bytes, opts) => store.putImmutable(prefix + key, bytes, opts),
    putMutable: (key, bytes, expected: Expected, opts) => store.putMutable(prefix + key, bytes, expected, opts),
    get: (key) => store.get(prefix + key),
    list: async (p) => (await store.list(prefix + p)).map((k) => k.slice(prefix.length)),
  };
}
