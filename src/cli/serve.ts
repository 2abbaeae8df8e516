/**
 * `tlog serve`: the HTTP service. With no configuration it serves the embedded default tenant
 * on loopback, creating its log and keys on first start, open for writes without credentials.
 * With --config it serves every tenant of the file (each requires credentials); SIGHUP or
 * POST /admin/reload re-reads the file and adds, reconfigures or removes tenants without a
 * restart (tenants/apply.ts; the answer says what changed and what needs a restart).
 * SIGTERM/SIGINT stop accepting, finish the batches in flight, and exit 0.
 *
 * Start-up: the port is bound first (a port in use fails before anything is created), then the
 * tenants are opened in parallel; each answers 503 + Retry-After until its log is open, and
 * serves from then on, whatever the others do. "listening on" is said once all are open.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DEFAULT_HTTP_LIMITS, loadConfig, type ServiceConfig } from '../config/config.js';
import { TlogError, ErrorCode } from '../errors.js';
import { createApp, fastRouteOf } from '../http/app.js';
import { BodyBudget } from '../http/body-budget.js';
import { connectionLimits, createHttpServer } from '../http/connections.js';
import { createLogger, engineLogger, Metrics } from '../http/observe.js';
import { startTracing } from '../http/tracing.js';
import { mldsaBackend } from '../log/mldsa-backend.js';
import { ConfiguredTenants, type ApplyHooks } from '../tenants/apply.js';
import { DEFAULT_TENANT, type DataRoots } from '../tile-store/paths.js';
import { OPEN_AUTH, openOrInitDefault, TenantRegistry } from '../tenants/registry.js';
import { ClusterService } from '../tenants/cluster.js';
import type { TenantRoute } from '../cluster/node.js';
import path from 'node:path';

export interface ServeOptions {
  readonly roots: DataRoots;
  readonly listen?: string;
  readonly origin?: string;
  readonly config?: string;
  /** Called once every tenant is open, with the port (tests use port 0). */
  readonly onListening?: (port: number) => void;
  /** Called as soon as the port is bound, before the tenants are opened. */
  readonly onBound?: (port: number) => void;
  /** Test hooks of the tenants' opening (see tenants/apply.ts). */
  readonly openHooks?: ApplyHooks;
  /** Stops the service like SIGTERM (tests running it in-process). */
  readonly signal?: AbortSignal;
  /** Cluster mode: this node's URL as the other nodes reach it (default http://<listen host>:<bound port>). */
  readonly advertise?: string;
  /** Cluster mode: this node's local cache (default: the configuration's data directories). */
  readonly cacheDir?: string;
}

/**
 * Binds host:port. A port in use (or not ours to take) is one readable error, not an unhandled
 * 'error' event with a stack trace.
 */
function listenOn(host: string, port: number, server: Server): Promise<Server> {
  return new Promise((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) => {
      const why =
        e.code === 'EADDRINUSE'
          ? 'the address is already in use (is another tlog serve running?)'
          : e.code === 'EACCES'
            ? 'permission denied (ports below 1024 need privileges)'
            : e.code === 'EADDRNOTAVAIL'
              ? 'no such address on this machine'
              : (e.code ?? e.message);
      reject(new TlogError(ErrorCode.badInput, `cannot listen on ${host}:${port}: ${why}`, { cause: e }));
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve(server);
    });
  });
}

export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(.*):([0-9]{1,5})$/.exec(listen);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !(port >= 0 && port <= 65535) || m[1] === '')
    throw new TlogError(ErrorCode.badInput, `bad listen address ${JSON.stringify(listen)}: want host:port`);
  return { host: m[1]!.replace(/^\[(.*)\]$/, '$1'), port };
}

function isLoopback(host: string): boolean {
  return host === '127.0.0.1' || host === '::1' || host === 'localhost';
}

function rootsOf(cfg: ServiceConfig): DataRoots {
  return { tilesRoot: cfg.tilesDir, checkpointsRoot: cfg.checkpointsDir, stateRoot: cfg.stateDir };
}

