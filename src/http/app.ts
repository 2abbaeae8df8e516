/**
 * The HTTP face of the log, on hono: per-tenant tlog-tiles static routes, the write/read API
 * (also un-prefixed, with the tenant in X-Module-ID), anchoring receipts, health, metrics and
 * admin. The node server under it (timeouts, malformed requests) is connections.ts.
 */
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import type { Logger as PinoLogger } from 'pino';
import { TlogError, ErrorCode } from '../errors.js';
import type { Tenant, TenantRegistry } from '../tenants/registry.js';
import { anchorRoutes } from '../anchor/index.js';
import { apiRoutes } from './api.js';
import { authorizeRead, hasAdminToken, mayRead } from './auth.js';
import { BodyBudget } from './body-budget.js';
import { errorResponse, jsonError } from './errors.js';
import { fastAppend, type FastRoute } from './fast-append.js';
import { clusterRouting } from './forward.js';
import type { TenantRoute } from '../cluster/node.js';
import { bodyPending, closeAfterAnswer, presetHeader } from './node-io.js';
import { createLogger, Metrics, observe } from './observe.js';
import { pageRoutes } from './page.js';
import { staticRoutes } from './static.js';

export type TenantOf = (c: Context) => Tenant;

export interface AppOptions {
  readonly logger?: PinoLogger;
  readonly metrics?: Metrics;
  /**
   * SHA-256 hex of the admin token; without it the admin routes answer 404. It also shows what
   * private tenants keep from other callers: their health and their metrics series.
   */
  readonly adminTokenHash?: string;
  /** The request-body bytes all requests together may hold (default: the configuration's default, 128 MiB). */
  readonly bodies?: BodyBudget;
  /** Called by POST /admin/reload. */
  readonly reload?: () => Promise<{ tenants: string[] }>;
  /** True once the service is shutting down: new requests get 503 and every answer closes its connection. */
  readonly stopping?: () => boolean;
  /** A span per request (tracing.ts), when tracing is on; nothing is installed otherwise. */
  readonly traceRequests?: MiddlewareHandler;
  /** Cluster mode: where each tenant's requests go (forward.ts), this node's URL, and what /healthz says of the node. */
  readonly cluster?: {
    readonly route: (tenant: string) => TenantRoute | null;
    readonly self: () => string;
    readonly status: () => { node: string; live: string[]; holds: string[] };
    /** A forwarded request found the holder unreachable (it may have died): look again soon. */
    readonly holderUnreachable?: (tenant: string) => void;
  };
}

const TENANT = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/** A configured tenant whose log is still being opened: come back in a second (503 + Retry-After). */
function stillOpening(name: string): TlogError {
  return new TlogError(ErrorCode.unavailable, `tenant ${name} is opening (its log is being recovered and checked): try again shortly`, {
    retryAfterSeconds: 1,
  });
}

/**
 * Access-Control-Allow-Origin: * on every answer of the routes after it. Set before the handler
 * runs: a header added after the Response is built makes hono build it a second time, which
 * halved tile GETs per second.
 */
function corsOpen(): MiddlewareHandler {
  return (c, next) => {
    presetHeader(c, 'Access-Control-Allow-Origin', '*');
    return next();
  };
}

