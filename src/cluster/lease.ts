/**
 * One active sequencer per tenant: a lease held in the object store, taken and renewed with
 * conditional writes only (object-store.ts), so the store decides every race.
 *
 * The lease of tenant T is the mutable object `leases/T`, JSON {holder, epoch, ttlMs,
 * expiresAt, released, nonce}:
 *  - acquire: create it with `If-None-Match: *` (epoch 1), or take over a released or expired
 *    one with `If-Match: <its etag>` (epoch + 1). Of any number of contenders, one wins.
 *  - renew: rewrite it with `If-Match: <the etag of our last write>`, same epoch. It fails once
 *    anyone else has written it: a holder whose lease was taken cannot renew (LeaseLost).
 *  - release: rewrite it as released, keeping the epoch, so the next holder takes it at once
 *    and with epoch + 1. The object is never deleted: the epoch only grows.
 * The epoch is the fencing token handed to the caller: the engine stamps it into what it
 * publishes, and on taking over rewrites the published checkpoint with it, so writes of an
 * older holder that is still running (paused, partitioned) fail their If-Match.
 *
 * Expiry without trusting clocks to agree (the rule of Kubernetes' client-go leader election):
 * `expiresAt` is the holder's wall clock, written for people and monitoring; nobody decides on
 * it. A contender decides on its own monotonic clock: it takes over only a lease object it has
 * seen unchanged (same etag) for a whole ttl since it first saw that version. The holder counts
 * from the moment it sent the write and stops using the lease `marginMs` before the ttl is over:
 *
 *     holder:    sent ──────────── valid ──────────── sent + ttl − margin
 *     contender:      saw (≥ sent) ───────── waits ttl ──────────── takes over (≥ sent + ttl)
 *
 * So wall clocks may disagree by any amount; what must hold is that the two clocks' rates
 * differ by less than margin / ttl (default 10 %; real clocks drift by parts per million). A
 * holder paused past its end (GC, swap, SIGSTOP) is not stopped by this: that is what the
 * fencing epoch and the checkpoint's If-Match are for. A contender that starts afresh waits a
 * full ttl before taking over a lease whose holder died: fail-over takes up to ttl + the time
 * between its tries.
 *
 * Holder names must be unique per process (host, pid, a random part): two processes under one
 * name would each take the other's lease for their own renewal.
 */
import { randomBytes } from 'node:crypto';
import { TlogError, ErrorCode } from '../errors.js';
import { isPreconditionFailed, type ObjectStore } from '../storage/object-store.js';

/** The lease object as stored. */
export interface LeaseRecord {
  readonly holder: string;
  readonly epoch: number;
  readonly ttlMs: number;
  /** The holder's wall-clock end of the lease (ISO 8601): for people, never decided on. */
  readonly expiresAt: string;
  readonly released: boolean;
  /** Makes every write's bytes unique, so an etag never comes back (object-store.ts). */
  readonly nonce: string;
}

/** A lease held by this process. */
export interface Lease {
  readonly tenant: string;
  readonly holder: string;
  /** The fencing epoch: grows by one with every new holder. */
  readonly epoch: number;
  /** The etag of our last write of the lease object: the If-Match of the next one. */
  readonly etag: string;
  /** On this process's monotonic clock (LeaseOptions.clock): the lease may be used before it. */
  readonly validUntil: number;
}

export type AcquireResult =
  | { readonly acquired: true; readonly lease: Lease }
  | { readonly acquired: false; readonly holder: string; readonly epoch: number; readonly retryInMs: number };

/** What a contender knows of a lease it does not hold (LeaseManager.peek). */
export interface LeaseSighting {
  /** The holder's name, '' when there is no lease object yet. */
  readonly holder: string;
  readonly epoch: number;
  readonly released: boolean;
  /** Whether acquire() would take it now: absent, released, or seen unchanged for a whole ttl. */
  readonly free: boolean;
}

