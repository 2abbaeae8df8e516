/**
 * Leases (src/cluster/lease.ts) against the real S3 server, and the same suite on the POSIX
 * store. Time is a hand-driven clock per contender: expiry is decided on each manager's own
 * monotonic clock, so the tests move those clocks and never wait on the real one.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaseLost, LeaseManager, type AcquireResult, type Lease } from '../../src/cluster/lease.js';
import { ErrorCode, isTlogError } from '../../src/errors.js';
import type { ObjectStore } from '../../src/storage/object-store.js';
import { PosixStore } from '../../src/storage/posix-store.js';
import { S3Store } from '../../src/storage/s3-store.js';
import { S3Server } from '../storage/s3-server.js';
import { rejectionOf } from '../helpers/errors.js';
import { makeTempDir, removeDir } from '../helpers/temp-dirs.js';

const TTL = 10_000;

/** A contender with its own clock (ms), starting at an arbitrary point: clocks of two processes share no origin. */
function contender(store: ObjectStore, name: string, start = Math.floor(Math.random() * 1e9)) {
  const clock = { t: start };
  const m = new LeaseManager(store, name, { ttlMs: TTL, clock: () => clock.t });
  return { m, clock, advance: (ms: number) => void (clock.t += ms) };
}

function held(r: AcquireResult): Lease {
  if (!r.acquired) throw new Error(`not acquired: held by ${r.holder}`);
  return r.lease;
}

let tenantCounter = 0;
const freshTenant = () => `t${++tenantCounter}`;

