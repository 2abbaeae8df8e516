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
 *
 * Reading many leases (survey): one listing of `leases/` per pass (S3 ListObjectsV2, 1000 keys a
 * page, each with its ETag and size) instead of a GET per tenant. A lease whose etag did not
 * change is what this manager last read. One whose etag changed is GET again unless the change
 * is a renewal, which the listing shows without a GET: every lease object is padded with spaces
 * (JSON allows them) to RECORD_BASE + 2 × (epoch mod EPOCH_SPAN) + (released ? 1 : 0) bytes, so a
 * renewal (same holder, epoch, released) keeps its size and a release or a take-over (a new
 * epoch) changes it. So a pass over N leases held elsewhere and only renewed costs one listing
 * and no GET. A record inferred this way is read again anyway once it is REFRESH_TTLS ttls old,
 * far fewer than EPOCH_SPAN take-overs. Nothing unsafe can follow from a wrong inference: the
 * sightings decide where requests go and when to try a take-over, and every take-over reads the
 * object and writes it conditionally (acquire).
 */
import { randomBytes } from 'node:crypto';
import { TlogError, ErrorCode } from '../errors.js';
import { isPreconditionFailed, listWithEtags, type ObjectStore } from '../storage/object-store.js';

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

/** A lease object's size, from which a listing tells a renewal from a release or a take-over (survey). */
export const RECORD_BASE = 1024;
export const EPOCH_SPAN = 2048;
/** Holder names longer than this would not fit the padded record. */
const HOLDER_MAX = 512;
/** A lease record inferred from the listing (a renewal) is read again once it is this many ttls old. */
const REFRESH_TTLS = 8;

/** The size the lease object of this epoch and state has. */
export function recordSize(epoch: number, released: boolean): number {
  return RECORD_BASE + 2 * (epoch % EPOCH_SPAN) + (released ? 1 : 0);
}

/** What a survey of the leases found, per tenant asked about. */
export interface LeaseSurvey {
  readonly sightings: Map<string, LeaseSighting>;
  /** Tenants whose lease object could not be read or parsed (the others are unaffected). */
  readonly errors: Map<string, Error>;
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
  /** Per tenant: the lease object's version last read or written here, what it says, its size, and when it was read. */
  private readonly records = new Map<string, { etag: string; rec: LeaseRecord; size: number; readAt: number }>();

  constructor(
    private readonly store: ObjectStore,
    readonly holder: string,
    opts: LeaseOptions,
  ) {
    if (!Number.isSafeInteger(opts.ttlMs) || opts.ttlMs < 1) throw new TlogError(ErrorCode.badInput, `lease ttl ${opts.ttlMs}: want a whole number of ms >= 1`);
    const margin = opts.marginMs ?? Math.ceil(opts.ttlMs / 10);
    if (!(margin >= 0 && margin < opts.ttlMs)) throw new TlogError(ErrorCode.badInput, `lease margin ${margin} ms: want 0 <= margin < ttl (${opts.ttlMs} ms)`);
    if (holder.length === 0) throw new TlogError(ErrorCode.badInput, 'lease holder name is empty');
    if (holder.length > HOLDER_MAX) throw new TlogError(ErrorCode.badInput, `lease holder name is ${holder.length} characters: want at most ${HOLDER_MAX}`);
    this.ttl = opts.ttlMs;
    this.margin = margin;
    this.clock = opts.clock ?? (() => performance.now());
    this.wallClock = opts.wallClock ?? Date.now;
  }

  /** The lease object's bytes: JSON padded with spaces to recordSize(epoch, released). */
  private record(epoch: number, released: boolean): { rec: LeaseRecord; bytes: Uint8Array } {
    const rec: LeaseRecord = {
      holder: this.holder,
      epoch,
      ttlMs: this.ttl,
      expiresAt: new Date(this.wallClock() + (released ? 0 : this.ttl)).toISOString(),
      released,
      nonce: randomBytes(12).toString('hex'),
    };
    const json = JSON.stringify(rec);
    // At most HOLDER_MAX + ~150 bytes, always below RECORD_BASE.
    const bytes = new TextEncoder().encode(`${json}${' '.repeat(recordSize(epoch, released) - 1 - Buffer.byteLength(json))}\n`);
    return { rec, bytes };
  }

  /**
   * Writes the lease object (held, or released) as `expected` and remembers what it wrote;
   * the new etag, or null when another writer came first.
   */
  private async put(tenant: string, epoch: number, released: boolean, expected: { etag: string } | 'absent'): Promise<string | null> {
    const { rec, bytes } = this.record(epoch, released);
    try {
      const etag = await this.store.putMutable(leaseKey(tenant), bytes, expected);
      this.seen.delete(tenant);
      this.records.set(tenant, { etag, rec, size: bytes.length, readAt: this.clock() });
      return etag;
    } catch (e) {
      if (isPreconditionFailed(e)) return null;
      throw e;
    }
  }

  /** Takes the lease with `epoch` if the object is still as `expected`: won, or told who won. */
  private async claim(tenant: string, epoch: number, expected: { etag: string } | 'absent'): Promise<AcquireResult> {
    const sent = this.clock();
    const etag = await this.put(tenant, epoch, false, expected);
    if (etag === null) return this.busy(tenant);
    return { acquired: true, lease: { tenant, holder: this.holder, epoch, etag, validUntil: sent + this.ttl - this.margin } };
  }

