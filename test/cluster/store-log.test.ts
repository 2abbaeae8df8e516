/**
 * A log whose truth is an object store (src/cluster/store-log.ts), against the real S3 server
 * (versitygw, test/storage/s3-server.ts): acknowledgements only once the store has the batch,
 * two writers racing on one tenant, a writer killed between its journal object and its
 * checkpoint, a stale local cache, and the store's objects as a tlog-tiles log.
 */
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStoreLog, scopedStore, type TakeOver } from '../../src/cluster/store-log.js';
import { historyKey, journalKey, tileKey } from '../../src/cluster/store-layout.js';
import type { StorePublished } from '../../src/cluster/store-sink.js';
import { ErrorCode, TlogError } from '../../src/errors.js';
import { createLogKeys } from '../../src/log/keys.js';
import type { AppendResult, Log } from '../../src/log/log.js';
import { commitPointOf } from '../../src/log/commit-point.js';
import { parseBatchRecord } from '../../src/log/journal-record.js';
import type { ObjectStore } from '../../src/storage/object-store.js';
import { checkObjectLock } from '../../src/storage/object-lock.js';
import { S3Store, type Retention } from '../../src/storage/s3-store.js';
import { changedTiles } from '../../src/tiles/layout.js';
import { S3Server } from '../storage/s3-server.js';
import { dataRootsIn, makeTempDir, removeDir } from '../helpers/temp-dirs.js';
import { until } from '../helpers/wait.js';

const BUCKET = 'logs';
const LOCKED = 'worm';
let server: S3Server;
let s3: S3Client;
let dir: string;
let keysDir: string;
const ORIGIN = 'example.com/store-log';

beforeAll(async () => {
  server = new S3Server({ buckets: [{ name: BUCKET }, { name: LOCKED, lock: true }] });
  await server.start();
  s3 = server.client();
  dir = makeTempDir('tlog-store-log-');
  await createLogKeys(path.join(dir, 'keyholder'), ORIGIN);
  keysDir = path.join(dir, 'keyholder', 'keys');
}, 900_000); // the first run builds versitygw

afterAll(async () => {
  s3?.destroy();
  await server?.close();
  if (dir) removeDir(dir);
});

let counter = 0;
const bucketStore = () => new S3Store(s3, { bucket: BUCKET });
const tenantStore = (tenant: string) => scopedStore(bucketStore(), `tenants/${tenant}/`);

/** Opens `tenant` from the store into the cache `node` (a directory per simulated node). */
function open(
  tenant: string,
  node: string,
  store: ObjectStore = tenantStore(tenant),
  epoch = 1,
  retention?: Retention,
  onTakeOver?: (t: TakeOver) => void,
): Promise<Log> {
  return openStoreLog(
    {
      store,
      tenant,
      cacheRoots: dataRootsIn(path.join(dir, node)),
      keysDir,
      origin: ORIGIN,
      epoch,
      retention,
      logOptions: { signPool: 'inline', checkFreeSpace: false },
    },
    onTakeOver,
  );
}

/** Opens `tenant` from `store` into the cache `node`, with what the take-over did. */
async function openSeen(tenant: string, node: string, store: ObjectStore): Promise<{ log: Log; t: TakeOver }> {
  let t: TakeOver | undefined;
  const log = await open(tenant, node, store, 1, undefined, (x) => (t = x));
  return { log, t: t! };
}

const entry = (tag: string, i: number) => Buffer.from(`${tag} entry ${i}`);
/** The entries of a log from `start`, as Buffers. */
const entriesOf = async (log: Log, start: number, n: number) => (await log.readEntries(start, n)).entries.map((e) => Buffer.from(e));

/** A store whose writes of one kind fail from a moment on (a kill, or the store gone, between two steps). */
function failing(inner: ObjectStore, fails: (op: 'immutable' | 'mutable', key: string) => boolean): ObjectStore {
  return {
    where: inner.where,
    putImmutable: (k, b, o) => (fails('immutable', k) ? Promise.reject(new TlogError(ErrorCode.io, `injected: ${k}`)) : inner.putImmutable(k, b, o)),
    putMutable: (k, b, e, o) => (fails('mutable', k) ? Promise.reject(new TlogError(ErrorCode.io, `injected: ${k}`)) : inner.putMutable(k, b, e, o)),
    get: (k) => inner.get(k),
    list: (p) => inner.list(p),
  };
}