export async function serve(o: ServeOptions): Promise<void> {
  // Chosen once, before any log opens: a TLOG_MLDSA_SIGNER this runtime cannot honour stops here.
  const signer = mldsaBackend();
  const logger = createLogger();
  const metrics = new Metrics();
  const tenants = new TenantRegistry();
  // A damaged index is rebuilt on open: one log line per tenth of the way.
  let lastTenth = -1;
  const onRebuildProgress = (done: number, total: number) => {
    const tenth = total === 0 ? 10 : Math.floor((done / total) * 10);
    if (tenth !== lastTenth) logger.info({ done, total }, `rebuilding the index: ${tenth * 10}%`);
    lastTenth = tenth;
  };
  // Off unless the OpenTelemetry environment asks for traces (http/tracing.ts); then the SDK is
  // loaded here, before the port is bound, so that every request is traced.
  const tracing = await startTracing();
  if (tracing) logger.info({}, 'tracing on: spans are exported as the OTEL_* environment says');
  const logOpts = { logger: engineLogger(logger), onBatch: metrics.onBatch, onRebuildProgress, tracer: tracing?.batches };
  let config: ServiceConfig | null = null;
  let listen = o.listen ?? '127.0.0.1:8080';
  const say = (s: string) => process.stderr.write(s + '\n');

  // Everything that can be refused without touching the disk is checked first: the
  // configuration, the address, and the port itself (bound before any log is created or opened,
  // so a port in use leaves nothing behind).
  if (o.config) {
    config = loadConfig(o.config);
    listen = o.listen ?? config.listen;
  }
  if (!config?.cluster && (o.advertise !== undefined || o.cacheDir !== undefined)) {
    throw new TlogError(ErrorCode.badInput, '--advertise and --cache-dir are for a cluster node: the configuration has no cluster section');
  }
  const clusterMode = config?.cluster !== undefined;
  const configured = new ConfiguredTenants(tenants, logOpts, engineLogger(logger), o.openHooks, clusterMode);
  // Cluster mode: set once the port is bound (the node's URL may depend on it); until then no
  // tenant is held and requests for one get 503 + Retry-After.
  let cluster: ClusterService | null = null;
  const { host, port } = parseListen(listen);
  if (!o.config && !isLoopback(host)) {
    throw new TlogError(
      ErrorCode.badInput,
      `the embedded default tenant accepts writes without credentials, so it only listens on loopback: use --config to listen on ${host}`,
    );
  }

  /** Re-reads the file and applies it (see tenants/apply.ts); a bad file changes nothing. */
  const reload = async () => {
    if (!o.config) throw new TlogError(ErrorCode.badInput, 'no configuration file to reload');
    const r = await configured.apply(loadConfig(o.config));
    // A cluster node gives up the tenants removed before the reload answers, and takes new ones now.
    await cluster?.reconfigured();
    logger.info(r, 'configuration reloaded');
    if (r.restartNeeded.length > 0) logger.warn({ restartNeeded: r.restartNeeded }, 'some changed settings need a restart');
    return r;
  };
  let stopping = false;
  // The HTTP bounds are read at start; a reload does not change them.
  const http = config?.http ?? DEFAULT_HTTP_LIMITS;
  const app = createApp(tenants, {
    logger,
    metrics,
    adminTokenHash: config?.adminToken,
    reload,
    bodies: new BodyBudget(http.maxBodyBytesInFlight),
    stopping: () => stopping,
    traceRequests: tracing?.requests,
    ...(clusterMode
      ? {
          cluster: {
            route: (t: string): TenantRoute | null => (cluster ? cluster.route(t) : { kind: 'none', why: 'the node is starting' }),
            self: () => cluster?.node.url ?? o.advertise ?? '',
            holderUnreachable: (t: string) => cluster?.node.holderUnreachable(t),
            status: () => ({ node: cluster?.node.holder ?? '', live: cluster?.node.liveNodes() ?? [], holds: cluster?.node.heldTenants() ?? [] }),
          },
        }
      : {}),
  });
  // Announced before the port is bound, so a request never finds a configured tenant unknown.
  if (config) configured.announce(config);
  else tenants.markOpening(DEFAULT_TENANT);
  // Bound before the logs are opened (an index rebuild may take a while): until its log is open,
  // a tenant's requests are told to come back (503 + Retry-After); /healthz and /metrics answer.
  const server = await listenOn(host, port, createHttpServer(app.fetch, connectionLimits(http), fastRouteOf(app)));
  const boundPort = (server.address() as AddressInfo).port;
  o.onBound?.(boundPort);
  // A reload asked for while the tenants open runs once they are (apply() runs one at a time).
  const onHup = () => {
    reload().catch((e) => logger.error({ err: (e as Error).message }, 'reload failed; keeping the running configuration'));
  };
  process.on('SIGHUP', onHup);
  // A stop (SIGTERM, SIGINT, the test signal) may come while the tenants are still opening (an
  // index rebuild can take minutes): from that moment every request is refused (503, stopping),
  // "listening" is never said, and once the opening in progress ends (opening is not cut short:
  // a log half opened is closed the same way as one fully open) the service closes as below.
  let stopAsked = false;
  let wake = () => {};
  const stopRequested = new Promise<void>((resolve) => (wake = resolve));
  const askStop = () => {
    if (stopAsked) return;
    stopAsked = true;
    stopping = true;
    say('stopping: no new connections; finishing the requests and batches in flight');
    wake();
  };
  process.once('SIGTERM', askStop);
  process.once('SIGINT', askStop);
  if (o.signal?.aborted) askStop();
  else o.signal?.addEventListener('abort', askStop, { once: true });
  const count = config ? config.tenants.length : 1;
  say(`port ${host}:${boundPort} bound; opening ${count} tenant${count === 1 ? '' : 's'} (each answers 503 with Retry-After until it is open)`);
  try {
    if (config && clusterMode) {
      await configured.apply(config);
      // Asked to stop while the tenants opened: take no lease at all.
      if (!stopAsked) {
        const cacheRoots: DataRoots = o.cacheDir
          ? { tilesRoot: path.join(o.cacheDir, 'tiles'), checkpointsRoot: path.join(o.cacheDir, 'checkpoints'), stateRoot: path.join(o.cacheDir, 'state') }
          : rootsOf(config);
        const url = o.advertise ?? `http://${host.includes(':') ? `[${host}]` : host}:${boundPort}`;
        cluster = await ClusterService.create({ config, url, cacheRoots, configured, logger: engineLogger(logger) });
        cluster.start();
        say(
          `cluster node ${url}: ${config.tenants.length} tenants in s3://${config.store!.bucket}/${config.store!.prefix}, lease ttl ${config.cluster!.leaseTtlSeconds} s`,
        );
      }
    } else if (config) await configured.apply(config);
    else {
      await o.openHooks?.opening?.(DEFAULT_TENANT);
      const { log, outcome } = await openOrInitDefault(o.roots, o.origin, `${host}:${port}/default`, logOpts);
      await tenants.add(log, OPEN_AUTH);
      const what =
        outcome.result === 'replaced'
          ? `replaced the empty log "default" of origin ${outcome.oldOrigin} with a new log`
          : outcome.result === 'created'
            ? 'created log "default"'
            : 'opened log "default"';
      say(`${what} (origin ${log.origin}, size ${log.treeSize}) in ${log.paths.tilesDir}`);
      if (outcome.result === 'created' && o.origin === undefined) {
        say(`its origin is ${log.origin}: to choose one, stop and run \`tlog init --origin <origin>\` (or start with --origin) before appending`);
      }
      say(`verifier keys:\n  ${log.verifierKeys().join('\n  ')}`);
    }
  } catch (e) {
    process.off('SIGHUP', onHup);
    process.off('SIGTERM', askStop);
    process.off('SIGINT', askStop);
    stopping = true;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await cluster?.stop();
    await tenants.closeAll();
    await tracing?.shutdown().catch(() => {});
    throw e;
  }
  if (!stopAsked) {
    const open = config ? 'every tenant requires credentials' : 'embedded default tenant: writes accepted without credentials on this loopback address';
    say(`listening on http://${host}:${boundPort} (${open}; ML-DSA-44 signer: ${signer})`);
    o.onListening?.(boundPort);
  }

  await stopRequested;
  process.off('SIGTERM', askStop);
  process.off('SIGINT', askStop);
  process.off('SIGHUP', onHup);
  // Stop accepting; requests in flight finish (their batches become durable) and close their
  // connections; requests that arrive later on kept-alive connections get 503.
  await new Promise<void>((resolve) => {
    server.close(() => {
      clearInterval(sweeper);
      clearTimeout(deadline);
      // A cluster node releases its leases after closing the logs: the others take them at once.
      Promise.resolve(cluster?.stop())
        .then(() => tenants.closeAll())
        .then(resolve, (e) => {
          say(`error while stopping: ${(e as Error).message}`);
          process.exitCode = 1;
          resolve();
        });
    });
    // Connections go idle as their last answers are sent: close them as they do.
    const sweeper = setInterval(() => server.closeIdleConnections(), 50);
    server.closeIdleConnections();
    // A client that never reads its answer must not hold the process forever.
    const deadline = setTimeout(() => server.closeAllConnections(), 10_000);
    deadline.unref();
  });
  // The spans of the last batches are exported before the process exits.
  await tracing?.shutdown().catch((e) => say(`error while exporting the last traces: ${(e as Error).message}`));
}
