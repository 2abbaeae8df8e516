/**
 * Shared fixtures of the HTTP tests: tenants on temporary data roots behind createApp(), a pino
 * logger whose lines the tests can read, the app on a socket, and small request helpers. (A
 * spawned `tlog serve` is test/helpers/tlog-cli.ts.)
 */
import { writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { ed25519 } from '@noble/curves/ed25519.js';
import pino, { type Logger as PinoLogger } from 'pino';
import type { Hono } from 'hono';
import { createApp, fastRouteOf } from '../../src/http/app.js';
import { hashToken } from '../../src/http/auth.js';
import type { BodyBudget } from '../../src/http/body-budget.js';
import { createHttpServer, type ConnectionLimits } from '../../src/http/connections.js';
import { Metrics } from '../../src/http/observe.js';
import { Log, silentLogger } from '../../src/log/log.js';
import { logPaths, type DataRoots } from '../../src/tile-store/paths.js';
import { DEFAULT_LIMITS, type TenantLimits } from '../../src/config/config.js';
import { OPEN_AUTH, TenantRegistry, type TenantAuth } from '../../src/tenants/registry.js';
import { formatEntryBundle } from '../../src/tiles/bundle.js';
import { removeDir, tempDataRoots } from '../helpers/temp-dirs.js';

export const SENTINEL = 'SENTINEL-never-served-7f3a9c';

export interface TenantSpec {
  readonly name: string;
  readonly origin?: string;
  readonly auth?: TenantAuth;
  readonly limits?: Partial<TenantLimits>;
}

export interface AppEnv {
  readonly dir: string;
  readonly roots: DataRoots;
  readonly registry: TenantRegistry;
  readonly app: Hono;
  readonly metrics: Metrics;
  /** Every JSON log line pino wrote, parsed. */
  readonly logLines: Record<string, unknown>[];
  readonly logger: PinoLogger;
  /** Closes every log and removes the temporary directory. */
  close(): Promise<void>;
  /** Closes and reopens the logs of every tenant (a restart), keeping auth and limits. */
  restart(): Promise<void>;
}

export function capturingLogger(level = 'info'): { logger: PinoLogger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level, base: undefined }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { logger, lines };
}

export async function makeEnv(
  specs: TenantSpec[],
  opts: { adminToken?: string; reload?: () => Promise<{ tenants: string[] }>; bodies?: BodyBudget } = {},
): Promise<AppEnv> {
  const { dir, roots } = tempDataRoots('tlog-http-');
  const registry = new TenantRegistry();
  const metrics = new Metrics(false);
  const { logger, lines } = capturingLogger();
  const logOpts = { logger: silentLogger, onBatch: metrics.onBatch };
  const limitsOf = (s: TenantSpec): TenantLimits => ({ ...DEFAULT_LIMITS, ...s.limits });
  for (const s of specs) {
    const log = await Log.init(logPaths(roots, s.name), s.origin ?? `example.com/${s.name}`, logOpts);
    await registry.add(log, s.auth ?? OPEN_AUTH, limitsOf(s));
  }
  // Files a traversal would reach: beside the tenants, at the data root, and in the private state.
  writeFileSync(path.join(dir, 'SECRET'), SENTINEL);
  writeFileSync(path.join(roots.tilesRoot, 'SECRET'), SENTINEL);
  writeFileSync(path.join(roots.stateRoot, 'SECRET'), SENTINEL);
  const app = createApp(registry, {
    logger,
    metrics,
    adminTokenHash: opts.adminToken ? hashToken(opts.adminToken) : undefined,
    reload: opts.reload,
    bodies: opts.bodies,
  });
  return {
    dir,
    roots,
    registry,
    app,
    metrics,
    logLines: lines,
    logger,
    async close() {
      await registry.closeAll();
      removeDir(dir);
    },
    async restart() {
      for (const t of registry.all()) {
        const { auth, limits } = t;
        await registry.remove(t.name);
        const log = await Log.open(logPaths(roots, t.name), logOpts);
        await registry.add(log, auth, limits);
      }
    },
  };
}

