/**
 * Applying a service configuration to the running tenants, at start and on every reload
 * (SIGHUP, POST /admin/reload). Everything a tenant has that can change without a restart does:
 * credentials, limits, duplicates, witnesses (policy, fail mode, cadence) and anchoring. A
 * tenant added to the file is opened (its log created on first start), a tenant gone from it is
 * closed. What cannot change while serving (the listen address, the data roots, the admin
 * token) is reported as needing a restart; a log's origin cannot change at all.
 *
 * All or nothing as far as checking goes: the whole file is checked (policies parse, origins
 * match the logs on disk) before anything changes, so a bad file changes nothing.
 */
import path from 'node:path';
import type { ServiceConfig, TenantConfig } from '../config/config.js';
import { TlogError, ErrorCode } from '../errors.js';
import { Anchorer, resolveAnchorConfig } from '../anchor/index.js';
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

/** The service settings bound at start. */
const RESTART_SETTINGS = ['listen', 'tilesDir', 'checkpointsDir', 'stateDir', 'adminToken'] as const;

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

function rootsOf(cfg: ServiceConfig): DataRoots {
  return { tilesRoot: cfg.tilesDir, checkpointsRoot: cfg.checkpointsDir, stateRoot: cfg.stateDir };
}

export class ConfiguredTenants {
  /** The configuration the service started with (its service-level settings stay in force). */
  private started: ServiceConfig | null = null;
  /** Each served tenant's configuration as applied. */
  private readonly applied = new Map<string, TenantConfig>();
  /** One apply at a time (two SIGHUPs in a row run one after the other). */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly registry: TenantRegistry,
    /** Options every log is opened with (logger, metrics hooks). */
    private readonly logOpts: LogOptions & { readonly logger: Logger },
    private readonly logger: Logger,
  ) {}

  apply(cfg: ServiceConfig): Promise<ApplyResult> {
    const run = this.queue.then(() => this.applyNow(cfg));
    this.queue = run.catch(() => {});
    return run;
  }

  private async applyNow(cfg: ServiceConfig): Promise<ApplyResult> {
    const started = this.started ?? cfg;
    // The data roots in force are those of the start.
    const roots = rootsOf(started);
    const policies = await this.check(cfg, roots);
    const applied: string[] = [];
    const restartNeeded = RESTART_SETTINGS.filter((k) => !same(cfg[k], started[k])).map((k) => `${k} (restart to apply)`);

    for (const tc of cfg.tenants) {
      const t = this.registry.get(tc.name);
      const policy = policies.get(tc.name) ?? null;
      if (!t) {
        await this.open(roots, tc, policy);
        applied.push(`+${tc.name}`);
        continue;
      }
      const was = this.applied.get(tc.name)!;
      const changed: string[] = [];
      if (!same(was.credentials, tc.credentials) || !same(was.limits, tc.limits)) {
        t.reconfigure(authFromConfig(tc), tc.limits);
        if (!same(was.credentials, tc.credentials)) changed.push('credentials');
        if (!same(was.limits, tc.limits)) changed.push('limits');
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
    for (const name of this.registry.names()) {
      if (wanted.has(name)) continue;
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
      const where = `tenants[${i}] (${tc.name})`;
      if (tc.witnesses) {
        try {
          policies.set(tc.name, parsePolicy(tc.witnesses.policy!));
        } catch (e) {
          throw new TlogError(ErrorCode.badInput, `${where}.witnesses: ${(e as Error).message}`, { cause: e });
        }
      }
      const served = this.registry.get(tc.name);
      const paths = logPaths(roots, tc.name);
      const origin = served ? served.log.origin : (await readIfExists(path.join(paths.stateDir, 'log.json'))) ? (await readLogConfig(paths.stateDir)).origin : tc.origin;
      if (origin !== tc.origin) {
        throw new TlogError(ErrorCode.badInput, `${where}.origin: the log has origin ${origin}, the file says ${tc.origin}; a log's origin cannot change`);
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
    let t: Tenant;
    try {
      t = await this.registry.add(log, authFromConfig(tc), tc.limits);
    } catch (e) {
      await log.close();
      throw e;
    }
    this.applied.set(tc.name, tc);
    if (policy && tc.witnesses) this.startCosigner(t, tc, policy);
    await this.startAnchoring(t, tc);
    this.logger.info({ tenant: tc.name, origin: tc.origin, created, treeSize: log.treeSize, verifierKeys: log.verifierKeys() }, created ? 'tenant created' : 'tenant opened');
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
    t.cosigner = new Cosigner(t.log, policy, { mode: w.mode, intervalMs: w.intervalSeconds * 1000, timeoutMs: w.timeoutSeconds * 1000, logger: this.logOpts.logger });
    t.cosigner.start();
  }

  private async startAnchoring(t: Tenant, tc: TenantConfig): Promise<void> {
    const a = tc.anchoring;
    if (!a?.enabled) return;
    const log: Log = t.log;
    t.anchorer = await Anchorer.open({
      paths: log.paths,
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
