/**
 * Anchoring in Rekor (src/anchor) in a cluster: a tenant's anchoring outbox is kept in its store
 * (anchor/outbox.ts), so a job pending when its holder is SIGKILLed (Rekor unreachable meanwhile)
 * is finished by the node that takes the tenant over: one Rekor entry for that checkpoint, its
 * done record in the store. Two `tlog serve` nodes on a real versitygw, a fake Rekor v1 in this
 * process (test/anchor/fake-rekor-v1.ts, as test/anchor uses).
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeRekorV1 } from '../anchor/fake-rekor-v1.js';
import { ensureDist } from '../helpers/dist.js';
import { until } from '../helpers/wait.js';
import { append, TestCluster } from './helpers.js';

const T = 't0';
let c: TestCluster;
const rekor = new FakeRekorV1();

beforeAll(async () => {
  ensureDist();
  await rekor.up();
  c = new TestCluster(2, 1, 3);
  const keyFile = path.join(c.dir, 'rekor.pem');
  writeFileSync(keyFile, rekor.publicKeyPem);
  c.tenantExtra = () => ({
    anchoring: { intervalHours: 0.0001, tickSeconds: 0.2, timeoutSeconds: 2, rekor: { url: rekor.url, publicKeyFile: keyFile } },
  });
  await c.start();
}, 180_000);

afterAll(async () => {
  await c?.close();
  await rekor.down();
});

const jobKey = (kind: 'jobs' | 'done', n: number) => `tenants/${T}/anchors/${kind}/${String(n).padStart(16, '0')}.json`;

async function job(kind: 'jobs' | 'done', n: number): Promise<Record<string, unknown> | null> {
  const b = await c.storeGet(jobKey(kind, n));
  return b === null ? null : (JSON.parse(Buffer.from(b).toString()) as Record<string, unknown>);
}

async function appendOk(base: string, entry: string): Promise<number> {
  const r = await until(`append ${entry}`, async () => {
    const a = await append(base, T, entry);
    return a.status === 200 ? a : null;
  });
  return r.body!.index as number;
}

describe('anchoring in a cluster', { timeout: 300_000 }, () => {
  it('a job pending at a SIGKILL of the holder is finished by the next holder: one Rekor entry, done in the store', async () => {
    await c.untilSpread();
    // Anchoring works through the store: a checkpoint of size 2 anchored, its record done there.
    await appendOk(c.url(0), 'a0');
    await appendOk(c.url(0), 'a1');
    await until('size 2 anchored', async () => (await job('done', 2))?.state === 'done');
    expect(await c.storeGet(`tenants/${T}/anchors/anchor-key.pem`)).not.toBeNull();

    // Rekor unreachable: the next job is recorded (in the store, before any upload) and fails.
    await rekor.down();
    await appendOk(c.url(0), 'a2');
    const pending = await until('size 3 pending after a failed attempt', async () => {
      const j = await job('jobs', 3);
      return j && j.state === 'pending' && (j.attempts as number) >= 1 ? j : null;
    });
    const digest = createHash('sha256').update(String(pending.note)).digest('hex');
    expect(rekor.entriesWithDigest(digest)).toHaveLength(0);

    // Its holder dies; the other node takes the tenant over (and the log grows past size 3).
    const holder = (await c.holder(T))!;
    const victim = c.nodeOf(holder);
    const survivor = c.urls().find((u) => u !== holder)!;
    await c.kill(victim.index);
    // Rekor back: the survivor, once it holds the tenant, finishes the job of size 3 with the
    // signature recorded by the dead node.
    await rekor.up();
    expect(await appendOk(survivor, 'a3')).toBe(3);
    await until('the survivor holds the tenant', async () => (await c.holder(T)) === survivor);
    const done = await until(
      'size 3 done',
      async () => {
        const j = await job('done', 3);
        return j?.state === 'done' ? j : null;
      },
      60_000,
    );
    expect(done.note).toBe(pending.note);
    expect(done.signature).toBe(pending.signature);
    expect(rekor.entriesWithDigest(digest)).toHaveLength(1);
    expect(done.rekorLogIndex).toBe(rekor.entriesWithDigest(digest)[0]!.logIndex);
    await c.startNode(victim);
  });
});
