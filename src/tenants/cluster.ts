/**
 * `tlog serve --config` with a `cluster` section: this process is one node of several sharing
 * the tenants of one bucket. The node (cluster/node.ts) takes the leases of its share of the
 * tenants; each tenant whose lease it takes is opened from the store (its log writes through
 * the store) and served like any configured tenant (apply.ts openHeld), and closed again when
 * the lease is lost, handed over, or its log stops. Requests for the other tenants are forwarded
 * to their holder by the HTTP layer (http/forward.ts), from route().
 */
import { readSecretFile } from '../storage/secret-file.js';
import { TlogError, ErrorCode } from '../errors.js';
import type { ServiceConfig, StoreConfig } from '../config/config.js';
import type { Logger } from '../logger.js';
import { checkObjectLock } from '../storage/object-lock.js';
import { s3Client, type S3Endpoint } from '../storage/s3-store.js';
import { ListingS3Store } from '../storage/s3-listing.js';
import type { ObjectStore } from '../storage/object-store.js';
import { ClusterNode, type TenantRoute } from '../cluster/node.js';
import type { Lease } from '../cluster/lease.js';
import type { DataRoots } from '../tile-store/paths.js';
import type { Log, LogOptions } from '../log/log.js';
import type { TenantConfig } from '../config/config.js';
import type { ConfiguredTenants } from './apply.js';
import { openStoreLog, scopedStore } from '../cluster/store-log.js';
import { storeCounters } from '../cluster/store-counters.js';

/** Where a tenant's objects live in the bucket (under the configured prefix). */
export function tenantPrefix(tenant: string): string {
  return `tenants/${tenant}/`;
}

/**
 * The store's credentials: the 0600 file the configuration names, else the environment (the
 * AWS SDK's variable names). Never from the configuration file itself.
 */
export async function storeEndpoint(s: StoreConfig, env: NodeJS.ProcessEnv = process.env): Promise<S3Endpoint> {
  let creds: { accessKeyId?: unknown; secretAccessKey?: unknown; sessionToken?: unknown };
  if (s.credentialsFile !== undefined) {
    let text: string;
    try {
      text = await readSecretFile(s.credentialsFile);
    } catch (e) {
      throw new TlogError(ErrorCode.badInput, `store.credentialsFile: ${(e as Error).message}`, { cause: e });
    }
    try {
      creds = JSON.parse(text) as typeof creds;
    } catch {
      throw new TlogError(ErrorCode.badInput, `store.credentialsFile ${s.credentialsFile}: want JSON {"accessKeyId", "secretAccessKey"}`);
    }
  } else {
    creds = { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, sessionToken: env.AWS_SESSION_TOKEN };
  }
  if (typeof creds.accessKeyId !== 'string' || typeof creds.secretAccessKey !== 'string' || creds.accessKeyId === '' || creds.secretAccessKey === '') {
    throw new TlogError(
      ErrorCode.badInput,
      s.credentialsFile !== undefined
        ? `store.credentialsFile ${s.credentialsFile}: want JSON {"accessKeyId", "secretAccessKey"} (strings)`
        : 'the store needs credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or store.credentialsFile (a 0600 JSON file)',
    );
  }
  return {
    ...(s.endpoint ? { endpoint: s.endpoint } : {}),
    region: s.region,
    accessKeyId: creds.accessKeyId,
    secretAccessKey: creds.secretAccessKey,
    ...(typeof creds.sessionToken === 'string' && creds.sessionToken !== '' ? { sessionToken: creds.sessionToken } : {}),
  };
}

/** What opens a tenant's log from the store once this node holds its lease. */
export type StoreLogOpener = (o: {
  readonly store: ObjectStore;
  readonly tenantConfig: TenantConfig;
  readonly cacheRoots: DataRoots;
  readonly lease: Lease;
  readonly logOptions: LogOptions;
}) => Promise<Log>;

