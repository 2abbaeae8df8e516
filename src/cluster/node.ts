/**
 * One node of a cluster: which tenants it sequences, kept by leases (lease.ts), spread between
 * the live nodes (members.ts), and where a request for a tenant it does not hold should go.
 *
 * Every pass (ttl / 3) the node rewrites its member object, lists who is live, and lists the
 * leases of the tenants it does not hold (LeaseManager.survey: one listing, a GET only for a lease
 * released or taken since the last pass): that tells it each tenant's holder (requests for it are
 * forwarded there, see route()) and lets it take a dead holder's lease one ttl after the last
 * renewal it saw. It takes a free lease when it is the tenant's preferred live node (rendezvous
 * hashing), or when the lease has stayed free for another ttl with nobody taking it (the
 * preferred node cannot, whatever the reason). A tenant it holds whose preferred node has been
 * live for a whole ttl is handed over: closed (its batches drained) and released, so that node
 * takes it at once. Each held lease is renewed on its own timer every ttl / 3, whatever the
 * passes do (a take-over that catches a log up from the store may take a while).
 *
 * A held tenant is dropped (its log closed) when its lease is lost, when the lease is no longer
 * valid because renewals failed (the store cannot be reached), or when its log stopped (the
 * store refused a write or could not be reached); a stopped log's lease is released when the
 * store allows, and the tenant is taken again on a later pass (after a backoff).
 *
 * Fail-over time after a SIGKILL is therefore about ttl (from the last renewal seen) + one pass
 * + the time to open the log from the store.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { isTlogError } from '../errors.js';
import type { Logger } from '../logger.js';
import { silentLogger } from '../logger.js';
import type { ObjectStore } from '../storage/object-store.js';
import { LeaseLost, LeaseManager, type Lease, type LeaseSurvey } from './lease.js';
import { Membership, preferredNode, type LiveMember } from './members.js';

/** A tenant's log as the node sees it while it holds the lease. */
export interface HeldLog {
  /** Why the log stopped taking appends for good (it must be closed and reopened), or null. */
  stopped(): string | null;
  close(): Promise<void>;
}

export interface ClusterNodeOptions {
  /** The bucket-level store (leases/ and nodes/ live in it). */
  readonly store: ObjectStore;
  /** This node's advertised URL: where other nodes forward requests for the tenants it holds. */
  readonly url: string;
  readonly ttlMs: number;
  /** The tenants of the cluster (the configuration's; may change on reload). */
  readonly tenants: () => readonly string[];
  /** Opens a tenant whose lease this node just took; the node closes what it returns. */
  readonly open: (tenant: string, lease: Lease) => Promise<HeldLog>;
  /** Called once a tenant is no longer held (after its log closed). */
  readonly onDropped?: (tenant: string, why: string) => void;
  readonly logger?: Logger;
  /** Monotonic ms (tests). */
  readonly clock?: () => number;
}

/** Where a request for a tenant goes. */
export type TenantRoute =
  | { readonly kind: 'local' }
  | { readonly kind: 'remote'; readonly url: string; readonly holder: string }
  /** Nobody can take it now (being opened, taken over, or the store unreachable): 503 + Retry-After. */
  | { readonly kind: 'none'; readonly why: string };

interface Held {
  lease: Lease;
  log: HeldLog | null;
  timer: NodeJS.Timeout;
  renewing: boolean;
  dropping: boolean;
  /** Set once the tenant is being given up: resolves when it is. */
  dropped?: Promise<void>;
}

/** The URL part of a holder name (`<url> <host>.<pid>.<random>`). */
export function holderUrl(holder: string): string {
  return holder.split(' ')[0] ?? '';
}

export class ClusterNode {
  readonly holder: string;
  readonly url: string;
  private readonly leases: LeaseManager;
  private readonly members: Membership;
  private readonly held = new Map<string, Held>();
  /** The holder each tenant not held here had at the last pass, and since when its lease is free. */
  private readonly seen = new Map<string, { holder: string; free: boolean; freeSince: number }>();
  /** Tenants not to be taken again before this time (monotonic ms): their open just failed. */
  private readonly backoff = new Map<string, { until: number; ms: number }>();
  private live: LiveMember[] = [];
  /** Tenants whose lease is being read again because their holder could not be reached. */
  private readonly refreshing = new Set<string>();
  private passes = 0;
  private timer: NodeJS.Timeout | null = null;
  private passing: Promise<void> | null = null;
  private stopped = false;
  private readonly logger: Logger;
  private readonly clock: () => number;
  private readonly periodMs: number;
  private storeError: string | null = null;

  constructor(private readonly o: ClusterNodeOptions) {
    this.url = o.url;
    this.holder = `${o.url} ${hostname()}.${process.pid}.${randomBytes(6).toString('hex')}`;
    this.clock = o.clock ?? (() => performance.now());
    this.leases = new LeaseManager(o.store, this.holder, { ttlMs: o.ttlMs, clock: this.clock });
    this.members = new Membership(o.store, o.url, this.holder, o.ttlMs, this.clock);
    this.logger = o.logger ?? silentLogger;
    this.periodMs = Math.max(1, Math.floor(o.ttlMs / 3));
  }