function suite(store: () => ObjectStore) {
  it('racing contenders on a free lease: exactly one holds it, with epoch 1; the others are told who', async () => {
    const tenant = freshTenant();
    const cs = Array.from({ length: 8 }, (_, i) => contender(store(), `node-${i}`));
    const results = await Promise.all(cs.map((c) => c.m.acquire(tenant)));
    const winners = results.flatMap((r, i) => (r.acquired ? [i] : []));
    expect(winners).toHaveLength(1);
    const lease = held(results[winners[0]!]!);
    expect(lease.epoch).toBe(1);
    for (const r of results) if (!r.acquired) expect(r).toMatchObject({ holder: `node-${winners[0]}`, epoch: 1 });
  });

  it('expiry: a contender takes over a lease seen unchanged for exactly one ttl on its own clock, with epoch + 1', async () => {
    const tenant = freshTenant();
    const a = contender(store(), 'a');
    const b = contender(store(), 'b');
    const first = held(await a.m.acquire(tenant));
    expect(await b.m.acquire(tenant)).toMatchObject({ acquired: false, holder: 'a', epoch: 1, retryInMs: TTL });
    b.advance(TTL - 1);
    expect(await b.m.acquire(tenant)).toMatchObject({ acquired: false, holder: 'a', retryInMs: 1 });
    b.advance(1);
    const taken = held(await b.m.acquire(tenant));
    expect(taken.epoch).toBe(first.epoch + 1);
    expect(taken.holder).toBe('b');
    // The holder's wall clock says nothing: a's clock never moved, yet its lease is gone.
    const lost = await rejectionOf(a.m.renew(first));
    expect(lost).toBeInstanceOf(LeaseLost);
    expect(isTlogError(lost, ErrorCode.locked)).toBe(true);
    expect(String(lost)).toContain(tenant);
  });

  it('a renewal restarts the wait: a contender must see the new version unchanged for a whole ttl', async () => {
    const tenant = freshTenant();
    const a = contender(store(), 'a');
    const b = contender(store(), 'b');
    let lease = held(await a.m.acquire(tenant));
    expect((await b.m.acquire(tenant)).acquired).toBe(false);
    b.advance(TTL - 1);
    a.advance(TTL / 3);
    lease = await a.m.renew(lease);
    expect(lease.epoch).toBe(1);
    b.advance(1); // a ttl after b first saw the lease, but not after it saw the renewed one
    expect(await b.m.acquire(tenant)).toMatchObject({ acquired: false, holder: 'a', retryInMs: TTL });
    b.advance(TTL - 1);
    expect((await b.m.acquire(tenant)).acquired).toBe(false);
    b.advance(1);
    expect(held(await b.m.acquire(tenant)).epoch).toBe(2);
  });

  it('a holder whose lease was taken can neither renew nor release, and its takeover does not undo the new holder', async () => {
    const tenant = freshTenant();
    const a = contender(store(), 'a');
    const b = contender(store(), 'b');
    const old = held(await a.m.acquire(tenant));
    await b.m.acquire(tenant);
    b.advance(TTL);
    const now = held(await b.m.acquire(tenant));
    expect(await rejectionOf(a.m.renew(old))).toBeInstanceOf(LeaseLost);
    expect(await rejectionOf(a.m.release(old))).toBeInstanceOf(LeaseLost);
    // a tries again as a contender: it sees b's lease and must wait.
    expect(await a.m.acquire(tenant)).toMatchObject({ acquired: false, holder: 'b', epoch: 2 });
    expect((await b.m.renew(now)).epoch).toBe(2);
  });

  it('racing takeovers of an expired lease: exactly one wins, with epoch + 1', async () => {
    const tenant = freshTenant();
    const a = contender(store(), 'a');
    held(await a.m.acquire(tenant));
    const cs = Array.from({ length: 8 }, (_, i) => contender(store(), `c${i}`));
    for (const c of cs) expect((await c.m.acquire(tenant)).acquired).toBe(false);
    for (const c of cs) c.advance(TTL);
    const results = await Promise.all(cs.map((c) => c.m.acquire(tenant)));
    const winners = results.filter((r) => r.acquired);
    expect(winners).toHaveLength(1);
    expect(held(winners[0]!).epoch).toBe(2);
  });

  it('release: the next contender takes the lease at once, with epoch + 1', async () => {
    const tenant = freshTenant();
    const a = contender(store(), 'a');
    const b = contender(store(), 'b');
    const lease = held(await a.m.acquire(tenant));
    expect((await b.m.acquire(tenant)).acquired).toBe(false);
    await a.m.release(lease);
    expect(held(await b.m.acquire(tenant)).epoch).toBe(2);
    // Releasing twice: the lease is no longer what a wrote.
    expect(await rejectionOf(a.m.release(lease))).toBeInstanceOf(LeaseLost);
  });

  it('the holder may use its lease until ttl − margin after it sent the write, not a millisecond more', async () => {
    const tenant = freshTenant();
    const a = contender(store(), 'a');
    const sent = a.clock.t;
    const lease = held(await a.m.acquire(tenant));
    expect(lease.validUntil).toBe(sent + TTL - TTL / 10);
    a.advance(TTL - TTL / 10 - 1);
    expect(a.m.isValid(lease)).toBe(true);
    a.advance(1);
    expect(a.m.isValid(lease)).toBe(false);
    // A late renewal still succeeds when nobody took the lease meanwhile (the store decides).
    const renewed = await a.m.renew(lease);
    expect(a.m.isValid(renewed)).toBe(true);
  });

  it('a malformed lease object stops acquire with corrupt_state naming it', async () => {
    const tenant = freshTenant();
    const s = store();
    await s.putMutable(`leases/${tenant}`, new TextEncoder().encode('{"holder":"x","epoch":0}'), 'absent');
    const e = await rejectionOf(contender(s, 'a').m.acquire(tenant));
    expect(isTlogError(e, ErrorCode.corrupt)).toBe(true);
    expect(String(e)).toContain(`leases/${tenant}`);
  });

  it('bad tenant names and options are refused', async () => {
    const s = store();
    expect(isTlogError(await rejectionOf(contender(s, 'a').m.acquire('../x')), ErrorCode.badInput)).toBe(true);
    expect(isTlogError(await rejectionOf(contender(s, 'a').m.acquire('Upper')), ErrorCode.badInput)).toBe(true);
    expect(() => new LeaseManager(s, 'a', { ttlMs: 0 })).toThrow(/ttl/);
    expect(() => new LeaseManager(s, 'a', { ttlMs: 100, marginMs: 100 })).toThrow(/margin/);
    expect(() => new LeaseManager(s, '', { ttlMs: 100 })).toThrow(/holder/);
  });
}

describe('leases on S3 (versitygw)', () => {
  let server: S3Server;
  const clients: S3Client[] = [];
  beforeAll(async () => {
    server = new S3Server({ buckets: [{ name: 'cluster' }] });
    await server.start();
    for (let i = 0; i < 4; i++) clients.push(server.client());
  }, 900_000);
  afterAll(async () => {
    for (const c of clients) c.destroy();
    await server?.close();
  });
  let next = 0;
  suite(() => new S3Store(clients[next++ % clients.length]!, { bucket: 'cluster', prefix: 'cluster/' }));
});

describe('leases on POSIX', () => {
  let root: string;
  beforeAll(() => {
    root = makeTempDir('tlog-lease-');
  });
  afterAll(() => removeDir(root));
  suite(() => new PosixStore(root));
});