  /** Reads the lease object, remembering it; null when there is none. */
  private async read(tenant: string): Promise<{ etag: string; rec: LeaseRecord } | null> {
    const key = leaseKey(tenant);
    const cur = await this.store.get(key);
    if (cur === null) {
      this.records.delete(tenant);
      return null;
    }
    const rec = parseRecord(key, this.store.where, cur.bytes);
    this.records.set(tenant, { etag: cur.etag, rec, size: cur.bytes.length, readAt: this.clock() });
    return { etag: cur.etag, rec };
  }

  /** Notes a sighting of version `etag` (the wait for expiry starts at its first sighting). */
  private sight(tenant: string, etag: string, rec: LeaseRecord): LeaseSighting & { waited: number } {
    const now = this.clock();
    let seen = this.seen.get(tenant);
    if (seen?.etag !== etag) {
      seen = { etag, since: now };
      this.seen.set(tenant, seen);
    }
    const waited = now - seen.since;
    return { holder: rec.holder, epoch: rec.epoch, released: rec.released, free: rec.released || waited >= this.ttl, waited };
  }

  /**
   * Takes the tenant's lease if it is free: absent, released, or seen unchanged by this manager
   * for a whole ttl. Otherwise says who holds it and when to try again.
   */
  async acquire(tenant: string): Promise<AcquireResult> {
    const cur = await this.read(tenant);
    if (cur === null) return this.claim(tenant, 1, 'absent');
    const s = this.sight(tenant, cur.etag, cur.rec);
    if (!s.free) return { acquired: false, holder: s.holder, epoch: s.epoch, retryInMs: this.ttl - s.waited };
    return this.claim(tenant, s.epoch + 1, { etag: cur.etag });
  }

  /**
   * Reads the tenant's lease without taking it, noting the sighting as acquire() does: a node
   * that peeks at every lease on each pass takes over a dead holder's lease one ttl after its
   * last write, not one ttl after it first thought of taking it.
   */
  async peek(tenant: string): Promise<LeaseSighting> {
    const cur = await this.read(tenant);
    if (cur === null) return { holder: '', epoch: 0, released: false, free: true };
    const { waited: _, ...s } = this.sight(tenant, cur.etag, cur.rec);
    return s;
  }

  /**
   * peek() for many tenants at once: one listing of `leases/` (see the head of this file), a GET
   * only for a lease that changed other than by a renewal. Tenants without a lease object are free.
   */
  async survey(tenants: readonly string[]): Promise<LeaseSurvey> {
    const listed = await listWithEtags(this.store, 'leases/');
    const want = new Set(tenants);
    const sightings = new Map<string, LeaseSighting>();
    const errors = new Map<string, Error>();
    const now = this.clock();
    await Promise.all(
      listed.map(async ({ key, etag, size }) => {
        const tenant = key.slice('leases/'.length);
        if (!want.has(tenant)) return;
        try {
          let r = this.records.get(tenant);
          if (
            r !== undefined &&
            r.etag !== etag &&
            size === r.size &&
            size === recordSize(r.rec.epoch, r.rec.released) &&
            now - r.readAt < REFRESH_TTLS * this.ttl
          ) {
            // A renewal: same holder, epoch and state, only expiresAt and the nonce are new.
            r = { ...r, etag };
            this.records.set(tenant, r);
          }
          const cur = r?.etag === etag ? r : await this.read(tenant);
          if (cur === null) sightings.set(tenant, { holder: '', epoch: 0, released: false, free: true });
          else {
            const { waited: _, ...s } = this.sight(tenant, cur.etag, cur.rec);
            sightings.set(tenant, s);
          }
        } catch (e) {
          errors.set(tenant, e as Error);
        }
      }),
    );
    for (const t of tenants) if (!sightings.has(t) && !errors.has(t)) sightings.set(t, { holder: '', epoch: 0, released: false, free: true });
    return { sightings, errors };
  }

  /** After losing a race: who won, noted as a fresh sighting. */
  private async busy(tenant: string): Promise<AcquireResult> {
    const cur = await this.read(tenant);
    if (cur === null) return { acquired: false, holder: '', epoch: 0, retryInMs: 0 };
    this.seen.set(tenant, { etag: cur.etag, since: this.clock() });
    return { acquired: false, holder: cur.rec.holder, epoch: cur.rec.epoch, retryInMs: cur.rec.released ? 0 : this.ttl };
  }

  /** Extends a held lease by a ttl from now; LeaseLost when anyone else has written it since. */
  async renew(lease: Lease): Promise<Lease> {
    this.mine(lease);
    const sent = this.clock();
    const etag = await this.put(lease.tenant, lease.epoch, false, { etag: lease.etag });
    if (etag === null) throw new LeaseLost(lease.tenant, `another writer changed leases/${lease.tenant} since epoch ${lease.epoch} was ours`);
    return { ...lease, etag, validUntil: sent + this.ttl - this.margin };
  }

  /** Gives the lease up at once (the next holder need not wait); LeaseLost when it was no longer ours. */
  async release(lease: Lease): Promise<void> {
    this.mine(lease);
    const etag = await this.put(lease.tenant, lease.epoch, true, { etag: lease.etag });
    if (etag === null) throw new LeaseLost(lease.tenant, `another writer changed leases/${lease.tenant} since epoch ${lease.epoch} was ours`);
  }

  /** Whether the lease may still be used now (by this process's clock). */
  isValid(lease: Lease): boolean {
    return this.clock() < lease.validUntil;
  }

  private mine(lease: Lease): void {
    if (lease.holder !== this.holder) throw new TlogError(ErrorCode.badInput, `lease of tenant ${lease.tenant} belongs to ${lease.holder}, not ${this.holder}`);
  }
}