  start(): void {
    this.loop();
  }

  private loop(): void {
    if (this.stopped) return;
    this.timer = null;
    this.passing = this.pass().finally(() => {
      this.passing = null;
      if (!this.stopped) this.timer = setTimeout(() => this.loop(), this.periodMs);
    });
  }

  /**
   * The configuration changed (a reload): the tenants gone from it are given up now (closed,
   * their leases released), so once this resolves none of them is served here; the new ones are
   * looked at by a pass started now rather than at the next one.
   */
  async reconfigured(): Promise<void> {
    const tenants = new Set(this.o.tenants());
    await Promise.all([...this.held.keys()].filter((t) => !tenants.has(t)).map((t) => this.drop(t, 'no longer configured', true, 'info')));
    if (!this.stopped && this.passing === null && this.timer !== null) {
      clearTimeout(this.timer);
      this.loop();
    }
  }

  /** Tenants held here now (their logs open or opening). */
  heldTenants(): string[] {
    return [...this.held.keys()];
  }

  /** The live nodes at the last pass. */
  liveNodes(): string[] {
    return this.live.map((m) => m.url);
  }

  route(tenant: string): TenantRoute {
    const h = this.held.get(tenant);
    if (h)
      return h.log && !h.dropping
        ? { kind: 'local' }
        : { kind: 'none', why: `tenant ${tenant} is being ${h.dropping ? 'handed over' : 'opened'} on this node` };
    const s = this.seen.get(tenant);
    if (s && !s.free && s.holder !== '') {
      const url = holderUrl(s.holder);
      if (url !== this.o.url) return { kind: 'remote', url, holder: s.holder };
    }
    if (this.storeError) return { kind: 'none', why: `this node cannot reach the store (${this.storeError})` };
    return { kind: 'none', why: `no node holds tenant ${tenant} now (it is being taken over)` };
  }

  /**
   * The holder this node forwards a tenant's requests to could not be reached: read its lease
   * again now (at most one read at a time per tenant) rather than at the next pass, so requests
   * go to the new holder as soon as there is one.
   */
  holderUnreachable(tenant: string): void {
    if (this.held.has(tenant) || this.refreshing.has(tenant) || this.stopped) return;
    this.refreshing.add(tenant);
    const again = async () => {
      try {
        const s = await this.leases.peek(tenant);
        const prev = this.seen.get(tenant);
        this.seen.set(tenant, { holder: s.holder, free: s.free, freeSince: s.free && prev?.free ? prev.freeSince : this.clock() });
      } catch {
        // the next pass tries again
      }
    };
    // A short pause first: a burst of refused requests makes one read, not one each.
    setTimeout(() => void again().finally(() => this.refreshing.delete(tenant)), 100).unref();
  }

  /** One pass: heartbeat, who is live, peek at the leases, take what is ours, hand over what is not. */
  private async pass(): Promise<void> {
    const first = this.passes++ === 0;
    try {
      await this.members.heartbeat();
      this.live = await this.members.live();
      this.storeError = null;
    } catch (e) {
      this.storeError = (e as Error).message;
      this.logger.warn({ err: this.storeError }, 'cluster: cannot reach the store');
      return;
    }
    // The first pass only looks: nodes started together see each other before taking anything.
    const now = this.clock();
    const urls = this.live.map((m) => m.url);
    const tenants = this.o.tenants();
    const notHeld = tenants.filter((t) => !this.held.has(t));
    let survey: LeaseSurvey;
    try {
      survey = await this.leases.survey(notHeld);
    } catch (e) {
      this.storeError = (e as Error).message;
      this.logger.warn({ err: this.storeError }, 'cluster: cannot list the leases');
      return;
    }
    await Promise.all(
      notHeld.map(async (t) => {
        const s = survey.sightings.get(t);
        if (s === undefined) {
          this.logger.warn({ tenant: t, err: survey.errors.get(t)?.message }, 'cluster: cannot read the lease');
          return;
        }
        try {
          const prev = this.seen.get(t);
          const freeSince = s.free ? (prev?.free ? prev.freeSince : now) : now;
          this.seen.set(t, { holder: s.holder, free: s.free, freeSince });
          if (first || !s.free || this.stopped || this.held.has(t)) return;
          const b = this.backoff.get(t);
          if (b && now < b.until) return;
          // A lease that ran out (not released) says its holder is gone, whatever its member
          // object still says for up to a pass: it is left out of the choice.
          const gone = !s.released && s.holder !== '' ? holderUrl(s.holder) : null;
          const candidates = gone !== null && gone !== this.o.url ? urls.filter((u) => u !== gone) : urls;
          const mine = preferredNode(t, candidates) === this.o.url;
          if (mine || now - freeSince >= this.o.ttlMs) await this.take(t);
        } catch (e) {
          this.logger.warn({ tenant: t, err: (e as Error).message }, 'cluster: lease pass failed');
        }
      }),
    );
    for (const t of this.seen.keys()) if (!tenants.includes(t)) this.seen.delete(t);
    // Tenants gone from the configuration are given up; one hand-over per pass otherwise.
    for (const [t, h] of this.held) {
      if (h.dropping || h.log === null) continue;
      if (!tenants.includes(t)) {
        void this.drop(t, 'no longer configured', true, 'info');
        continue;
      }
      const pref = this.live.find((m) => m.url === preferredNode(t, urls));
      if (pref && pref.url !== this.o.url && now - pref.liveSince >= this.o.ttlMs) {
        void this.drop(t, `handed over to its preferred node ${pref.url}`, true, 'info');
        break;
      }
    }
  }

