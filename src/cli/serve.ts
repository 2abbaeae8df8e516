/**
 * `tlog serve`: the HTTP service. With no configuration it serves the embedded default tenant
 * on loopback, creating its log and keys on first start, open for writes without credentials.
 * With --config it serves every tenant of the file (each requires credentials); SIGHUP or
 * POST /admin/reload re-reads the file and adds, reconfigures or removes tenants without a
 * restart. SIGTERM/SIGINT stop accepting, finish the batches in flight, and exit 0.
 */
import { serve as serveNode } from '@hono/node-server';
import type { Server } from 'node:http';
import { loadConfig, type ServiceConfig } from '../config/config.js';
import { TlogError, ErrorCode } from '../errors.js';
import { createApp } from '../http/app.js';
import { createLogger, engineLogger, Metrics } from '../http/observe.js';
import { mldsaBackend } from '../log/mldsa-backend.js';
import type { DataRoots } from '../tile-store/paths.js';
import { authFromConfig, OPEN_AUTH, openOrInit, openOrInitDefault, TenantRegistry } from '../tenants/registry.js';
import { Cosigner } from '../witness-client/cosigner.js';
import { Anchorer, anchorRoutes, resolveAnchorConfig } from '../anchor/index.js';
import { parsePolicy } from '../witness-client/policy.js';

export interface ServeOptions {
  readonly roots: DataRoots;
  readonly listen?: string;
  readonly origin?: string;
  readonly config?: string;
  /** Resolves when the server listens, with its port (tests use port 0). */
  readonly onListening?: (port: number) => void;
}

export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(.*):([0-9]{1,5})$/.exec(listen);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !(port >= 0 && port <= 65535) || m[1] === '') throw new TlogError(ErrorCode.badInput, `bad listen address ${JSON.stringify(listen)}: want host:port`);
  return { host: m[1]!.replace(/^\[(.*)\]$/, '$1'), port };
}

function isLoopback(host: string): boolean {
  return host === '127.0.0.1' || host === '::1' || host === 'localhost';
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
  const logOpts = { logger: engineLogger(logger), onBatch: metrics.onBatch, onRebuildProgress };
  let config: ServiceConfig | null = null;
  let listen = o.listen ?? '127.0.0.1:8080';
  const say = (s: string) => process.stderr.write(s + '\n');

  /** Opens every tenant of the configuration not yet served, reconfigures the others, closes removed ones. */
  const applyConfig = async (cfg: ServiceConfig): Promise<string[]> => {
    const roots: DataRoots = { tilesRoot: cfg.tilesDir, checkpointsRoot: cfg.checkpointsDir, stateRoot: cfg.stateDir };
    for (const tc of cfg.tenants) {
      const existing = tenants.get(tc.name);
      if (existing) {
        existing.reconfigure(authFromConfig(tc), tc.limits);
        continue;
      }
      const policy = tc.witnesses ? parsePolicy(tc.witnesses.policy!) : null;
      const { log, created } = await openOrInit(roots, tc.name, tc.origin, {
        ...logOpts,
        allowDuplicates: tc.allowDuplicates,
        publishMode: policy ? 'cosigned' : 'each',
      });
      const t = await tenants.add(log, authFromConfig(tc), tc.limits);
      if (policy && tc.witnesses) {
        t.cosigner = new Cosigner(log, policy, {
          mode: tc.witnesses.mode,
          intervalMs: tc.witnesses.intervalSeconds * 1000,
          timeoutMs: tc.witnesses.timeoutSeconds * 1000,
          logger: logOpts.logger,
        });
        t.cosigner.start();
      }
      if (tc.anchoring?.enabled) {
        const a = tc.anchoring;
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
          logger: logOpts.logger,
        });
        t.anchorer.start();
      }
      logger.info({ tenant: tc.name, origin: tc.origin, created, treeSize: log.treeSize, verifierKeys: log.verifierKeys() }, created ? 'tenant created' : 'tenant opened');
    }
    const wanted = new Set(cfg.tenants.map((t) => t.name));
    for (const name of tenants.names()) if (!wanted.has(name)) await tenants.remove(name);
    return tenants.names();
  };

  if (o.config) {
    config = loadConfig(o.config);
    listen = o.listen ?? config.listen;
    await applyConfig(config);
  } else {
    const { host, port } = parseListen(listen);
    if (!isLoopback(host)) {
      throw new TlogError(ErrorCode.badInput, `the embedded default tenant accepts writes without credentials, so it only listens on loopback: use --config to listen on ${host}`);
    }
    const { log, created } = await openOrInitDefault(o.roots, o.origin ?? `${host}:${port}/default`, logOpts);
    await tenants.add(log, OPEN_AUTH);
    say(`${created ? 'created' : 'opened'} log "default" (origin ${log.origin}, size ${log.treeSize}) in ${log.paths.tilesDir}`);
    say(`verifier keys:\n  ${log.verifierKeys().join('\n  ')}`);
  }

  const reload = async () => {
    if (!o.config) throw new TlogError(ErrorCode.badInput, 'no configuration file to reload');
    config = loadConfig(o.config);
    const names = await applyConfig(config);
    logger.info({ tenants: names }, 'configuration reloaded');
    return { tenants: names };
  };
  let stopping = false;
  const app = createApp(tenants, {
    logger,
    metrics,
    adminTokenHash: config?.adminToken,
    reload,
    extraRoutes: anchorRoutes((n) => tenants.get(n)?.log),
    stopping: () => stopping,
  });
  const { host, port } = parseListen(listen);
  const server = await new Promise<Server>((resolve) => {
    const s = serveNode({ fetch: app.fetch, hostname: host, port }, (info) => {
      const open = config ? 'every tenant requires credentials' : 'embedded default tenant: writes accepted without credentials on this loopback address';
      say(`listening on http://${host}:${info.port} (${open}; ML-DSA-44 signer: ${signer})`);
      o.onListening?.(info.port);
      resolve(s as Server);
    });
  });

  process.on('SIGHUP', () => {
    reload().catch((e) => logger.error({ err: (e as Error).message }, 'reload failed; keeping the running configuration'));
  });
  await new Promise<void>((resolve) => {
    const stop = () => {
      say('stopping: no new connections; finishing the requests and batches in flight');
      stopping = true;
      // Stop accepting; requests in flight finish (their batches become durable) and close their
      // connections; requests that arrive later on kept-alive connections get 503.
      server.close(() => {
        clearInterval(sweeper);
        clearTimeout(deadline);
        tenants.closeAll().then(resolve, (e) => {
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
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}