/**
 * A store whose writes that `held` picks wait (a slow store, or a node about to die between two
 * steps) until released: then they go through ('pass') or fail ('fail': the node died).
 */
function gated(inner: ObjectStore, held: (op: 'immutable' | 'mutable', key: string) => boolean) {
  let mode: 'hold' | 'pass' | 'fail' = 'hold';
  const waiting: (() => void)[] = [];
  const heldKeys: string[] = [];
  const gate = <T>(op: 'immutable' | 'mutable', k: string, f: () => Promise<T>): Promise<T> => {
    const go = (): Promise<T> => (mode === 'fail' ? Promise.reject(new TlogError(ErrorCode.io, `injected: ${k}`)) : f());
    if (!held(op, k) || mode !== 'hold') return go();
    heldKeys.push(k);
    return new Promise<void>((r) => waiting.push(r)).then(go);
  };
  const store: ObjectStore = {
    where: inner.where,
    putImmutable: (k, b, o) => gate('immutable', k, () => inner.putImmutable(k, b, o)),
    putMutable: (k, b, e, o) => gate('mutable', k, () => inner.putMutable(k, b, e, o)),
    get: (k) => inner.get(k),
    list: (p) => inner.list(p),
  };
  return {
    store,
    heldKeys,
    release(to: 'pass' | 'fail') {
      mode = to;
      for (const w of waiting.splice(0)) w();
    },
  };
}

/** The size of the store's published checkpoint. */
const storeSize = async (store: ObjectStore) => commitPointOf(Buffer.from((await store.get('checkpoint'))!.bytes).toString()).treeSize;

async function settle(ps: Promise<AppendResult>[]): Promise<{ ok: AppendResult[]; failed: unknown[] }> {
  const rs = await Promise.allSettled(ps);
  return {
    ok: rs.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : [])),
    failed: rs.flatMap((r) => (r.status === 'rejected' ? [r.reason] : [])),
  };
}

