/**
 * Leases (src/cluster/lease.ts) against the real S3 server, and the same suite on the POSIX
 * store. Time is a hand-driven clock per contender: expiry is decided on each manager's own
 * monotonic clock, so the tests move those clocks and never wait on the real one.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaseLost, LeaseManager, recordSize, RECORD_BASE, type AcquireResult, type Lease } from '../../src/cluster/lease.js';
import { Membership } from '../../src/cluster/members.js';
import { ListingS3Store } from '../../src/storage/s3-listing.js';
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

/** A store that counts the requests made through it (a listing counts once, whatever its pages). */
function counting(inner: ObjectStore) {
  const n = { get: 0, list: 0, put: 0 };
  const store: ObjectStore = {
    where: inner.where,
    get: (k) => (n.get++, inner.get(k)),
    list: (p) => (n.list++, inner.list(p)),
    putImmutable: (k, b, o) => (n.put++, inner.putImmutable(k, b, o)),
    putMutable: (k, b, e, o) => (n.put++, inner.putMutable(k, b, e, o)),
    ...(inner.listObjects ? { listObjects: (p: string) => (n.list++, inner.listObjects!(p)) } : {}),
  };
  return { store, n, reset: () => Object.assign(n, { get: 0, list: 0, put: 0 }) };
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

  it('survey: absent and released leases are free at once, a held one once seen unchanged for exactly one ttl', async () => {
    const [held1, released, absent] = [freshTenant(), freshTenant(), freshTenant()];
    const a = contender(store(), 'a');
    const b = contender(store(), 'b');
    held(await a.m.acquire(held1));
    await a.m.release(held(await a.m.acquire(released)));
    const first = await b.m.survey([held1, released, absent]);
    expect(first.errors.size).toBe(0);
    expect(first.sightings.get(held1)).toEqual({ holder: 'a', epoch: 1, released: false, free: false });
    expect(first.sightings.get(released)).toEqual({ holder: 'a', epoch: 1, released: true, free: true });
    expect(first.sightings.get(absent)).toEqual({ holder: '', epoch: 0, released: false, free: true });
    b.advance(TTL - 1);
    expect((await b.m.survey([held1])).sightings.get(held1)!.free).toBe(false);
    b.advance(1);
    expect((await b.m.survey([held1])).sightings.get(held1)!.free).toBe(true);
    // acquire() counts from the survey's sighting: it takes the lease over now.
    expect(held(await b.m.acquire(held1)).epoch).toBe(2);
  });

  it('lease objects are padded to a size that tells their epoch and state', async () => {
    const tenant = freshTenant();
    const s = store();
    const a = contender(s, 'a'.repeat(512));
    const lease = held(await a.m.acquire(tenant));
    expect((await s.get(`leases/${tenant}`))!.bytes.length).toBe(recordSize(1, false));
    expect(recordSize(1, false)).toBe(RECORD_BASE + 2);
    await a.m.release(lease);
    const o = await s.get(`leases/${tenant}`);
    expect(o!.bytes.length).toBe(recordSize(1, true));
    expect(JSON.parse(Buffer.from(o!.bytes).toString())).toMatchObject({ epoch: 1, released: true });
    expect(() => new LeaseManager(s, 'a'.repeat(513), { ttlMs: TTL })).toThrow(/at most 512/);
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

  describe('read with listings', () => {
    it('a listing gives every key with the etag and size a GET gives, over several pages', async () => {
      const s = new ListingS3Store(clients[0]!, { bucket: 'cluster', prefix: 'paged/', pageSize: 3 });
      for (let i = 0; i < 7; i++) await s.putMutable(`leases/p${i}`, new TextEncoder().encode(`v${i}`.repeat(i + 1)), 'absent');
      const listed = await s.listObjects('leases/');
      expect(listed.map((l) => l.key)).toEqual(await s.list('leases/'));
      expect(listed).toHaveLength(7);
      for (const l of listed) {
        const o = await s.get(l.key);
        expect(l.etag).toBe(o!.etag);
        expect(l.size).toBe(o!.bytes.length);
      }
      expect(() => new ListingS3Store(clients[0]!, { bucket: 'cluster', pageSize: 1001 })).toThrow(/1 to 1000/);
    });

    it('a survey of N leases held elsewhere costs one listing and no GET while they are only renewed; a released or taken-over one is read', async () => {
      const N = 12;
      const prefix = `survey${Math.random().toString(36).slice(2, 8)}/`;
      const s3 = () => new ListingS3Store(clients[next++ % clients.length]!, { bucket: 'cluster', prefix, pageSize: 5 });
      const tenants = Array.from({ length: N }, (_, i) => `s${i}`);
      const a = contender(s3(), 'a');
      const c = contender(s3(), 'c');
      const counted = counting(s3());
      const b = { m: new LeaseManager(counted.store, 'b', { ttlMs: TTL, clock: () => bClock.t }) };
      const bClock = { t: 5_000_000 };
      let leases = await Promise.all(tenants.map(async (t) => held(await a.m.acquire(t))));
      // The first survey reads each lease once.
      const firstRead = bClock.t;
      let r = await b.m.survey(tenants);
      expect(counted.n).toEqual({ get: N, list: 1, put: 0 });
      expect([...r.sightings.values()].every((x) => x.holder === 'a' && !x.free)).toBe(true);
      // Unchanged: one listing, no GET.
      counted.reset();
      r = await b.m.survey(tenants);
      expect(counted.n).toEqual({ get: 0, list: 1, put: 0 });
      // Renewed (new etags, same holder, epoch and state): still no GET, and each renewal restarts the wait.
      bClock.t += TTL - 1;
      leases = await Promise.all(leases.map((l) => a.m.renew(l)));
      counted.reset();
      r = await b.m.survey(tenants);
      expect(counted.n).toEqual({ get: 0, list: 1, put: 0 });
      bClock.t += 1;
      r = await b.m.survey(tenants);
      expect([...r.sightings.values()].some((x) => x.free)).toBe(false);
      // One released, one taken over by c (epoch 2): those two are read, nothing else.
      await a.m.release(leases[0]!);
      await a.m.release(leases[1]!);
      held(await c.m.acquire(tenants[1]!));
      counted.reset();
      r = await b.m.survey(tenants);
      expect(counted.n).toEqual({ get: 2, list: 1, put: 0 });
      expect(r.sightings.get(tenants[0]!)).toEqual({ holder: 'a', epoch: 1, released: true, free: true });
      expect(r.sightings.get(tenants[1]!)).toEqual({ holder: 'c', epoch: 2, released: false, free: false });
      expect(r.sightings.get(tenants[2]!)).toEqual({ holder: 'a', epoch: 1, released: false, free: false });
      // A record inferred from renewals is read again once it is 8 ttls old, not before.
      bClock.t = firstRead + 8 * TTL - 1;
      leases = await Promise.all(leases.slice(2).map((l) => a.m.renew(l)));
      counted.reset();
      await b.m.survey(tenants);
      expect(counted.n.get).toBe(0);
      bClock.t += 1;
      leases = await Promise.all(leases.map((l) => a.m.renew(l)));
      counted.reset();
      await b.m.survey(tenants);
      expect(counted.n.get).toBe(N - 2);
    });

    it('live() lists the member objects and reads only the ones it has not seen', async () => {
      const prefix = `members${Math.random().toString(36).slice(2, 8)}/`;
      const s3 = () => new ListingS3Store(clients[next++ % clients.length]!, { bucket: 'cluster', prefix });
      const clock = { t: 1_000 };
      const others = Array.from({ length: 4 }, (_, i) => new Membership(s3(), `http://n${i}:1`, `n${i}`, TTL, () => clock.t));
      const counted = counting(s3());
      const me = new Membership(counted.store, 'http://me:1', 'me', TTL, () => clock.t);
      await me.heartbeat();
      for (const o of others) await o.heartbeat();
      counted.reset();
      expect((await me.live()).map((m) => m.url)).toEqual(['http://me:1', ...others.map((o) => o.url)]);
      expect(counted.n).toEqual({ get: 5, list: 1, put: 0 });
      for (const o of others.slice(1)) await o.heartbeat();
      clock.t += TTL;
      counted.reset();
      // n0 did not write for a ttl: not live; the others' new etags say they are, without a GET.
      expect((await me.live()).map((m) => m.url)).toEqual(['http://me:1', ...others.slice(1).map((o) => o.url)]);
      expect(counted.n).toEqual({ get: 0, list: 1, put: 0 });
    });
  });
});

describe('leases on POSIX', () => {
  let root: string;
  beforeAll(() => {
    root = makeTempDir('tlog-lease-');
  });
  afterAll(() => removeDir(root));
  suite(() => new PosixStore(root));
});
