/**
 * Faults between us and Rekor: down, 500, 429, a connection reset, an answer slower than the
 * timeout (after Rekor already logged the entry). Each must end with exactly one Rekor entry for
 * the checkpoint and a receipt that verifies; backoff state survives a restart. (Rekor v2's 429
 * is in rekor-v2.test.ts, where a real TSA gives the job its timestamp first.)
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { backoffDelay, parseRetryAfter, resolveAnchorConfig } from '../../src/anchor/config.js';
import { verifyReceipt } from '../../src/anchor/receipt.js';
import type { FakeRekorV1 } from './fake-rekor-v1.js';
import { downRekorV1AndLog, openAnchorer, upRekorV1AndLog, type Fixture } from './helpers.js';
import type { Anchorer } from '../../src/anchor/anchorer.js';
import { until } from '../helpers/wait.js';

let rekor: FakeRekorV1;
let f: Fixture;

beforeEach(async () => ({ rekor, f } = await upRekorV1AndLog()));
afterEach(() => downRekorV1AndLog({ rekor, f }));

async function expectOneVerifiedAnchor(a: Anchorer, digest: string): Promise<void> {
  const [job] = await a.list();
  expect(job?.state).toBe('done');
  expect(rekor.entriesWithDigest(digest)).toHaveLength(1);
  expect(rekor.entries).toHaveLength(1);
  await verifyReceipt(job!.receipt!, { rekorPublicKey: rekor.publicKeyPem, logVerifiers: f.log.verifiers });
}

describe('faults', () => {
  const cases: [string, () => Promise<void>, RegExp][] = [
    ['rekor down', () => rekor.down(), /ECONNREFUSED|connect/],
    ['HTTP 500', async () => rekor.fail({ kind: 'status', status: 500 }, { kind: 'status', status: 503 }), /HTTP \(500\)/],
    ['HTTP 429', async () => rekor.fail({ kind: 'status', status: 429, retryAfter: '0' }), /HTTP \(429\)/],
    ['a connection reset', async () => rekor.fail({ kind: 'reset' }), /socket hang up|ECONNRESET|reset/i],
  ];
  for (const [what, inject, err] of cases) {
    it(`${what}: the job stays pending, the timer retries it with backoff, one entry, verified`, async () => {
      const a = await openAnchorer(f, { url: rekor.url, publicKey: rekor.publicKeyPem });
      try {
        await inject();
        const before = Date.now();
        const first = await a.anchorNow(f.log.committed.note);
        expect(first.state).toBe('pending');
        expect(first.attempts).toBe(1);
        expect(first.lastError).toMatch(err);
        // Retried no sooner than the initial backoff (20 ms in these tests) after the attempt.
        expect(Date.parse(first.nextAttemptAt!)).toBeGreaterThanOrEqual(before + 20);
        if (what === 'rekor down') await rekor.up();
        a.start();
        await until('anchored', async () => (await a.list())[0]?.state === 'done');
        await expectOneVerifiedAnchor(a, first.digest);
      } finally {
        await a.stop();
      }
    });
  }

  it('an answer slower than the timeout, after Rekor logged the entry: retry gets 409, fetches it, one entry', async () => {
    const a = await openAnchorer(f, { url: rekor.url, publicKey: rekor.publicKeyPem }, {}, { timeoutMs: 300 });
    try {
      rekor.fail({ kind: 'slow', ms: 1500 });
      const first = await a.anchorNow(f.log.committed.note);
      expect(first.state).toBe('pending');
      expect(first.lastError).toMatch(/time|abort/i);
      expect(rekor.entries).toHaveLength(1); // Rekor has it; we do not know yet.
      a.start();
      await until('anchored', async () => (await a.list())[0]?.state === 'done');
      expect(rekor.requests.filter((q) => q.status === 409)).toHaveLength(1);
      await expectOneVerifiedAnchor(a, first.digest);
    } finally {
      await a.stop();
    }
  });

  it('a 400 (entry refused) is permanent: failed, not retried by the timer', async () => {
    const a = await openAnchorer(f, { url: rekor.url, publicKey: rekor.publicKeyPem });
    try {
      rekor.fail({ kind: 'status', status: 400 });
      const r = await a.anchorNow(f.log.committed.note);
      expect(r.state).toBe('failed');
      await a.retryDue();
      expect((await a.list())[0]?.state).toBe('failed');
      // Asked explicitly, it is tried again.
      expect((await a.anchorNow(f.log.committed.note)).state).toBe('done');
      expect(rekor.entries).toHaveLength(1);
    } finally {
      await a.stop();
    }
  });

  it('backoff survives a restart: attempts and next attempt time are on disk', async () => {
    let now = Date.now();
    const clock = () => now;
    const a = await openAnchorer(f, { url: rekor.url, publicKey: rekor.publicKeyPem }, { now: clock }, { initialBackoffMs: 60_000, maxBackoffMs: 600_000 });
    rekor.fail({ kind: 'status', status: 502 }, { kind: 'status', status: 502 });
    const r1 = await a.anchorNow(f.log.committed.note);
    expect(Date.parse(r1.nextAttemptAt!)).toBe(now + 60_000);
    await a.stop();
    const b = await openAnchorer(f, { url: rekor.url, publicKey: rekor.publicKeyPem }, { now: clock }, { initialBackoffMs: 60_000, maxBackoffMs: 600_000 });
    try {
      expect(await b.retryDue()).toEqual([]); // not due yet
      expect(rekor.requests).toHaveLength(1);
      now += 60_001;
      const [r2] = await b.retryDue();
      expect(r2?.attempts).toBe(2);
      expect(Date.parse(r2!.nextAttemptAt!)).toBe(now + 120_000); // doubled
      now += 120_001;
      const [r3] = await b.retryDue();
      expect(r3?.state).toBe('done');
      await expectOneVerifiedAnchor(b, r1.digest);
    } finally {
      await b.stop();
    }
  });

  it('the timer anchors on its interval, only when the tree grew, and never blocks appends', async () => {
    let now = Date.now();
    const a = await openAnchorer(f, { url: rekor.url, publicKey: rekor.publicKeyPem }, { now: () => now }, { intervalHours: 1 });
    try {
      a.start();
      await until('first anchor', async () => (await a.list())[0]?.state === 'done');
      await Promise.all(f.log.appendMany([Buffer.from('x'), Buffer.from('y')]));
      await a.tick();
      expect(await a.list()).toHaveLength(1); // interval not over
      now += 3_600_001;
      // Rekor holds its answer until released: an append completes while the upload is in flight.
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      let committed!: () => void;
      const inFlight = new Promise<void>((r) => (committed = r));
      rekor.onCommit = () => (committed(), held);
      let ticked = false;
      const pending = a.tick().then(() => (ticked = true));
      await inFlight;
      await f.log.append(Buffer.from('z'));
      expect(ticked).toBe(false);
      release();
      await pending;
      const jobs = await a.list();
      expect(jobs.map((j) => [j.treeSize, j.state])).toEqual([
        [3, 'done'],
        [5, 'done'],
      ]);
      now += 3_600_001;
      await a.tick();
      await a.tick();
      expect(await a.list()).toHaveLength(3); // size 6 now
    } finally {
      await a.stop();
    }
  });
});

describe('backoff and Retry-After', () => {
  it('doubles from the initial delay, caps, and never goes below Retry-After', () => {
    const cfg = resolveAnchorConfig({ rekor: { publicKey: '-----BEGIN PUBLIC KEY-----' }, initialBackoffMs: 1000, maxBackoffMs: 8000 });
    expect([1, 2, 3, 4, 5, 60].map((n) => backoffDelay(cfg, n))).toEqual([1000, 2000, 4000, 8000, 8000, 8000]);
    expect(backoffDelay(cfg, 1, 30_000)).toBe(30_000);
    expect(parseRetryAfter('120')).toBe(120_000);
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(parseRetryAfter(new Date(now + 10_000).toUTCString(), now)).toBe(10_000);
    expect(parseRetryAfter(new Date(now - 10_000).toUTCString(), now)).toBe(0);
    expect(parseRetryAfter('soon')).toBeUndefined();
  });
});