describe('a log written through the store', () => {
  it('creates a new tenant, acknowledges appends once the store has them, and a take-over on another node continues the log', async () => {
    const tenant = `t${++counter}`;
    const store = tenantStore(tenant);
    const a = await open(tenant, 'a');
    const r = await Promise.all(a.appendMany(Array.from({ length: 300 }, (_, i) => entry('a', i))));
    for (const x of r) expect((await entriesOf(a, x.index, 1))[0]).toEqual(entry('a', x.index));
    // Closing writes what is behind the acknowledgements: the store then has the batch: its
    // journal object, its checkpoint, its history note.
    await a.close();
    const cp = await store.get('checkpoint');
    expect(Buffer.from(cp!.bytes).toString()).toBe(a.published.note);
    expect(commitPointOf(a.published.note).treeSize).toBe(300);
    expect(Buffer.from((await store.get(historyKey(300)))!.bytes).toString()).toBe(a.published.note);
    const starts = (await store.list('journal/')).map((k) => Number(k.slice('journal/'.length)));
    expect(starts[0]).toBe(0);
    // Another node takes over with an empty cache and continues at 300.
    const b = await open(tenant, 'b');
    expect(b.treeSize).toBe(300);
    const next = await b.append(entry('b', 0));
    expect(next.index).toBe(300);
    expect((await entriesOf(b, 5, 1))[0]).toEqual(entry('a', 5));
    await b.close();
  });

  it('stores the tlog-tiles objects with the headers our HTTP server sends for the same paths', async () => {
    const tenant = `t${++counter}`;
    const a = await open(tenant, 'a');
    await Promise.all(a.appendMany(Array.from({ length: 260 }, (_, i) => entry('h', i))));
    await a.close();
    const head = (key: string) => s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: `tenants/${tenant}/${key}` }));
    expect(await head('checkpoint')).toMatchObject({ ContentType: 'text/plain; charset=utf-8', CacheControl: 'no-store' });
    for (const key of ['tile/0/000', 'tile/entries/000', 'tile/0/001.p/4', 'tile/entries/001.p/4']) {
      expect(await head(key)).toMatchObject({ ContentType: 'application/octet-stream', CacheControl: 'public, max-age=604800, immutable' });
    }
  });

  it('a writer killed between its journal object and its checkpoint: the batch was acknowledged, and the next take-over adopts it, with the same history bytes', async () => {
    const tenant = `t${++counter}`;
    const a0 = await open(tenant, 'a');
    await Promise.all(a0.appendMany(Array.from({ length: 10 }, (_, i) => entry('k', i))));
    await a0.close();
    // The checkpoint write waits, then fails: the node dies after the journal object, tiles and history.
    const g = gated(tenantStore(tenant), (op, k) => op === 'mutable' && k === 'checkpoint');
    const a = await open(tenant, 'a', g.store);
    const ok = await Promise.all(a.appendMany(Array.from({ length: 5 }, (_, i) => entry('k', 10 + i))));
    // Acknowledged once its journal object is in the store, with the checkpoint of 15.
    expect(ok.map((x) => x.index)).toEqual([10, 11, 12, 13, 14]);
    expect(commitPointOf(ok[0]!.checkpoint).treeSize).toBe(15);
    await until('the checkpoint write held', () => g.heldKeys.includes('checkpoint'));
    g.release('fail');
    await until('the log stopped', () => a.stopped);
    expect(a.stopped!.code).toBe(ErrorCode.unavailable);
    await expect(a.append(entry('k', 99))).rejects.toMatchObject({ code: ErrorCode.unavailable });
    await a.close();
    const store = tenantStore(tenant);
    const journaled = parseBatchRecord((await store.get(journalKey(10)))!.bytes);
    expect(journaled.note).toBe(ok[0]!.checkpoint);
    expect(await storeSize(store)).toBe(10);
    const b = await open(tenant, 'b');
    expect(b.treeSize).toBe(15);
    expect(b.published.note).toBe(journaled.note);
    expect(Buffer.from((await store.get('checkpoint'))!.bytes).toString()).toBe(journaled.note);
    expect(Buffer.from((await store.get(historyKey(15)))!.bytes).toString()).toBe(journaled.note);
    expect(await entriesOf(b, 10, 5)).toEqual(Array.from({ length: 5 }, (_, i) => entry('k', 10 + i)));
    await b.close();
  });

  it('a batch is acknowledged once its journal object is in the store, while its tiles are held back; the store publishes its checkpoint only after them', async () => {
    const tenant = `t${++counter}`;
    const store = tenantStore(tenant);
    const a0 = await open(tenant, 'a');
    await Promise.all(a0.appendMany(Array.from({ length: 3 }, (_, i) => entry('w', i))));
    await a0.close();
    const g = gated(tenantStore(tenant), (op, k) => op === 'immutable' && k.startsWith('tile/'));
    const published: StorePublished[] = [];
    const a = await openStoreLog({
      store: g.store,
      tenant,
      cacheRoots: dataRootsIn(path.join(dir, 'a')),
      keysDir,
      origin: ORIGIN,
      epoch: 2,
      logOptions: { signPool: 'inline', checkFreeSpace: false },
      onPublished: (p) => published.push(p),
    });
    const r = await Promise.all(a.appendMany(Array.from({ length: 20 }, (_, i) => entry('w', 3 + i))));
    expect(r.map((x) => x.index)).toEqual(Array.from({ length: 20 }, (_, i) => 3 + i));
    expect(await store.get(journalKey(3))).not.toBeNull();
    // The node serves the acknowledged checkpoint (its own tiles are in place); the store's waits for its tiles.
    expect(a.published.treeSize).toBe(23);
    await until('the tiles held', () => g.heldKeys.includes('tile/0/000.p/23'));
    expect(await storeSize(store)).toBe(3);
    expect(await store.get('tile/0/000.p/23')).toBeNull();
    g.release('pass');
    await until('the store published 23', async () => (await storeSize(store)) === 23);
    expect(await store.get('tile/0/000.p/23')).not.toBeNull();
    expect(await store.get('tile/entries/000.p/23')).not.toBeNull();
    expect(published.at(-1)).toMatchObject({ treeSize: 23, batches: 1 });
    await a.close();
  });

  it('batches acknowledged ahead of the store, their tiles and checkpoint never written (the node dies): the next holder adopts them all, and at most maxBehind are ahead', async () => {
    const tenant = `t${++counter}`;
    const a0 = await open(tenant, 'a');
    await Promise.all(a0.appendMany(Array.from({ length: 250 }, (_, i) => entry('n', i))));
    await a0.close();
    // Bundles and history notes land; level-0 tiles and the checkpoint wait, then fail.
    const g = gated(tenantStore(tenant), (op, k) => op === 'mutable' || k.startsWith('tile/0/'));
    const a = await openStoreLog({
      store: g.store,
      tenant,
      cacheRoots: dataRootsIn(path.join(dir, 'a')),
      keysDir,
      origin: ORIGIN,
      epoch: 2,
      logOptions: { signPool: 'inline', checkFreeSpace: false },
      maxBehind: 4,
    });
    // One batch per append (each awaited): 4 acknowledged while nothing behind them is written,
    // crossing a full tile (250 + 4 * 3 = 262 > 256).
    const acked: AppendResult[] = [];
    for (let i = 0; i < 4; i++) acked.push(...(await Promise.all(a.appendMany([0, 1, 2].map((j) => entry('n', 250 + 3 * i + j))))));
    expect(acked.map((x) => x.index)).toEqual(Array.from({ length: 12 }, (_, i) => 250 + i));
    // A fifth batch waits for room: its journal object is not written while the four are ahead.
    const fifth = a.append(entry('n', 262));
    fifth.catch(() => {});
    await until('the first batch behind held', () => g.heldKeys.includes('tile/0/000.p/253'));
    expect(await tenantStore(tenant).get(journalKey(262))).toBeNull();
    g.release('fail');
    await expect(fifth).rejects.toMatchObject({ code: ErrorCode.unavailable });
    await until('the log stopped', () => a.stopped);
    await a.close();
    const store = tenantStore(tenant);
    expect(await storeSize(store)).toBe(250);
    expect(await store.get(journalKey(262))).toBeNull();
    expect(await store.get('tile/0/000')).toBeNull();
    // The next holder, with an empty cache, adopts the four records: every entry at its index,
    // a history note per batch, the full tile and the store's checkpoint at 262.
    const { log: b, t } = await openSeen(tenant, 'b', store);
    expect(t).toMatchObject({ storeSize: 250, adopted: 4, treeSize: 262 });
    for (const x of acked) expect((await entriesOf(b, x.index, 1))[0]).toEqual(entry('n', x.index));
    for (const end of [253, 256, 259, 262]) expect(await store.get(historyKey(end))).not.toBeNull();
    expect(await store.get('tile/0/000')).not.toBeNull();
    expect(await storeSize(store)).toBe(262);
    await b.close();
    // And a third node, from the store alone, opens at 262 (every tile the checkpoint implies is there).
    const c = await open(tenant, 'c');
    expect(c.treeSize).toBe(262);
    await c.close();
  });

  it("the store's checkpoint never precedes its tiles and never moves back, with many batches written behind the acknowledgements", async () => {
    const tenant = `t${++counter}`;
    const inner = tenantStore(tenant);
    const stored = new Set<string>();
    const problems: string[] = [];
    let last = -1;
    let n = 0;
    let journals = 0;
    let started = false;
    let done = false;
    const checking: ObjectStore = {
      ...inner,
      putImmutable: async (k, b, o) => {
        // Tiles land in another order than asked: every third one a moment later.
        if (k.startsWith('tile/') && ++n % 3 === 0) await new Promise((r) => setTimeout(r, 2));
        const out = await inner.putImmutable(k, b, o);
        stored.add(k);
        if (k.startsWith('journal/')) journals++;
        return out;
      },
      putMutable: async (k, b, e, o) => {
        const size = commitPointOf(Buffer.from(b).toString()).treeSize;
        for (const c of changedTiles(0, size)) if (!stored.has(tileKey(c))) problems.push(`checkpoint ${size} before ${tileKey(c)}`);
        if (size < last) problems.push(`checkpoint ${size} after ${last}`);
        last = size;
        // A slow checkpoint write: the next groups gather several batches each.
        const at = journals;
        if (started) await until('more batches journaled', () => done || journals >= at + 3);
        return inner.putMutable(k, b, e, o);
      },
    };
    const published: StorePublished[] = [];
    const a = await openStoreLog({
      store: checking,
      tenant,
      cacheRoots: dataRootsIn(path.join(dir, 'a')),
      keysDir,
      origin: ORIGIN,
      epoch: 1,
      logOptions: { signPool: 'inline', checkFreeSpace: false, maxBatch: 7 },
      onPublished: (p) => published.push(p),
    });
    started = true;
    await Promise.all(
      Array.from({ length: 8 }, async (_, w) => {
        for (let i = 0; i < 75; i++) await a.append(entry(`c${w}`, i));
      }),
    );
    done = true;
    await a.close();
    expect(problems).toEqual([]);
    // Two full tiles and bundles on the way, each written within a group of batches.
    expect(await storeSize(inner)).toBe(600);
    // Batches were written behind in groups (a checkpoint for several), and every batch has its history note.
    expect(published.some((p) => p.batches > 1)).toBe(true);
    let at = 0;
    while (at < 600) {
      const rec = parseBatchRecord((await inner.get(journalKey(at)))!.bytes);
      at += rec.entries.length;
      expect(Buffer.from((await inner.get(historyKey(at)))!.bytes).toString()).toBe(rec.note);
    }
  });

  it('the local journal record is written while the store takes the batch: a local failure stops the log unacknowledged, and the store keeps the batch', async () => {
    const tenant = `t${++counter}`;
    const a0 = await open(tenant, 'a');
    await Promise.all(a0.appendMany(Array.from({ length: 10 }, (_, i) => entry('d', i))));
    await a0.close();
    let failLocal = false;
    const a = await openStoreLog({
      store: tenantStore(tenant),
      tenant,
      cacheRoots: dataRootsIn(path.join(dir, 'a')),
      keysDir,
      origin: ORIGIN,
      epoch: 2,
      logOptions: {
        signPool: 'inline',
        checkFreeSpace: false,
        journal: {
          beforeAppend: () => {
            if (failLocal) throw new TlogError(ErrorCode.io, 'injected: the local journal fails');
          },
        },
      },
    });
    failLocal = true;
    const { ok, failed } = await settle(a.appendMany(Array.from({ length: 5 }, (_, i) => entry('d', 10 + i))));
    expect(ok).toEqual([]);
    expect(failed.length).toBe(5);
    expect(a.stopped?.message).toMatch(/append to journal/);
    await a.close();
    // The store took the batch (its round trips did not wait for the local disk): it counts.
    const rec = parseBatchRecord((await tenantStore(tenant).get(journalKey(10)))!.bytes);
    expect(rec.entries.map((e) => Buffer.from(e))).toEqual(Array.from({ length: 5 }, (_, i) => entry('d', 10 + i)));
    const b = await open(tenant, 'b');
    expect(b.treeSize).toBe(15);
    expect(b.published.note).toBe(rec.note);
    expect(await entriesOf(b, 10, 5)).toEqual(Array.from({ length: 5 }, (_, i) => entry('d', 10 + i)));
    await b.close();
  });

  it('a stale local cache never wins: a node that held the tenant before, or kept a journal record the store never got, reopens at the store', async () => {
    const tenant = `t${++counter}`;
    const a = await open(tenant, 'a');
    await Promise.all(a.appendMany(Array.from({ length: 7 }, (_, i) => entry('s', i))));
    await a.close();
    const b = await open(tenant, 'b');
    await Promise.all(b.appendMany(Array.from({ length: 4 }, (_, i) => entry('s', 7 + i))));
    await b.close();
    // Node a's cache says 7; the store says 11.
    const a2 = await open(tenant, 'a');
    expect(a2.treeSize).toBe(11);
    expect(await entriesOf(a2, 7, 4)).toEqual(Array.from({ length: 4 }, (_, i) => entry('s', 7 + i)));
    await a2.close();
    // Node a journals a batch locally that the store refuses (unreachable): never acknowledged, never adopted.
    const a3 = await open(
      tenant,
      'a',
      failing(tenantStore(tenant), (op, k) => op === 'immutable' && k.startsWith('journal/')),
    );
    const lost = await settle(a3.appendMany([entry('lost', 0)]));
    expect(lost.ok).toEqual([]);
    await a3.close();
    let seen: TakeOver | undefined;
    const a4 = await open(tenant, 'a', tenantStore(tenant), 1, undefined, (t) => (seen = t));
    // Its local journal holds the record: not closed cleanly, so not kept.
    expect(seen?.kept).toBeNull();
    expect(a4.treeSize).toBe(11);
    const after = await a4.append(entry('s', 11));
    expect(after.index).toBe(11);
    expect((await entriesOf(a4, 11, 1))[0]).toEqual(entry('s', 11));
    await a4.close();
  });

  it('a cache closed cleanly and a prefix of the store is kept: only the tiles since are downloaded, and its index (caught up) still finds every entry', async () => {
    const tenant = `t${++counter}`;
    const store = tenantStore(tenant);
    const a = await open(tenant, 'a');
    await Promise.all(a.appendMany(Array.from({ length: 300 }, (_, i) => entry('p', i))));
    await a.close();
    const b = await open(tenant, 'b');
    await Promise.all(b.appendMany(Array.from({ length: 30 }, (_, i) => entry('p', 300 + i))));
    await b.close();
    const { log: a2, t } = await openSeen(tenant, 'a', store);
    expect(t).toMatchObject({ kept: 300, storeSize: 330, treeSize: 330 });
    // 330 implies tile 0/001.p/74 and bundle 001.p/74 that 300 did not (001.p/44 then).
    expect(t.tilesDownloaded).toBe(2);
    // Entries before and after the kept size are where the store has them; the index knows both.
    expect(await entriesOf(a2, 295, 10)).toEqual(Array.from({ length: 10 }, (_, i) => entry('p', 295 + i)));
    expect(await a2.append(entry('p', 5))).toMatchObject({ index: 5, duplicate: true });
    expect(await a2.append(entry('p', 320))).toMatchObject({ index: 320, duplicate: true });
    expect(await a2.append(entry('p', 330))).toMatchObject({ index: 330, duplicate: false });
    await a2.close();
    // At the store's size: nothing to download.
    const { log: a3, t: t3 } = await openSeen(tenant, 'a', store);
    expect(t3).toMatchObject({ kept: 331, treeSize: 331, tilesDownloaded: 0 });
    await a3.close();
  });

  it('a cache of another chain (another root at its size, or beyond the store) is wiped and the store wins', async () => {
    const tenant = `t${++counter}`;
    const storeA = tenantStore(`${tenant}-a`);
    const storeB = tenantStore(`${tenant}-b`);
    // The same origin and keys, two chains: 7 entries in A, 11 other entries in B.
    const a = await open(tenant, 'a', storeA);
    await Promise.all(a.appendMany(Array.from({ length: 7 }, (_, i) => entry('A', i))));
    await a.close();
    const b = await open(tenant, 'b', storeB);
    await Promise.all(b.appendMany(Array.from({ length: 7 }, (_, i) => entry('B', i))));
    await Promise.all(b.appendMany(Array.from({ length: 4 }, (_, i) => entry('B', 7 + i))));
    await b.close();
    expect(await storeB.get(historyKey(7))).not.toBeNull();
    // Node a's cache (A at 7) against B: B's history at 7 has another root. (Its tiles would
    // all be downloaded again, but its index would still know A's entries.)
    const { log: a2, t } = await openSeen(tenant, 'a', storeB);
    expect(t).toMatchObject({ kept: null, treeSize: 11 });
    expect(await entriesOf(a2, 0, 11)).toEqual(Array.from({ length: 11 }, (_, i) => entry('B', i)));
    expect(await a2.append(entry('A', 3))).toMatchObject({ index: 11, duplicate: false });
    await a2.close();
    // Node b's cache (B at 11) against A (at 7): beyond the store.
    const { log: b2, t: tb } = await openSeen(tenant, 'b', storeA);
    expect(tb).toMatchObject({ kept: null, treeSize: 7 });
    expect(await entriesOf(b2, 0, 7)).toEqual(Array.from({ length: 7 }, (_, i) => entry('A', i)));
    expect(await b2.append(entry('B', 3))).toMatchObject({ index: 7, duplicate: false });
    await b2.close();
  });

  it('a kept cache whose tiles do not hash to the root after all is wiped and rebuilt from the store', async () => {
    const tenant = `t${++counter}`;
    const store = tenantStore(tenant);
    const a = await open(tenant, 'a');
    await Promise.all(a.appendMany(Array.from({ length: 9 }, (_, i) => entry('z', i))));
    await a.close();
    // The right edge's level-0 tile, damaged on this node's disk.
    const tile = path.join(dir, 'a', 'tiles', tenant, 'tile', '0', '000.p', '9');
    const bytes = await fsp.readFile(tile);
    bytes[0]! ^= 1;
    await fsp.writeFile(tile, bytes);
    const { log: a2, t } = await openSeen(tenant, 'a', store);
    expect(t).toMatchObject({ kept: null, treeSize: 9 });
    expect(await entriesOf(a2, 0, 9)).toEqual(Array.from({ length: 9 }, (_, i) => entry('z', i)));
    await a2.close();
  });

  it('a take-over whose store lacks a tile or bundle its checkpoint implies fails, naming it, and the next one completes', async () => {
    const tenant = `t${++counter}`;
    const a = await open(tenant, 'a');
    await Promise.all(a.appendMany(Array.from({ length: 600 }, (_, i) => entry('m', i))));
    await a.close();
    // One full bundle (downloaded last, while the index is built) and one level-0 tile (first) go missing.
    for (const gone of ['tile/entries/001', 'tile/0/000']) {
      const inner = tenantStore(tenant);
      const lacking: ObjectStore = { ...inner, get: (k) => (k === gone ? Promise.resolve(null) : inner.get(k)) };
      await expect(open(tenant, 'b', lacking)).rejects.toThrow(new RegExp(`${gone} is missing, yet the store's checkpoint \\(size 600\\) implies it`));
    }
    const b = await open(tenant, 'b');
    expect(await entriesOf(b, 256, 2)).toEqual([entry('m', 256), entry('m', 257)]);
    await b.close();
  });

  it('two writers of one tenant, the first unaware of the second: exactly one owns each journal place, and every acknowledged entry is at its index', async () => {
    const tenant = `t${++counter}`;
    const a = await open(tenant, 'a');
    await a.append(entry('w', 0));
    const b = await open(tenant, 'b', undefined, 2);
    const acked = new Map<number, Uint8Array>();
    const run = async (log: Log, tag: string) => {
      for (let round = 0; round < 20 && !log.stopped; round++) {
        const es = Array.from({ length: 3 }, (_, i) => entry(tag, round * 3 + i));
        const rs = await Promise.allSettled(log.appendMany(es));
        rs.forEach((r, i) => {
          if (r.status !== 'fulfilled') return;
          expect(acked.has(r.value.index)).toBe(false);
          acked.set(r.value.index, es[i]!);
        });
      }
    };
    await Promise.all([run(a, 'a'), run(b, 'b')]);
    // At least one of them lost a journal place and stopped with conflict (they raced for the same starts).
    const stops = [a.stopped, b.stopped].filter((s) => s !== null);
    expect(stops.length).toBeGreaterThan(0);
    for (const s of stops) expect(s!.code).toBe(ErrorCode.conflict);
    await a.close();
    await b.close();
    const c = await open(tenant, 'c');
    for (const [index, e] of acked) expect((await entriesOf(c, index, 1))[0]).toEqual(e);
    // The journal is one chain from 0 to the tree size, and each history note matches its record.
    const store = tenantStore(tenant);
    let at = 0;
    while (at < c.treeSize) {
      const rec = parseBatchRecord((await store.get(journalKey(at)))!.bytes);
      at += rec.entries.length;
      expect(Buffer.from((await store.get(historyKey(at)))!.bytes).toString()).toBe(rec.note);
    }
    expect(at).toBe(c.treeSize);
    await c.close();
  });

  it('Object Lock: a tenant with retention gets it on every immutable object; asking for it on a bucket without Object Lock is refused, naming both', async () => {
    const tenant = `t${++counter}`;
    const retention: Retention = { mode: 'GOVERNANCE', days: 1 };
    await expect(checkObjectLock(s3, BUCKET, tenant, retention)).rejects.toThrow(new RegExp(`tenant ${tenant} .*bucket ${BUCKET} has no Object Lock`));
    expect(await checkObjectLock(s3, LOCKED, tenant, retention)).toMatchObject({ enabled: true });
    const store = scopedStore(new S3Store(s3, { bucket: LOCKED }), `${tenant}/`);
    const a = await open(tenant, 'a', store, 1, retention);
    await Promise.all(a.appendMany(Array.from({ length: 3 }, (_, i) => entry('l', i))));
    await a.close();
    const head = (key: string) => s3.send(new HeadObjectCommand({ Bucket: LOCKED, Key: `${tenant}/${key}` }));
    for (const key of [journalKey(0), 'tile/0/000.p/3', 'tile/entries/000.p/3', historyKey(3), historyKey(0)]) {
      const h = await head(key);
      expect(h.ObjectLockMode, key).toBe('GOVERNANCE');
      expect(h.ObjectLockRetainUntilDate!.getTime()).toBeGreaterThan(Date.now());
    }
    // The mutable checkpoint is replaced every batch: it carries no retention.
    expect((await head('checkpoint')).ObjectLockMode).toBeUndefined();
  });
});

