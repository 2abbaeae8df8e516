/**
 * Observability: structured logs (pino; JSON, or readable lines on a terminal: log-lines.ts)
 * carrying a request id and the W3C traceparent's trace id, and Prometheus metrics (prom-client).
 *
 * Cardinality is bounded: per tenant only what is worth alerting on (the gauges of
 * tenant-gauges.ts, and its appends and duplicates counters); requests and the histograms
 * (batch size, batch time, append latency) are service-wide, so a scrape grows by about a dozen
 * series per tenant, not by the tenants times routes times statuses times buckets.
 */
import type { MiddlewareHandler } from 'hono';
import { randomBytes } from 'node:crypto';
import type { Logger as PinoLogger } from 'pino';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { BatchStats, Logger } from '../log/log.js';
import { mldsaBackend } from '../log/mldsa-backend.js';
import { statusOf } from './errors.js';
import { presetHeader } from './node-io.js';
import { registerTenantGauges, type TenantSource } from './tenant-gauges.js';

declare module 'hono' {
  interface ContextVariableMap {
    log: PinoLogger;
    requestId: string;
    /** Set by routes for the metrics label; "-" when no tenant applies. */
    tenant: string;
    /** The request's ids, for log lines written through the base logger. */
    logFields: Record<string, string>;
  }
}

export { createLogger } from './log-lines.js';

/** Adapts a pino logger to the engine's Logger interface. */
export function engineLogger(l: PinoLogger): Logger {
  return { debug: (o, m) => l.debug(o, m), info: (o, m) => l.info(o, m), warn: (o, m) => l.warn(o, m), error: (o, m) => l.error(o, m) };
}

const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/;

/**
 * Increments of a labelled prom-client Counter, tallied in a Map and handed to the counter when
 * it is collected (a scrape, or get()): Counter.inc() hashes and validates its labels on every
 * call, a cost per request. Label sets reach the counter in the order they were first counted,
 * so the exposition is what inc() at once would give.
 */
class Tally<L extends string> {
  private readonly counts = new Map<string, { labels: Record<L, string>; n: number }>();

  /** Counts n under `key`, which stands for the label set `labels()` (called the first time only). */
  add(key: string, labels: () => Record<L, string>, n = 1): void {
    const e = this.counts.get(key);
    if (e) e.n += n;
    else this.counts.set(key, { labels: labels(), n });
  }

  flushInto(counter: Counter<L>): void {
    for (const e of this.counts.values()) {
      if (e.n === 0) continue;
      counter.inc(e.labels, e.n);
      e.n = 0;
    }
  }
}

/** A sample line's tenant label: `name{...tenant="x"...} value`. */
const TENANT_LABEL = /^[a-zA-Z_:][a-zA-Z0-9_:]*\{(?:[^}]*,)?tenant="([^"]*)"/;