/** A bearer-token tenant's auth: the tokens are given in clear and stored hashed. */
export function tokenAuth(o: { tokens?: string[]; readTokens?: string[]; clients?: [string, Uint8Array][] }): TenantAuth {
  const tokens = (o.tokens ?? []).map(hashToken);
  return {
    tokens: new Set(tokens),
    clients: new Map(o.clients ?? []),
    readTokens: o.readTokens ? new Set([...o.readTokens.map(hashToken), ...tokens]) : null,
    open: false,
  };
}

/** The Authorization header of a bearer token. */
export const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });

export function clientKey(seedByte: number): { seed: Uint8Array; publicKey: Uint8Array } {
  const seed = new Uint8Array(32).fill(seedByte);
  return { seed, publicKey: ed25519.getPublicKey(seed) };
}

export const octet = { 'content-type': 'application/octet-stream' };

export function post(app: Hono, url: string, body: Uint8Array | string, headers: Record<string, string> = {}): Promise<Response> {
  const data = new Uint8Array(typeof body === 'string' ? Buffer.from(body) : body);
  return Promise.resolve(app.request(url, { method: 'POST', body: data, headers: { ...octet, ...headers } }));
}

export function get(app: Hono, url: string, headers: Record<string, string> = {}): Promise<Response> {
  return Promise.resolve(app.request(url, { headers }));
}

export function bundleBody(entries: Uint8Array[]): Uint8Array {
  return formatEntryBundle(entries);
}

export async function json<T = Record<string, unknown>>(r: Response): Promise<T> {
  return (await r.json()) as T;
}

// ---- the app over a socket ----

export interface Listening {
  readonly server: Server;
  readonly port: number;
  /** The server's side of every connection so far, by the client's port. */
  readonly sockets: Map<number, net.Socket>;
  close(): Promise<void>;
}

/** Serves `app` on a loopback port through createHttpServer, the server `tlog serve` runs. */
export async function listen(app: Hono, limits: Partial<ConnectionLimits> = {}): Promise<Listening> {
  const server = createHttpServer(app.fetch, limits, fastRouteOf(app));
  const sockets = new Map<number, net.Socket>();
  server.on('connection', (s: net.Socket) => sockets.set(s.remotePort!, s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    server,
    port: (server.address() as AddressInfo).port,
    sockets,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** A raw answer: its status (0 for none), headers (lowercase names) and body text. */
export interface RawAnswer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
  /** Everything the server sent, as latin1 text. */
  readonly text: string;
}

export function parseRaw(text: string): RawAnswer {
  const status = Number(/^HTTP\/1\.[01] ([0-9]{3})/.exec(text)?.[1] ?? 0);
  const end = text.indexOf('\r\n\r\n');
  const headers: Record<string, string> = {};
  for (const line of text
    .slice(0, end < 0 ? text.length : end)
    .split('\r\n')
    .slice(1)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return { status, headers, body: end < 0 ? '' : text.slice(end + 4), text };
}

/**
 * Sends raw bytes on a fresh connection and resolves with what the server sent once it closed
 * the connection (or, with `untilAnswer`, once a whole answer with a Content-Length is in).
 * `closed` says whether the server closed it.
 */
export function rawExchange(port: number, bytes: string | Buffer, o: { untilAnswer?: boolean } = {}): Promise<RawAnswer & { closed: boolean }> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let settled = false;
    const done = (closed: boolean) => {
      if (settled) return;
      settled = true;
      sock.destroy();
      resolve({ ...parseRaw(Buffer.concat(chunks).toString('latin1')), closed });
    };
    sock.on('data', (d) => {
      chunks.push(d);
      if (!o.untilAnswer) return;
      const a = parseRaw(Buffer.concat(chunks).toString('latin1'));
      if (a.headers['content-length'] !== undefined && Buffer.byteLength(a.body, 'latin1') >= Number(a.headers['content-length'])) done(false);
    });
    sock.on('error', () => done(true));
    sock.on('close', () => done(true));
    sock.write(bytes);
  });
}