export function createApp(tenants: TenantRegistry, opts: AppOptions = {}): Hono {
  const logger = opts.logger ?? createLogger();
  const metrics = opts.metrics ?? new Metrics();
  metrics.watch({ tenants: () => tenants.all(), opening: () => tenants.openingNames().length });
  const app = new Hono();

  /**
   * The tenant of a request: the /<tenant>/ prefix, else the X-Module-ID header. Unknown: 404.
   * A prefix and an X-Module-ID naming another tenant is a 400: which tenant the caller meant
   * is never guessed.
   */
  const tenantOf: TenantOf = (c) => {
    const prefix = c.req.param('tenant');
    const moduleID = c.req.header('x-module-id');
    if (prefix !== undefined && moduleID !== undefined && moduleID !== prefix) {
      throw new TlogError(
        ErrorCode.badInput,
        `the path names tenant ${JSON.stringify(prefix.slice(0, 64))} but X-Module-ID names ${JSON.stringify(moduleID.slice(0, 64))}`,
      );
    }
    const name = prefix ?? moduleID ?? '';
    const t = TENANT.test(name) ? tenants.get(name) : undefined;
    if (!t) {
      if (tenants.isOpening(name)) throw stillOpening(name);
      throw new TlogError(ErrorCode.notFound, `unknown tenant ${JSON.stringify(name.slice(0, 64))}`);
    }
    c.set('tenant', t.name);
    return t;
  };

  // An answer given before the body was read (a refusal) ends the connection: see closeAfterAnswer.
  const closeIfBodyPending = (c: Context) => {
    if (bodyPending(c)) closeAfterAnswer(c);
  };
  app.onError((e, c) => {
    closeIfBodyPending(c);
    return errorResponse(c, e);
  });
  app.notFound((c) => {
    closeIfBodyPending(c);
    return jsonError(c, 404, 'not_found', 'no such route');
  });
  app.use('*', observe(logger, metrics));
  if (opts.traceRequests) app.use('*', opts.traceRequests);
  // Shutting down: finish what is in flight, refuse what comes after on kept-alive connections,
  // and close each connection once its answer is sent, so the process can exit promptly.
  app.use('*', async (c, next) => {
    if (opts.stopping?.()) {
      c.header('Connection', 'close');
      c.header('Retry-After', '1');
      return c.json({ error: 'the service is shutting down', code: 'unavailable' }, 503);
    }
    await next();
    if (opts.stopping?.()) c.header('Connection', 'close');
  });

  // 200 "ok" when every tenant can take appends; 503 "degraded" when one cannot (its log stopped,
  // or its disk is full), with the reason under that tenant, and 503 "starting" while tenants are
  // still being opened (openingCount; each serves as soon as it is open). Reads still work either way.
  // A private tenant (one with read tokens) shows nothing of itself to a caller who may not read
  // it: it counts in the aggregate (status, tenantCount, degradedCount) and is named only for its
  // read token or the admin token. Public tenants' figures are public anyway (their checkpoints are).
  app.get('/healthz', (c) => {
    const now = Date.now();
    const admin = hasAdminToken(c, opts.adminTokenHash);
    const all = tenants.all();
    const opening = tenants.openingNames().length;
    let degraded = 0;
    const per: Record<string, unknown> = {};
    for (const t of all) {
      const cannotWrite = t.log.cannotWrite;
      if (cannotWrite) degraded++;
      if (!admin && !mayRead(c, t)) continue;
      const health = {
        treeSize: t.log.treeSize,
        pending: t.log.pendingCount,
        lastIntegrationAgeSeconds: (now - t.log.lastIntegrationAt) / 1000,
        writable: !cannotWrite,
      };
      per[t.name] = { ...health, ...(cannotWrite ? { cannotWrite } : {}), ...(t.retired ? { retired: true } : {}) };
    }
    c.header('Cache-Control', 'no-store');
    const status = degraded ? 'degraded' : opening ? 'starting' : 'ok';
    if (opening) c.header('Retry-After', '1');
    // A node says which live nodes it sees and which tenants it holds (tenant names are not secret
    // to the operator; a private tenant's figures above still are).
    const cluster = opts.cluster && admin ? { cluster: opts.cluster.status() } : {};
    return c.json({ status, tenantCount: all.length, degradedCount: degraded, openingCount: opening, tenants: per, ...cluster }, status === 'ok' ? 200 : 503);
  });

  // Series of private tenants (and of tenants no longer served) only for the admin token: an
  // operator's Prometheus scrape carries it.
  app.get('/metrics', async (c) => {
    const admin = hasAdminToken(c, opts.adminTokenHash);
    const shown = (tenant: string) => admin || tenant === '-' || tenants.get(tenant)?.auth.readTokens === null;
    c.header('Content-Type', metrics.registry.contentType);
    return c.body(await metrics.exposition(shown));
  });

  app.post('/admin/reload', async (c) => {
    if (!opts.adminTokenHash || !opts.reload) return jsonError(c, 404, 'not_found', 'no such route');
    if (!hasAdminToken(c, opts.adminTokenHash)) throw new TlogError(ErrorCode.unauthorized, 'admin token not accepted');
    return c.json(await opts.reload());
  });

  // Reads of CORS-open routes: answer preflights for any tenant path.
  app.options('*', (c) => {
    c.header('Access-Control-Allow-Origin', '*');
    c.header('Access-Control-Allow-Methods', 'GET, HEAD, OPTIONS');
    c.header('Access-Control-Allow-Headers', 'Authorization, Accept, Accept-Encoding, If-None-Match');
    return c.body(null, 204);
  });

  // Cluster mode: requests for a tenant held by another node go there (forward.ts).
  if (opts.cluster) app.use('*', clusterRouting(opts.cluster.route, opts.cluster.self, opts.cluster.holderUnreachable));

  // Everything from here on (tiles, the API, anchors, and the not-found answer) is CORS-open.
  app.use('*', corsOpen());
  app.route('/', staticRoutes(tenantOf));
  // People's pages (/, /<t>/) and the keys as text (/<t>/vkeys).
  app.route('/', pageRoutes(tenants, tenantOf));
  // Anchoring receipts: a private tenant's need its read token, like its checkpoints.
  app.route(
    '/',
    anchorRoutes((name, c) => {
      const t = tenants.get(name);
      if (t) authorizeRead(c, t);
      else if (tenants.isOpening(name)) throw stillOpening(name);
      return t?.log;
    }),
  );
  const bodies = opts.bodies ?? new BodyBudget();
  const api = apiRoutes(tenantOf, metrics, bodies);
  app.route('/:tenant', api);
  app.route('/', api);
  // Single appends before hono, where that path has all this app's middleware does for them
  // (none of tracing's spans or cluster forwarding): fast-append.ts.
  if (!opts.traceRequests && !opts.cluster) fastRoutes.set(app, fastAppend({ tenants, metrics, bodies, logger, stopping: opts.stopping }));
  return app;
}

const fastRoutes = new WeakMap<Hono, FastRoute>();

/** The routes of `app` to try before it on a node server (createHttpServer's `fast`), if any. */
export function fastRouteOf(app: Hono): FastRoute | undefined {
  return fastRoutes.get(app);
}