  private async take(tenant: string): Promise<void> {
    const r = await this.leases.acquire(tenant);
    if (!r.acquired) {
      this.seen.set(tenant, { holder: r.holder, free: false, freeSince: this.clock() });
      return;
    }
    const lease = r.lease;
    const h: Held = { lease, log: null, renewing: false, dropping: false, timer: setInterval(() => this.renew(tenant), this.periodMs) };
    this.held.set(tenant, h);
    this.seen.delete(tenant);
    this.logger.info({ tenant, epoch: lease.epoch }, 'cluster: lease taken; opening the tenant');
    // Not awaited: the passes (heartbeat, other tenants) go on while a log catches up.
    void this.openHeld(tenant, h);
  }

  private async openHeld(tenant: string, h: Held): Promise<void> {
    const lease = h.lease;
    try {
      const log = await this.o.open(tenant, lease);
      if (this.held.get(tenant) !== h || h.dropping) {
        await log.close();
        return;
      }
      h.log = log;
      this.backoff.delete(tenant);
      this.logger.info({ tenant, epoch: lease.epoch }, 'cluster: tenant open');
    } catch (e) {
      const prev = this.backoff.get(tenant)?.ms ?? this.periodMs;
      const ms = Math.min(prev * 2, 8 * this.o.ttlMs);
      this.backoff.set(tenant, { until: this.clock() + ms, ms });
      this.logger.error({ tenant, epoch: lease.epoch, err: (e as Error).message, retryInMs: ms }, 'cluster: opening the tenant failed');
      await this.drop(tenant, `open failed: ${(e as Error).message}`, true);
    }
  }

  private renew(tenant: string): void {
    const h = this.held.get(tenant);
    if (!h || h.dropping) return;
    const why = h.log?.stopped();
    if (why) {
      void this.drop(tenant, `its log stopped: ${why}`, true);
      return;
    }
    if (!this.leases.isValid(h.lease)) {
      void this.drop(tenant, 'the lease ran out before it could be renewed', false);
      return;
    }
    if (h.renewing) return;
    h.renewing = true;
    this.leases.renew(h.lease).then(
      (l) => {
        h.renewing = false;
        h.lease = l;
      },
      (e) => {
        h.renewing = false;
        if (e instanceof LeaseLost) void this.drop(tenant, e.message, false);
        else this.logger.warn({ tenant, err: isTlogError(e) ? e.message : String(e) }, 'cluster: lease renewal failed; retrying');
      },
    );
  }

  /** Stops using a held tenant: closes its log, then (if asked and still ours) releases the lease. Resolves once it is given up. */
  private drop(tenant: string, why: string, release: boolean, level: 'info' | 'warn' = 'warn'): Promise<void> {
    const h = this.held.get(tenant);
    if (!h) return Promise.resolve();
    h.dropped ??= this.dropNow(tenant, h, why, release, level);
    return h.dropped;
  }

  private async dropNow(tenant: string, h: Held, why: string, release: boolean, level: 'info' | 'warn'): Promise<void> {
    h.dropping = true;
    clearInterval(h.timer);
    this.logger[level]({ tenant, epoch: h.lease.epoch, why }, 'cluster: giving the tenant up');
    try {
      await h.log?.close();
    } catch (e) {
      this.logger.warn({ tenant, err: (e as Error).message }, 'cluster: closing the tenant failed');
    }
    if (release && this.leases.isValid(h.lease)) {
      try {
        await this.leases.release(h.lease);
      } catch (e) {
        this.logger.warn({ tenant, err: (e as Error).message }, 'cluster: releasing the lease failed; it expires by itself');
      }
    }
    this.held.delete(tenant);
    this.o.onDropped?.(tenant, why);
  }

  /** Stops the passes, closes every held tenant and releases its lease (the others take them at once). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.passing;
    await Promise.all([...this.held.keys()].map((t) => this.drop(t, 'the node is stopping', true, 'info')));
  }
}
