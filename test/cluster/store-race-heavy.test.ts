/**
 * Heavy: two writers of one tenant racing through the store (src/cluster/store-log.ts), many
 * rounds, each writer "killed" at a random point of its store writes (from then on every write
 * it makes fails, as for a process that died between two steps: after a journal object, amid
 * a batch's tiles and bundles, before or after its history note, at its checkpoint). After each
 * round a third node takes the tenant over, and then:
 *   - every entry any writer acknowledged is at its index;
 *   - the store's journal is one chain from 0 to the tree size, and each history note is its
 *     record's note;
 *   - never two roots for one size, among every checkpoint a writer answered with, every
 *     history note and the published checkpoint.
 * The rounds continue one tenant, so the writers' caches are kept (closed cleanly) or wiped
 * (stopped) by turns. The seed is printed with a failure.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStoreLog, scopedStore } from '../../src/cluster/store-log.js';
import { historyKey, journalKey } from '../../src/cluster/store-layout.js';
import { ErrorCode, TlogError } from '../../src/errors.js';
import { commitPointOf } from '../../src/log/commit-point.js';
import { parseBatchRecord } from '../../src/log/journal-record.js';
import { createLogKeys } from '../../src/log/keys.js';
import type { AppendResult, Log } from '../../src/log/log.js';
import type { ObjectStore } from '../../src/storage/object-store.js';
import { S3Store } from '../../src/storage/s3-store.js';
import { dataRootsIn, makeTempDir, removeDir } from '../helpers/temp-dirs.js';
import { S3Server } from '../storage/s3-server.js';
import { prng } from '../prng.mjs';

const BUCKET = 'race';
const ORIGIN = 'example.com/store-race';
const ROUNDS = Number(process.env.TLOG_RACE_ROUNDS ?? 50);
let server: S3Server;
let dir: string;
let keysDir: string;

beforeAll(async () => {
  server = new S3Server({ buckets: [{ name: BUCKET }] });
  await server.start();
  dir = makeTempDir('tlog-store-race-');
  await createLogKeys(path.join(dir, 'keyholder'), ORIGIN);
  keysDir = path.join(dir, 'keyholder', 'keys');
}, 900_000); // the first run builds versitygw

afterAll(async () => {
  await server?.close();
  if (dir) removeDir(dir);
});

type Kind = 'journal' | 'tile' | 'history' | 'checkpoint';
const kindOf = (key: string): Kind =>
  key.startsWith('journal/') ? 'journal' : key.startsWith('history/') ? 'history' : key === 'checkpoint' ? 'checkpoint' : 'tile';

/**
 * A store that dies at the `at`-th write of `kind` (that write and every later one fail: the
 * process is gone). at = Infinity: never.
 */
function dying(inner: ObjectStore, kind: Kind, at: number): ObjectStore {
  let seen = 0;
  let dead = false;
  const write = <T>(key: string, f: () => Promise<T>): Promise<T> => {
    if (!dead && kindOf(key) === kind && ++seen >= at) dead = true;
    return dead ? Promise.reject(new TlogError(ErrorCode.io, `injected: killed at ${kind} write ${at} (${key})`)) : f();
  };
  return {
    where: inner.where,
    putImmutable: (k, b, o) => write(k, () => inner.putImmutable(k, b, o)),
    putMutable: (k, b, e, o) => write(k, () => inner.putMutable(k, b, e, o)),
    get: (k) => inner.get(k),
    list: (p) => inner.list(p),
  };
}

