/**
 * The per-tenant gauges of /metrics: what an operator alerts on, read from the tenants' public
 * getters when Prometheus scrapes (prom-client collect callbacks), so the append path does no
 * work for them. Few per tenant by design: a service of 100 tenants must stay a small scrape.
 *
 * Times are Unix timestamps in seconds, not ages, as the Prometheus instrumentation guide asks
 * ("Timestamps, not time since"): alert on `time() - tlog_checkpoint_timestamp_seconds > 900`.
 * Labels: `tenant` always first (observe.ts filters private tenants' series by it), then `witness`.
 */
import { Gauge, type Registry } from 'prom-client';
import type { Tenant } from '../tenants/registry.js';

/** What the gauges read at each scrape. */
export interface TenantSource {
  /** The tenants served (open). */
  readonly tenants: () => readonly Tenant[];
  /** How many are still being opened. */
  readonly opening: () => number;
}

type G<L extends string = 'tenant'> = Gauge<L>;

/**
 * Registers the gauges on `registry`. Each scrape starts from nothing: a tenant no longer served
 * drops out of every gauge (the counters of observe.ts keep its totals).
 */
export function registerTenantGauges(registry: Registry, source: () => TenantSource | null): void {
  // One read per scrape: registry.metrics() calls the collect of every metric in turn, in one
  // synchronous loop; the first call reads every tenant for every gauge, the others in that loop
  // find the values set.
  let fresh = false;
  const once = () => {
    if (fresh) return;
    fresh = true;
    queueMicrotask(() => (fresh = false));
    collectAll();
  };
  const gauge = <L extends string>(name: string, help: string, labelNames: L[]): G<L> =>
    new Gauge<L>({ name, help, labelNames, registers: [registry], collect: once });

  const treeSize = gauge('tlog_tree_size', 'Entries in the log (the committed tree size)', ['tenant']);
  const publishedSize = gauge(
    'tlog_published_tree_size',
    'Tree size of the published checkpoint (behind tlog_tree_size while a fail-closed log waits for its witnesses)',
    ['tenant'],
  );
  const pending = gauge('tlog_pending_entries', 'Entries accepted and not yet committed', ['tenant']);
  const integratedAt = gauge('tlog_last_integration_timestamp_seconds', 'When the last batch was committed (or the log was opened, if later), Unix seconds', [
    'tenant',
  ]);
  const checkpointAt = gauge(
    'tlog_checkpoint_timestamp_seconds',
    "When the published checkpoint was signed (the timestamp in the log's ML-DSA-44 signature), Unix seconds",
    ['tenant'],
  );
  const cosignedAt = gauge(
    'tlog_witness_cosignature_timestamp_seconds',
    'When each witness of the policy made its newest cosignature the log verified, Unix seconds; 0: never',
    ['tenant', 'witness'],
  );
  const anchorsPending = gauge('tlog_anchor_jobs_pending', 'Rekor anchoring jobs waiting in the outbox (Rekor or the TSA unreachable, or backing off)', [
    'tenant',
  ]);
  const journalBytes = gauge('tlog_journal_bytes', 'Bytes of write-ahead journal segments on disk (grows while flushes fail)', ['tenant']);
  const diskFree = gauge('tlog_disk_free_bytes', 'Free bytes on the tightest filesystem the log writes to', ['tenant']);
  const writable = gauge('tlog_tenant_writable', '1 when the log takes appends; 0 when it stopped or its disk is full (see /healthz for why)', ['tenant']);
  const tenantsByState = gauge('tlog_tenants', 'Tenants by state: serving (open, takes appends), retired (open, read-only), opening', ['state']);

  const all = [treeSize, publishedSize, pending, integratedAt, checkpointAt, cosignedAt, anchorsPending, journalBytes, diskFree, writable];

  /**
   * Sets every gauge from the tenants as they are now.
   */
  function collectAll(): void {
    const src = source();
    for (const g of all) g.reset();
    tenantsByState.reset();
    if (!src) return;
    let serving = 0;
    let retired = 0;
    for (const t of src.tenants()) {
      const tenant = t.name;
      const log = t.log;
      if (t.retired) retired++;
      else serving++;
      treeSize.set({ tenant }, log.treeSize);
      publishedSize.set({ tenant }, log.published.treeSize);
      pending.set({ tenant }, log.pendingCount);
      integratedAt.set({ tenant }, log.lastIntegrationAt / 1000);
      const signed = t.publishedAt;
      if (signed !== null) checkpointAt.set({ tenant }, signed);
      if (t.cosigner) {
        for (const w of t.cosigner.witnessStatus()) {
          // A cosignature whose time is unknown (a key type without a timestamp, read back after a restart) has no sample.
          if (w.last === null) cosignedAt.set({ tenant, witness: w.name }, 0);
          else if (w.last.time !== null) cosignedAt.set({ tenant, witness: w.name }, w.last.time);
        }
      }
      if (t.anchorer) anchorsPending.set({ tenant }, t.anchorer.pendingJobs);
      journalBytes.set({ tenant }, log.journalBytes);
      const free = log.freeBytes;
      if (free !== null && Number.isFinite(free)) diskFree.set({ tenant }, Math.max(0, free));
      writable.set({ tenant }, log.cannotWrite === null ? 1 : 0);
    }
    tenantsByState.set({ state: 'serving' }, serving);
    tenantsByState.set({ state: 'retired' }, retired);
    tenantsByState.set({ state: 'opening' }, src.opening());
  }
}
