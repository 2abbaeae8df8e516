/**
 * Applying a service configuration to the running tenants, at start and on every reload
 * (SIGHUP, POST /admin/reload). Everything a tenant has that can change without a restart does:
 * credentials, limits, duplicates, retirement, witnesses (policy, fail mode, cadence) and anchoring. A
 * tenant added to the file is opened (its log created on first start), a tenant gone from it is
 * closed. What cannot change while serving (the listen address, the data roots, the admin
 * token) is reported as needing a restart; a log's origin cannot change at all.
 *
 * All or nothing as far as checking goes: the whole file is checked (policies parse, origins
 * match the logs on disk) before anything changes, so a bad file changes nothing.
 *
 * New tenants are opened in parallel (OPEN_CONCURRENCY at a time): each is announced to the
 * registry first, so its requests get 503 + Retry-After while it opens (a crash recovery or an
 * index rebuild may take a while), and it serves as soon as it is open, whatever the others do.
 */
import type { CounterPersistence } from './counters.js';
import path from 'node:path';
import type { ServiceConfig, TenantConfig } from '../config/config.js';
import { isTlogError, TlogError, ErrorCode } from '../errors.js';
import { Anchorer, ANCHOR_KEY_FILE, anchorKeyFromPem, resolveAnchorConfig, type AnchorKey } from '../anchor/index.js';
import type { ObjectStore } from '../storage/object-store.js';
import { readSecretFile } from '../storage/secret-file.js';
import { readLogConfig, type Log, type LogOptions, type Logger } from '../log/log.js';
import { logPaths, type DataRoots } from '../tile-store/paths.js';
import { parsePolicy, type WitnessPolicy } from '../note/witness-policy.js';
import { readIfExists } from '../storage/durable.js';
import { Cosigner } from '../witness-client/cosigner.js';
import { authFromConfig, openOrInit, type Tenant, type TenantRegistry } from './registry.js';

export interface ApplyResult {
  /** The tenants served now. */
  readonly tenants: string[];
  /** What changed, one line each (`audit: witnesses`, `+devices`, `-old`). */
  readonly applied: string[];
  /** Settings the file changed that only a restart applies. */
  readonly restartNeeded: string[];
}

/**
 * Logs opened at once. Opening is part CPU (verifying the checkpoint's signatures, deriving the
 * keys), part I/O (reading the edge tiles, the recovery scan): a few at a time keep both busy,
 * and let the first tenants serve early instead of all of them at the end.
 */
export const OPEN_CONCURRENCY = 8;