export interface LeaseOptions {
  /** How long a lease lasts after each write (ms). Renew well within it, e.g. every ttl / 3. */
  readonly ttlMs: number;
  /** How long before the ttl is over the holder stops using the lease (default ttl / 10). */
  readonly marginMs?: number;
  /** Monotonic milliseconds (default performance.now). Tests drive it by hand. */
  readonly clock?: () => number;
  /** Wall-clock milliseconds, for expiresAt only (default Date.now). */
  readonly wallClock?: () => number;
}

/** The lease was taken by another holder (or never was ours): stop acting as the sequencer. */
export class LeaseLost extends TlogError {
  constructor(
    readonly tenant: string,
    detail: string,
  ) {
    super(ErrorCode.locked, `lease of tenant ${tenant} lost: ${detail}`);
    this.name = 'LeaseLost';
  }
}

/** Tenant names as the configuration accepts them (src/config/config.ts). */
const TENANT = /^[a-z0-9][a-z0-9_-]{0,62}$/;

export function leaseKey(tenant: string): string {
  if (!TENANT.test(tenant)) throw new TlogError(ErrorCode.badInput, `bad tenant name ${JSON.stringify(tenant)} for a lease`);
  return `leases/${tenant}`;
}

function parseRecord(key: string, where: string, bytes: Uint8Array): LeaseRecord {
  let r: Partial<LeaseRecord>;
  try {
    r = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) as Partial<LeaseRecord>;
  } catch {
    throw new TlogError(ErrorCode.corrupt, `lease ${where}${key} is not JSON`);
  }
  if (
    typeof r !== 'object' ||
    r === null ||
    typeof r.holder !== 'string' ||
    !Number.isSafeInteger(r.epoch) ||
    r.epoch! < 1 ||
    !Number.isSafeInteger(r.ttlMs) ||
    r.ttlMs! < 1 ||
    typeof r.expiresAt !== 'string' ||
    typeof r.released !== 'boolean' ||
    typeof r.nonce !== 'string'
  ) {
    throw new TlogError(ErrorCode.corrupt, `lease ${where}${key} is malformed: want {holder, epoch >= 1, ttlMs >= 1, expiresAt, released, nonce}`);
  }
  return r as LeaseRecord;
}

export class LeaseManager {
  private readonly ttl: number;
  private readonly margin: number;
  private readonly clock: () => number;
  private readonly wallClock: () => number;
  /** Per tenant: the version of the lease object we last saw, and when we first saw it. */
  private readonly seen = new Map<string, { etag: string; since: number }>();

  constructor(
    private readonly store: ObjectStore,
    readonly holder: string,
    opts: LeaseOptions,
  ) {
    if (!Number.isSafeInteger(opts.ttlMs) || opts.ttlMs < 1) throw new TlogError(ErrorCode.badInput, `lease ttl ${opts.ttlMs}: want a whole number of ms >= 1`);
    const margin = opts.marginMs ?? Math.ceil(opts.ttlMs / 10);
    if (!(margin >= 0 && margin < opts.ttlMs)) throw new TlogError(ErrorCode.badInput, `lease margin ${margin} ms: want 0 <= margin < ttl (${opts.ttlMs} ms)`);
    if (holder.length === 0) throw new TlogError(ErrorCode.badInput, 'lease holder name is empty');
    this.ttl = opts.ttlMs;
    this.margin = margin;
    this.clock = opts.clock ?? (() => performance.now());
    this.wallClock = opts.wallClock ?? Date.now;
  }

  private record(epoch: number, released: boolean): Uint8Array {
    const r: LeaseRecord = {
      holder: this.holder,
      epoch,
      ttlMs: this.ttl,
      expiresAt: new Date(this.wallClock() + (released ? 0 : this.ttl)).toISOString(),
      released,
      nonce: randomBytes(12).toString('hex'),
    };
    return new TextEncoder().encode(`${JSON.stringify(r)}\n`);
  }

  /** Writes the lease object as `expected`; the held lease, or null when another writer came first. */
  private async write(tenant: string, epoch: number, expected: { etag: string } | 'absent'): Promise<Lease | null> {
    const sent = this.clock();
    try {
      const etag = await this.store.putMutable(leaseKey(tenant), this.record(epoch, false), expected);
      this.seen.delete(tenant);
      return { tenant, holder: this.holder, epoch, etag, validUntil: sent + this.ttl - this.margin };
    } catch (e) {
      if (isPreconditionFailed(e)) return null;
      throw e;
    }
  }

