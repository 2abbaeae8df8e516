/**
 * The anchoring outbox kept in a tenant's store (cluster mode, src/anchor/outbox.ts), on the
 * POSIX store and our loopback Rekor v1: a job is in the store before its first upload; a second
 * Anchorer over the same store (the next holder, with its own local state) finishes it at once
 * with the recorded signature (one Rekor entry); a node with another anchoring key is refused.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Anchorer } from '../../src/anchor/anchorer.js';
import { createAnchorKey } from '../../src/anchor/key.js';
import { ErrorCode, isTlogError } from '../../src/errors.js';
import { PosixStore } from '../../src/storage/posix-store.js';
import { logPaths } from '../../src/tile-store/paths.js';
import { rejectionOf } from '../helpers/errors.js';
import { makeTempDir, removeDir, tempDataRoots } from '../helpers/temp-dirs.js';
import type { FakeRekorV1 } from './fake-rekor-v1.js';
import { downRekorV1AndLog, fastConfig, upRekorV1AndLog, type Fixture } from './helpers.js';

let rekor: FakeRekorV1;
let f: Fixture;
let storeDir: string;
const dirs: string[] = [];

beforeEach(async () => {
  ({ rekor, f } = await upRekorV1AndLog());
  storeDir = makeTempDir('tlog-anchor-store-');
});
afterEach(async () => {
  await downRekorV1AndLog({ rekor, f });
  removeDir(storeDir);
  for (const d of dirs.splice(0)) removeDir(d);
});

/** An Anchorer of f's tenant on another node: its own local directories, the shared store and key. */
async function holder(key: Awaited<ReturnType<typeof createAnchorKey>>, store: PosixStore) {
  const { dir, roots } = tempDataRoots('tlog-anchor-node-');
  dirs.push(dir);
  return Anchorer.open({
    paths: logPaths(roots, f.paths.tenant),
    config: fastConfig({ url: rekor.url, publicKey: rekor.publicKeyPem }, { initialBackoffMs: 60_000, maxBackoffMs: 60_000 }),
    logVerifiers: f.log.verifiers,
    key,
    store,
  });
}

describe('the anchoring outbox in the store', () => {
  it('a job left pending by one holder is finished at once by the next, with its recorded signature: one Rekor entry', async () => {
    const store = new PosixStore(storeDir);
    const keyDir = makeTempDir('tlog-anchor-key-');
    dirs.push(keyDir);
    const key = await createAnchorKey(keyDir);
    const note = f.log.committed.note;
    const a = await holder(key, store);
    await rekor.down();
    const first = await a.anchorNow(note);
    expect(first).toMatchObject({ state: 'pending', attempts: 1 });
    // In the store before anything else: the job with its signature, and the public key.
    const stored = JSON.parse(Buffer.from((await store.get('anchors/jobs/0000000000000003.json'))!.bytes).toString());
    expect(stored).toMatchObject({ state: 'pending', treeSize: 3, attempts: 1, note });
    expect(Buffer.from((await store.get('anchors/anchor-key.pem'))!.bytes).toString()).toBe(key.publicKeyPem);
    await a.stop();

    await rekor.up();
    const b = await holder(key, store);
    try {
      // Due at once on the new holder, whatever backoff (60 s here) the last one set.
      const [done] = await b.retryDue();
      expect(done).toMatchObject({ state: 'done', treeSize: 3, attempts: 2 });
      expect(rekor.entriesWithDigest(done!.digest)).toHaveLength(1);
      const rec = JSON.parse(Buffer.from((await store.get('anchors/done/0000000000000003.json'))!.bytes).toString());
      expect(rec).toMatchObject({ state: 'done', signature: stored.signature, rekorLogIndex: done!.rekorLogIndex });
    } finally {
      await b.stop();
    }
    // A third holder imports the done job (the newest): nothing left to do, nothing sent again.
    const c = await holder(key, store);
    try {
      expect(await c.retryDue()).toEqual([]);
      expect((await c.list()).map((j) => [j.treeSize, j.state])).toEqual([[3, 'done']]);
    } finally {
      await c.stop();
    }
    expect(rekor.entries).toHaveLength(1);
  });

  it('a node whose anchoring key is not the one in the store is refused at open, naming the key file', async () => {
    const store = new PosixStore(storeDir);
    const [d1, d2] = [makeTempDir('tlog-anchor-key-'), makeTempDir('tlog-anchor-key-')];
    dirs.push(d1, d2);
    await (await holder(await createAnchorKey(d1), store)).stop();
    const e = await rejectionOf(holder(await createAnchorKey(d2), store));
    expect(isTlogError(e, ErrorCode.immutableConflict)).toBe(true);
    expect(String(e)).toMatch(/anchor-p256\.pem/);
  });
});