describe('two writers racing through the store, killed at random points, many rounds', () => {
  it('keeps every acknowledged entry at its index and never two roots for one size', async () => {
    const seed = Number(process.env.TLOG_RACE_SEED ?? Date.now() % 1_000_000);
    const rand = prng(seed);
    const client = server.client();
    const store = scopedStore(new S3Store(client, { bucket: BUCKET }), 'tenant/');
    const open = (node: string, s: ObjectStore, epoch: number) =>
      openStoreLog({
        store: s,
        tenant: 'race',
        cacheRoots: dataRootsIn(path.join(dir, node)),
        keysDir,
        origin: ORIGIN,
        epoch,
        logOptions: { signPool: 'inline', checkFreeSpace: false, maxBatch: 1 + Math.floor(rand() * 40) },
      });
    /** Every acknowledged entry by index, and every root seen by size (hex). */
    const acked = new Map<number, Buffer>();
    const roots = new Map<number, string>();
    const sawRoot = (note: string, where: string) => {
      const cp = commitPointOf(note);
      const root = Buffer.from(cp.rootHash).toString('hex');
      const before = roots.get(cp.treeSize);
      if (before !== undefined && before !== root) throw new Error(`seed ${seed}: two roots at size ${cp.treeSize} (${where})`);
      roots.set(cp.treeSize, root);
    };
    let epoch = 0;
    let stops = 0;
    try {
      for (let round = 0; round < ROUNDS; round++) {
        const kinds: Kind[] = ['journal', 'tile', 'history', 'checkpoint'];
        const killOf = () =>
          rand() < 0.25 ? { kind: 'checkpoint' as Kind, at: Infinity } : { kind: kinds[Math.floor(rand() * 4)]!, at: 1 + Math.floor(rand() * 12) };
        const ka = killOf();
        const kb = killOf();
        // A writer may die in its take-over already (adopting records writes tiles, history and
        // the checkpoint): then it takes no part in the round.
        const takeOver = (node: string, k: { kind: Kind; at: number }) =>
          open(node, dying(store, k.kind, k.at), ++epoch).catch((e: unknown) => {
            expect((e as TlogError).code, `seed ${seed}: ${(e as Error).message}`).toBe(ErrorCode.unavailable);
            return null;
          });
        const a = await takeOver('a', ka);
        const b = await takeOver('b', kb);
        const run = async (log: Log | null, tag: string) => {
          if (!log) return;
          for (let i = 0; i < 12 && !log.stopped; i++) {
            const es = Array.from({ length: 1 + Math.floor(rand() * 6) }, (_, j) => Buffer.from(`r${round} ${tag} ${i}.${j} ${seed}`));
            let ps: Promise<AppendResult>[];
            try {
              ps = log.appendMany(es);
            } catch {
              break; // stopped between two calls
            }
            const rs = await Promise.allSettled(ps);
            rs.forEach((r, j) => {
              if (r.status !== 'fulfilled') return;
              const have = acked.get(r.value.index);
              if (have && !have.equals(es[j]!)) throw new Error(`seed ${seed}: index ${r.value.index} acknowledged twice`);
              acked.set(r.value.index, es[j]!);
              sawRoot(r.value.checkpoint, `answer of ${tag}`);
            });
          }
        };
        await Promise.all([run(a, 'a'), run(b, 'b')]);
        for (const log of [a, b]) {
          const s = log ? log.stopped : null;
          if (!log || s) stops++;
          if (s) expect([ErrorCode.conflict, ErrorCode.unavailable], `seed ${seed}: ${s.message}`).toContain(s.code);
          await log?.close();
        }
        // A third node takes over (its cache kept from the last round when it closed cleanly).
        const c = await open('c', store, ++epoch);
        sawRoot(c.published.note, 'published');
        for (const [index, e] of acked) {
          expect(index, `seed ${seed}`).toBeLessThan(c.treeSize);
          expect(Buffer.from((await c.readEntries(index, 1)).entries[0]!), `seed ${seed}: entry ${index}`).toEqual(e);
        }
        // One chain of journal records; each history note is its record's note.
        let at = 0;
        while (at < c.treeSize) {
          const obj = await store.get(journalKey(at));
          expect(obj, `seed ${seed}: journal/${at}`).not.toBeNull();
          const rec = parseBatchRecord(obj!.bytes);
          at += rec.entries.length;
          const history = await store.get(historyKey(at));
          expect(history, `seed ${seed}: history/${at}`).not.toBeNull();
          expect(Buffer.from(history!.bytes).toString(), `seed ${seed}: history/${at}`).toBe(rec.note);
          sawRoot(rec.note, `history/${at}`);
        }
        expect(at, `seed ${seed}`).toBe(c.treeSize);
        await c.close();
      }
    } finally {
      client.destroy();
    }
    // The race and the kills happened: writers stopped, and entries were acknowledged.
    expect(stops, `seed ${seed}`).toBeGreaterThan(ROUNDS / 2);
    expect(acked.size, `seed ${seed}`).toBeGreaterThan(ROUNDS);
  }, 1_800_000);
});