describe('the store going away under load', () => {
  it('no append is acknowledged once the store is gone; after it returns, the tenant reopens with every acknowledged entry at its index', async () => {
    const own = new S3Server({ buckets: [{ name: BUCKET }] });
    await own.start();
    let client = own.client();
    const tenant = 'gone';
    const storeOf = () => scopedStore(new S3Store(client, { bucket: BUCKET }), `${tenant}/`);
    try {
      const a = await open(tenant, 'gone-a', storeOf());
      const acked = new Map<number, Buffer>();
      const load = (async () => {
        for (let i = 0; i < 400 && !a.stopped; i++) {
          const e = entry('g', i);
          const p = a.append(e).then(
            (r) => void acked.set(r.index, e),
            () => {},
          );
          if (i % 8 === 7) await p;
        }
      })();
      await until('some appends acknowledged', () => acked.size >= 40);
      await own.stop();
      await load;
      await until('the log stopped', () => a.stopped);
      expect(a.stopped!.code).toBe(ErrorCode.unavailable);
      await expect(a.append(entry('g', 1000))).rejects.toMatchObject({ code: ErrorCode.unavailable });
      // Every acknowledged entry was in the store before it went: it is there once the store is back.
      await a.close();
      await own.restart();
      client.destroy();
      client = own.client();
      const b = await open(tenant, 'gone-a', storeOf(), 2);
      for (const [index, e] of acked) expect((await entriesOf(b, index, 1))[0]).toEqual(e);
      const r = await b.append(entry('g', 2000));
      expect(r.index).toBe(b.treeSize - 1);
      await b.close();
    } finally {
      client.destroy();
      await own.close();
    }
  });
});