  /**
   * Takes the tenant's lease if it is free: absent, released, or seen unchanged by this manager
   * for a whole ttl. Otherwise says who holds it and when to try again.
   */
  async acquire(tenant: string): Promise<AcquireResult> {
    const key = leaseKey(tenant);
    const cur = await this.store.get(key);
    if (cur === null) {
      const lease = await this.write(tenant, 1, 'absent');
      if (lease) return { acquired: true, lease };
      return this.busy(tenant);
    }
    const rec = parseRecord(key, this.store.where, cur.bytes);
    const now = this.clock();
    let seen = this.seen.get(tenant);
    if (seen?.etag !== cur.etag) {
      seen = { etag: cur.etag, since: now };
      this.seen.set(tenant, seen);
    }
    const waited = now - seen.since;
    if (!rec.released && waited < this.ttl) return { acquired: false, holder: rec.holder, epoch: rec.epoch, retryInMs: this.ttl - waited };
    const lease = await this.write(tenant, rec.epoch + 1, { etag: cur.etag });
    if (lease) return { acquired: true, lease };
    return this.busy(tenant);
  }

  /**
   * Reads the tenant's lease without taking it, noting the sighting as acquire() does: a node
   * that peeks at every lease on each pass takes over a dead holder's lease one ttl after its
   * last write, not one ttl after it first thought of taking it.
   */
  async peek(tenant: string): Promise<LeaseSighting> {
    const key = leaseKey(tenant);
    const cur = await this.store.get(key);
    if (cur === null) return { holder: '', epoch: 0, released: false, free: true };
    const rec = parseRecord(key, this.store.where, cur.bytes);
    const now = this.clock();
    let seen = this.seen.get(tenant);
    if (seen?.etag !== cur.etag) {
      seen = { etag: cur.etag, since: now };
      this.seen.set(tenant, seen);
    }
    return { holder: rec.holder, epoch: rec.epoch, released: rec.released, free: rec.released || now - seen.since >= this.ttl };
  }

  /** After losing a race: who won, noted as a fresh sighting. */
  private async busy(tenant: string): Promise<AcquireResult> {
    const key = leaseKey(tenant);
    const cur = await this.store.get(key);
    if (cur === null) return { acquired: false, holder: '', epoch: 0, retryInMs: 0 };
    const rec = parseRecord(key, this.store.where, cur.bytes);
    this.seen.set(tenant, { etag: cur.etag, since: this.clock() });
    return { acquired: false, holder: rec.holder, epoch: rec.epoch, retryInMs: rec.released ? 0 : this.ttl };
  }

  /** Extends a held lease by a ttl from now; LeaseLost when anyone else has written it since. */
  async renew(lease: Lease): Promise<Lease> {
    this.mine(lease);
    const next = await this.write(lease.tenant, lease.epoch, { etag: lease.etag });
    if (next === null) throw new LeaseLost(lease.tenant, `another writer changed leases/${lease.tenant} since epoch ${lease.epoch} was ours`);
    return next;
  }

  /** Gives the lease up at once (the next holder need not wait); LeaseLost when it was no longer ours. */
  async release(lease: Lease): Promise<void> {
    this.mine(lease);
    try {
      await this.store.putMutable(leaseKey(lease.tenant), this.record(lease.epoch, true), { etag: lease.etag });
    } catch (e) {
      if (isPreconditionFailed(e)) throw new LeaseLost(lease.tenant, `another writer changed leases/${lease.tenant} since epoch ${lease.epoch} was ours`);
      throw e;
    }
  }

  /** Whether the lease may still be used now (by this process's clock). */
  isValid(lease: Lease): boolean {
    return this.clock() < lease.validUntil;
  }

  private mine(lease: Lease): void {
    if (lease.holder !== this.holder) throw new TlogError(ErrorCode.badInput, `lease of tenant ${lease.tenant} belongs to ${lease.holder}, not ${this.holder}`);
  }
}