export class Metrics {
  readonly registry = new Registry();
  private readonly requestTally = new Tally<'route' | 'status'>();
  private readonly appendTally = new Tally<'tenant'>();
  private readonly duplicateTally = new Tally<'tenant'>();
  /** What the per-tenant gauges read (set by watch(); none before). */
  private tenantSource: TenantSource | null = null;
  /** HTTP requests by route pattern and status: service-wide (a tenant label would multiply every route and status by the tenants). */
  readonly requests: Counter<'route' | 'status'> = new Counter({
    name: 'tlog_http_requests_total',
    help: 'HTTP requests by route and status',
    labelNames: ['route', 'status'],
    registers: [this.registry],
    collect: () => this.requestTally.flushInto(this.requests),
  });
  readonly appends: Counter<'tenant'> = new Counter({
    name: 'tlog_appends_total',
    help: 'Entries appended (new)',
    labelNames: ['tenant'],
    registers: [this.registry],
    collect: () => this.appendTally.flushInto(this.appends),
  });
  readonly duplicates: Counter<'tenant'> = new Counter({
    name: 'tlog_duplicates_total',
    help: 'Appends answered with an existing entry',
    labelNames: ['tenant'],
    registers: [this.registry],
    collect: () => this.duplicateTally.flushInto(this.duplicates),
  });
  // The histograms are service-wide: per tenant they would be a dozen series each.
  readonly batchSize = new Histogram({
    name: 'tlog_batch_entries',
    help: 'Entries per integrated batch, all tenants',
    buckets: [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536],
    registers: [this.registry],
  });
  readonly integration = new Histogram({
    name: 'tlog_integration_seconds',
    help: 'Batch time: from taking a batch to answering it, all tenants',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly fsync = new Histogram({
    name: 'tlog_batch_write_seconds',
    help: "Time to put a batch's tiles and bundles in place and make its journal record durable, all tenants",
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  readonly commit = new Histogram({
    name: 'tlog_commit_seconds',
    help: 'Time to make the commit point durable, all tenants',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05],
    registers: [this.registry],
  });
  /** Append latency, observed once per request (an append-batch request is one sample). */
  readonly appendLatency = new Histogram({
    name: 'tlog_append_seconds',
    help: "Append latency: from queueing an append request's entries to their commit (signed checkpoint, proof), all tenants",
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    registers: [this.registry],
  });

  /** Which ML-DSA-44 implementation signs the checkpoints (src/log/mldsa-backend.ts): 1 for it. */
  readonly mldsaSigner = new Gauge({
    name: 'tlog_mldsa_signer_info',
    help: 'The ML-DSA-44 signer checkpoints are signed with (node:crypto, liboqs-wasm or noble)',
    labelNames: ['backend'],
    registers: [this.registry],
  });

  constructor(defaults = true) {
    if (defaults) collectDefaultMetrics({ register: this.registry });
    this.mldsaSigner.set({ backend: mldsaBackend() }, 1);
    registerTenantGauges(this.registry, () => this.tenantSource);
  }

  /** Where the per-tenant gauges read the tenants at each scrape (createApp sets it). */
  watch(source: TenantSource): void {
    this.tenantSource = source;
  }

  /** One answered request, for tlog_http_requests_total. (Statuses are digits: the key is unambiguous.) */
  countRequest(route: string, status: number): void {
    this.requestTally.add(`${status} ${route}`, () => ({ route, status: String(status) }));
  }

  /** One append request's latency, from queueing its entries to their answer. */
  observeAppend(seconds: number): void {
    this.appendLatency.observe(seconds);
  }

  /** Entries appended (new) and answered as duplicates, for tlog_appends_total and tlog_duplicates_total. */
  countAppends(tenant: string, appended: number, duplicates: number): void {
    if (appended) this.appendTally.add(tenant, () => ({ tenant }), appended);
    if (duplicates) this.duplicateTally.add(tenant, () => ({ tenant }), duplicates);
  }

  /**
   * The text exposition without the series whose tenant label `shown` refuses (private tenants,
   * for a scrape without the admin token). Tenant names hold no quote, so the label is matched
   * exactly; series without a tenant label are kept.
   */
  async exposition(shown: (tenant: string) => boolean): Promise<string> {
    const text = await this.registry.metrics();
    return text
      .split('\n')
      .filter((line) => {
        const m = TENANT_LABEL.exec(line);
        return m === null || shown(m[1]!);
      })
      .join('\n');
  }

  onBatch = (b: BatchStats): void => {
    this.batchSize.observe(b.entries);
    this.integration.observe(b.seconds);
    this.fsync.observe(b.writeSeconds);
    this.commit.observe(b.commitSeconds);
  };
}

/** Request ids: a random per-process prefix and a counter, 16 hex digits (cheaper than random bytes per request). */
const ID_PREFIX = randomBytes(4).toString('hex');
let idCounter = 0;
function nextRequestId(): string {
  idCounter = (idCounter + 1) >>> 0;
  return ID_PREFIX + idCounter.toString(16).padStart(8, '0');
}

/** What a request is known by in the logs: its id and its traceparent's ids, and the logger its lines go to. */
export interface RequestLogging {
  readonly requestId: string;
  readonly fields: Record<string, string>;
  /** True when every request gets a log line (info level); below it only errors are logged. */
  readonly requestLines: boolean;
  /** A child logger carrying the fields when requestLines, else the base logger. */
  readonly log: PinoLogger;
}

/**
 * The request's id (X-Request-Id if the client sent a sane one, else a new one) and logger. A
 * child logger per request costs; below info level (a benchmark) only errors are logged, and
 * they carry the ids through the base logger's fields.
 */
export function requestLogging(logger: PinoLogger, givenId: string | undefined, traceparent: string | undefined): RequestLogging {
  const requestId = givenId && /^[A-Za-z0-9._-]{1,64}$/.test(givenId) ? givenId : nextRequestId();
  const tp = TRACEPARENT.exec(traceparent ?? '');
  const fields: Record<string, string> = tp ? { reqId: requestId, traceId: tp[1]!, parentId: tp[2]! } : { reqId: requestId };
  const requestLines = logger.isLevelEnabled('info');
  return { requestId, fields, requestLines, log: requestLines ? logger.child(fields) : logger };
}

/** The one line per request (at info level). */
export function logRequest(log: PinoLogger, method: string, path: string, status: number, t0: number, tenant: string): void {
  log.info({ method, path: path.slice(0, 200), status, ms: +(performance.now() - t0).toFixed(2), tenant }, 'request');
}

/**
 * Gives each request an id, a child logger with that id and the traceparent's trace id, one log
 * line when it ends, and a metrics sample.
 */
export function observe(logger: PinoLogger, metrics: Metrics): MiddlewareHandler {
  return async (c, next) => {
    const t0 = performance.now();
    const { requestId, fields, requestLines, log } = requestLogging(logger, c.req.header('x-request-id'), c.req.header('traceparent'));
    c.set('logFields', requestLines ? {} : fields);
    c.set('requestId', requestId);
    c.set('log', log);
    c.set('tenant', '-');
    presetHeader(c, 'X-Request-Id', requestId);
    let status = 500;
    try {
      await next();
      status = c.res.status;
    } catch (e) {
      status = statusOf(e);
      throw e;
    } finally {
      const route = c.req.routePath || 'unmatched';
      metrics.countRequest(route, status);
      if (requestLines) logRequest(log, c.req.method, c.req.path, status, t0, c.get('tenant'));
    }
  };
}