/** Opens a tenant from the store (cluster/store-log.ts), fenced by the lease's epoch. */
export const openTenantFromStore: StoreLogOpener = ({ store, tenantConfig, cacheRoots, lease, logOptions }) =>
  openStoreLog({
    store: scopedStore(store, tenantPrefix(tenantConfig.name)),
    tenant: tenantConfig.name,
    cacheRoots,
    keysDir: tenantConfig.keysDir!,
    origin: tenantConfig.origin,
    epoch: lease.epoch,
    logOptions,
    ...(tenantConfig.retention ? { retention: tenantConfig.retention } : {}),
  });

export interface ClusterServeOptions {
  readonly config: ServiceConfig;
  /** This node's URL as the other nodes reach it. */
  readonly url: string;
  /** This node's local cache (tiles/, checkpoints/, state/): rebuilt from the store as needed. */
  readonly cacheRoots: DataRoots;
  readonly configured: ConfiguredTenants;
  /** Default openTenantFromStore. */
  readonly openLog?: StoreLogOpener;
  readonly logger: Logger;
}

export class ClusterService {
  readonly node: ClusterNode;
  readonly store: ObjectStore;
  private readonly bucket: string;
  private readonly client;
  private readonly configured: ConfiguredTenants;

  private constructor(o: ClusterServeOptions, endpoint: S3Endpoint) {
    this.configured = o.configured;
    const s = o.config.store!;
    this.client = s3Client(endpoint);
    this.bucket = s.bucket;
    // Lists with etags: the passes read the leases and member objects with one listing each (cluster/lease.ts).
    this.store = new ListingS3Store(this.client, { bucket: s.bucket, prefix: s.prefix });
    const store = this.store;
    this.node = new ClusterNode({
      store,
      url: o.url,
      ttlMs: Math.round(o.config.cluster!.leaseTtlSeconds * 1000),
      tenants: () => o.configured.configuredNames(),
      logger: o.logger,
      open: async (tenant, lease) => {
        // Its retention against the bucket's Object Lock again: the bucket may have changed since start.
        await this.checkRetention(tenant);
        // Its signed-request counters from the store too: the last holder's must hold here.
        const t = await o.configured.openHeld(
          tenant,
          (tenantConfig, logOptions) => (o.openLog ?? openTenantFromStore)({ store, tenantConfig, cacheRoots: o.cacheRoots, lease, logOptions }),
          storeCounters(store, tenant),
          // Where its anchoring outbox is kept, for the next holder (anchor/outbox.ts).
          scopedStore(store, tenantPrefix(tenant)),
        );
        return {
          stopped: () => {
            const e = t.log.stopped;
            return e ? e.message : null;
          },
          close: () => o.configured.closeHeld(tenant),
        };
      },
    });
  }

  /**
   * Makes the node; refuses (naming the tenant and the bucket) a tenant whose Object Lock
   * retention the bucket cannot honour, before any lease is taken.
   */
  static async create(o: ClusterServeOptions): Promise<ClusterService> {
    const c = new ClusterService(o, await storeEndpoint(o.config.store!));
    try {
      for (const tc of o.config.tenants) await c.checkRetention(tc.name, tc);
    } catch (e) {
      c.client.destroy();
      throw e;
    }
    return c;
  }

  /** The tenant's retention checked against the bucket (storage/object-lock.ts); nothing for a tenant without one. */
  private async checkRetention(tenant: string, tc = this.configured.tenantConfig(tenant)): Promise<void> {
    await checkObjectLock(this.client, this.bucket, tenant, tc?.retention);
  }

  start(): void {
    this.node.start();
  }

  /** After a reload: tenants gone from the configuration are given up before this resolves (cluster/node.ts). */
  reconfigured(): Promise<void> {
    return this.node.reconfigured();
  }

  /** Where a request for `tenant` goes; null when it is not a tenant of the cluster. */
  route(tenant: string): TenantRoute | null {
    if (!this.configured.configuredNames().includes(tenant)) return null;
    return this.node.route(tenant);
  }

  /** Gives up every tenant (their logs closed, leases released: the other nodes take them at once). */
  async stop(): Promise<void> {
    await this.node.stop();
    this.client.destroy();
  }
}