/** Runs `fn` on every item, at most `limit` at a time; settles once all have. */
async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<PromiseSettledResult<void>[]> {
  const results: PromiseSettledResult<void>[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      try {
        await fn(items[i]!);
        results[i] = { status: 'fulfilled', value: undefined };
      } catch (e) {
        results[i] = { status: 'rejected', reason: e };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** Test hooks. */
export interface ApplyHooks {
  /** Called as a new tenant starts opening; its open waits for the promise (a test holds one tenant "opening"). */
  readonly opening?: (tenant: string) => Promise<void>;
}

/** How a cluster node opens a tenant whose lease it took (tenants/cluster.ts). */
export type OpenHeldLog = (tc: TenantConfig, opts: LogOptions) => Promise<Log>;

/** The service settings bound at start. */
const RESTART_SETTINGS = ['listen', 'tilesDir', 'checkpointsDir', 'stateDir', 'adminToken', 'store', 'cluster'] as const;

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

function rootsOf(cfg: ServiceConfig): DataRoots {
  return { tilesRoot: cfg.tilesDir, checkpointsRoot: cfg.checkpointsDir, stateRoot: cfg.stateDir };
}

/** Cluster mode: the anchoring key deployed with the tenant's keys (tlog init makes it beside them). */
async function deployedAnchorKey(tc: TenantConfig): Promise<AnchorKey> {
  const p = path.join(tc.keysDir!, ANCHOR_KEY_FILE);
  let pem: string;
  try {
    pem = await readSecretFile(p);
  } catch (e) {
    throw new TlogError(
      isTlogError(e) ? e.code : ErrorCode.io,
      `tenant ${tc.name}: anchoring in a cluster needs the anchoring key ${p} (tlog init makes it beside the log keys), the same on every node: ${(e as Error).message}`,
      { cause: e },
    );
  }
  return anchorKeyFromPem(pem, p);
}

export class ConfiguredTenants {
  /** The configuration the service started with (its service-level settings stay in force). */
  private started: ServiceConfig | null = null;
  /** Each served tenant's configuration as applied. */
  private readonly applied = new Map<string, TenantConfig>();
  /** One apply at a time (two SIGHUPs in a row run one after the other). */
  private queue: Promise<unknown> = Promise.resolve();
  /**
   * Cluster mode: every tenant of the file, served or not. A tenant is opened only while this
   * node holds its lease (openHeld, called by the cluster node), not by apply().
   */
  private readonly clusterTenants = new Map<string, TenantConfig>();
  /** Cluster mode: the store of each tenant held here (its anchoring outbox is kept there too). */
  private readonly tenantStores = new Map<string, ObjectStore>();

  constructor(
    private readonly registry: TenantRegistry,
    /** Options every log is opened with (logger, metrics hooks). */
    private readonly logOpts: LogOptions & { readonly logger: Logger },
    private readonly logger: Logger,
    private readonly hooks: ApplyHooks = {},
    /** Cluster mode (see clusterTenants). */
    private readonly cluster = false,
  ) {}

  /** Cluster mode: the tenants of the configuration in force. */
  configuredNames(): string[] {
    return [...this.clusterTenants.keys()];
  }

  /** Cluster mode: a tenant's configuration in force, or undefined. */
  tenantConfig(name: string): TenantConfig | undefined {
    return this.clusterTenants.get(name);
  }

  /**
   * Cluster mode: opens a tenant this node just took the lease of, with `openLog`, and serves it
   * with its configuration (credentials, limits, witnesses, anchoring) like apply() does.
   */
  async openHeld(name: string, openLog: OpenHeldLog, counters?: CounterPersistence, store?: ObjectStore): Promise<Tenant> {
    const tc = this.clusterTenants.get(name);
    if (!tc) throw new TlogError(ErrorCode.notFound, `tenant ${name} is not in the configuration`);
    const policy = tc.witnesses ? parsePolicy(tc.witnesses.policy!) : null;
    const log = await openLog(tc, { ...this.logOpts, allowDuplicates: tc.allowDuplicates, publishMode: policy ? 'cosigned' : 'each' });
    if (store) this.tenantStores.set(name, store);
    try {
      return await this.register(log, tc, policy, false, counters);
    } catch (e) {
      this.tenantStores.delete(name);
      throw e;
    }
  }

  /**
   * Announces the tenants of `cfg` not served yet as opening (their requests get 503 +
   * Retry-After, not 404), before apply() gets to them: `tlog serve` calls it before it binds
   * the port.
   */
  announce(cfg: ServiceConfig): void {
    if (this.cluster) return;
    for (const tc of cfg.tenants) this.registry.markOpening(tc.name);
  }

  apply(cfg: ServiceConfig): Promise<ApplyResult> {
    const run = this.queue.then(() => this.applyNow(cfg));
    this.queue = run.catch(() => {});
    return run;
  }

  private async applyNow(cfg: ServiceConfig): Promise<ApplyResult> {
    const started = this.started ?? cfg;
    // The data roots in force are those of the start.
    const roots = rootsOf(started);
    // A cluster node opens a tenant when it takes its lease, not here.
    const fresh = this.cluster ? [] : cfg.tenants.filter((tc) => !this.registry.get(tc.name));
    for (const tc of fresh) this.registry.markOpening(tc.name);
    let policies: Map<string, WitnessPolicy>;
    try {
      policies = await this.check(cfg, roots);
    } catch (e) {
      for (const tc of fresh) this.registry.forgetOpening(tc.name);
      throw e;
    }
    const applied: string[] = [];
    const restartNeeded = RESTART_SETTINGS.filter((k) => !same(cfg[k], started[k])).map((k) => `${k} (restart to apply)`);

    // New tenants, in parallel: each serves as soon as it is open.
    const opened = await eachLimited(fresh, OPEN_CONCURRENCY, async (tc) => {
      try {
        await this.hooks.opening?.(tc.name);
        await this.open(roots, tc, policies.get(tc.name) ?? null);
      } finally {
        this.registry.forgetOpening(tc.name);
      }
    });
    const failed = opened.flatMap((r, i) => (r.status === 'rejected' ? [{ name: fresh[i]!.name, reason: r.reason as unknown }] : []));
    for (const [i, r] of opened.entries()) if (r.status === 'fulfilled') applied.push(`+${fresh[i]!.name}`);
    if (failed.length > 0) {
      const first = failed[0]!;
      const others =
        failed.length > 1
          ? ` (and ${failed.length - 1} more: ${failed
              .slice(1)
              .map((f) => f.name)
              .join(', ')})`
          : '';
      const msg = first.reason instanceof Error ? first.reason.message : String(first.reason);
      throw new TlogError(isTlogError(first.reason) ? first.reason.code : ErrorCode.io, `tenant ${first.name} could not be opened: ${msg}${others}`, {
        cause: first.reason,
      });
    }

    for (const tc of cfg.tenants) {
      const t = this.registry.get(tc.name);
      const policy = policies.get(tc.name) ?? null;
      if (!t || fresh.includes(tc)) continue;
      const was = this.applied.get(tc.name)!;
      const changed: string[] = [];
      if (!same(was.credentials, tc.credentials) || !same(was.limits, tc.limits)) {
        t.reconfigure(authFromConfig(tc), tc.limits);
        if (!same(was.credentials, tc.credentials)) changed.push('credentials');
        if (!same(was.limits, tc.limits)) changed.push('limits');
      }
      if (was.retired !== tc.retired) {
        t.retired = tc.retired;
        changed.push(tc.retired ? 'retired' : 'no longer retired');
      }
      if (was.allowDuplicates !== tc.allowDuplicates) {
        t.log.setAllowDuplicates(tc.allowDuplicates);
        changed.push('allowDuplicates');
      }
      if (!same(was.witnesses, tc.witnesses)) {
        await this.setWitnesses(t, tc, policy);
        changed.push('witnesses');
      }
      if (!same(was.anchoring, tc.anchoring)) {
        await t.anchorer?.stop();
        t.anchorer = null;
        await this.startAnchoring(t, tc);
        changed.push('anchoring');
      }
      this.applied.set(tc.name, tc);
      if (changed.length > 0) applied.push(`${tc.name}: ${changed.join(', ')}`);
    }
    const wanted = new Set(cfg.tenants.map((t) => t.name));
    if (this.cluster) {
      for (const name of this.clusterTenants.keys()) if (!wanted.has(name)) applied.push(`-${name}`);
      for (const tc of cfg.tenants) if (!this.clusterTenants.has(tc.name) && this.started) applied.push(`+${tc.name}`);
      this.clusterTenants.clear();
      for (const tc of cfg.tenants) this.clusterTenants.set(tc.name, tc);
    }
    for (const name of this.registry.names()) {
      // A cluster node gives up a tenant gone from the file itself (its lease is released too).
      if (wanted.has(name) || this.cluster) continue;
      await this.registry.remove(name);
      this.applied.delete(name);
      applied.push(`-${name}`);
    }
    this.started ??= cfg;
    return { tenants: this.registry.names(), applied, restartNeeded };
  }

  /**
   * Checks the whole file against what runs and what is on disk, changing nothing. Returns the
   * parsed witness policies by tenant.
   */
  private async check(cfg: ServiceConfig, roots: DataRoots): Promise<Map<string, WitnessPolicy>> {
    const policies = new Map<string, WitnessPolicy>();
    for (const [i, tc] of cfg.tenants.entries()) {
      if (!tc.witnesses) continue;
      try {
        policies.set(tc.name, parsePolicy(tc.witnesses.policy!));
      } catch (e) {
        throw new TlogError(ErrorCode.badInput, `tenants[${i}] (${tc.name}).witnesses: ${(e as Error).message}`, { cause: e });
      }
    }
    // The logs' origins, read all at once (a small file each).
    const origins = await Promise.all(
      cfg.tenants.map(async (tc) => {
        const served = this.registry.get(tc.name);
        if (served) return served.log.origin;
        // A cluster's logs are in the store: openStoreLog checks the origin against the keys.
        if (this.cluster) return tc.origin;
        const paths = logPaths(roots, tc.name);
        return (await readIfExists(path.join(paths.stateDir, 'log.json'))) ? (await readLogConfig(paths.stateDir)).origin : tc.origin;
      }),
    );
    for (const [i, tc] of cfg.tenants.entries()) {
      if (origins[i] !== tc.origin) {
        throw new TlogError(
          ErrorCode.badInput,
          `tenants[${i}] (${tc.name}).origin: the log has origin ${origins[i]}, the file says ${tc.origin}; a log's origin cannot change`,
        );
      }
    }
    return policies;
  }

  private async open(roots: DataRoots, tc: TenantConfig, policy: WitnessPolicy | null): Promise<void> {
    const { log, created } = await openOrInit(roots, tc.name, tc.origin, {
      ...this.logOpts,
      allowDuplicates: tc.allowDuplicates,
      publishMode: policy ? 'cosigned' : 'each',
    });
    await this.register(log, tc, policy, created);
  }

  /** Serves an open log as the tenant of `tc`: credentials, limits, witnesses, anchoring. */
  private async register(log: Log, tc: TenantConfig, policy: WitnessPolicy | null, created: boolean, counters?: CounterPersistence): Promise<Tenant> {
    let t: Tenant;
    try {
      t = await this.registry.add(log, authFromConfig(tc), tc.limits, tc.retired, counters);
    } catch (e) {
      await log.close();
      throw e;
    }
    this.applied.set(tc.name, tc);
    if (policy && tc.witnesses) this.startCosigner(t, tc, policy);
    await this.startAnchoring(t, tc);
    this.logger.info(
      { tenant: tc.name, origin: tc.origin, created, treeSize: log.treeSize, verifierKeys: log.verifierKeys() },
      created ? 'tenant created' : 'tenant opened',
    );
    return t;
  }

  /** Cluster mode: stops serving a tenant whose lease this node gives up (its log is closed). */
  async closeHeld(name: string): Promise<void> {
    await this.registry.remove(name);
    this.applied.delete(name);
    this.tenantStores.delete(name);
  }

  /**
   * New witness settings for a served tenant. Adding witnesses: from now on checkpoints are
   * published by the cosigner only (none without cosignatures follows, once this returns).
   * Removing them: every committed checkpoint is published again, the newest at once.
   */
  private async setWitnesses(t: Tenant, tc: TenantConfig, policy: WitnessPolicy | null): Promise<void> {
    await t.cosigner?.stop();
    t.cosigner = null;
    await t.log.setPublishMode(policy ? 'cosigned' : 'each');
    if (policy && tc.witnesses) this.startCosigner(t, tc, policy);
  }

  private startCosigner(t: Tenant, tc: TenantConfig, policy: WitnessPolicy): void {
    const w = tc.witnesses!;
    t.cosigner = new Cosigner(t.log, policy, {
      mode: w.mode,
      intervalMs: w.intervalSeconds * 1000,
      timeoutMs: w.timeoutSeconds * 1000,
      logger: this.logOpts.logger,
    });
    t.cosigner.start();
  }

  private async startAnchoring(t: Tenant, tc: TenantConfig): Promise<void> {
    const a = tc.anchoring;
    if (!a?.enabled) return;
    const log: Log = t.log;
    const store = this.tenantStores.get(tc.name);
    t.anchorer = await Anchorer.open({
      paths: log.paths,
      // A cluster's tenant: the outbox is kept in its store, and the key is the deployed one
      // (the same on every node: jobs left by one holder are re-sent by the next, same signature).
      ...(store ? { store, key: await deployedAnchorKey(tc) } : {}),
      config: resolveAnchorConfig({
        enabled: true,
        intervalHours: a.intervalHours,
        timeoutMs: a.timeoutSeconds * 1000,
        tickMs: a.tickSeconds * 1000,
        rekor: { apiVersion: a.rekor.apiVersion, url: a.rekor.url, readUrl: a.rekor.readUrl, publicKey: a.rekor.publicKey!, origin: a.rekor.origin },
        tsa: a.tsa ? { url: a.tsa.url, certChain: a.tsa.certChain! } : undefined,
      }),
      // The newest published checkpoint: the cosigned one where witnesses are configured.
      latest: () => log.published.note,
      logVerifiers: log.verifiers,
      logger: this.logOpts.logger,
    });
    t.anchorer.start();
  }
}
