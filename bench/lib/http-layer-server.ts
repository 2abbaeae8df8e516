/**
 * The server of bench/http-layer: `tlog serve`'s HTTP layer (createApp, createHttpServer and its
 * fast route) over a real log whose append answers one fixed result at once, so what a request
 * costs is the HTTP layer's alone (parse, route, auth, limits, metrics, answer, socket write).
 * Loads the modules of the build whose dist/ is given, so two builds can be compared:
 *
 *   node dist/bench/lib/http-layer-server.js <dist dir>    (prints "PORT <n>" once listening)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const dist = path.resolve(process.argv[2] ?? path.join(import.meta.dirname, '../..'));
const load = (m: string) => import(path.join(dist, m));

const { createApp, fastRouteOf } = await load('src/http/app.js');
const { createHttpServer } = await load('src/http/connections.js');
const { Metrics, createLogger } = await load('src/http/observe.js');
const { Log, silentLogger } = await load('src/log/log.js');
const { logPaths } = await load('src/tile-store/paths.js');
const { DEFAULT_LIMITS } = await load('src/config/config.js');
const { OPEN_AUTH, TenantRegistry } = await load('src/tenants/registry.js');

const dir = mkdtempSync(path.join(os.tmpdir(), 'tlog-bench-http-layer-'));
const roots = { tilesRoot: path.join(dir, 'tiles'), checkpointsRoot: path.join(dir, 'checkpoints'), stateRoot: path.join(dir, 'state') };
const registry = new TenantRegistry();
const metrics = new Metrics(false);
const log = await Log.init(logPaths(roots, 'default'), 'example.com/default', { logger: silentLogger, onBatch: metrics.onBatch });
await registry.add(log, OPEN_AUTH, { ...DEFAULT_LIMITS, ratePerSecond: 1e9, burst: 1e9 });
// A tree of some size, so the answer carries a proof of a usual length (~13 hashes).
await Promise.all(log.appendMany(Array.from({ length: 5000 }, (_, i) => Buffer.from(`warm ${i}`))));
const fixed = await log.append(Buffer.from('the answer of every request'));
const answer = { ...fixed, proof: fixed.proof, duplicate: false };
log.append = () => Promise.resolve(answer);
const app = createApp(registry, { logger: createLogger({ level: 'warn' }), metrics });
// Builds before the fast route have no fastRouteOf.
const server = createHttpServer(app.fetch, {}, fastRouteOf?.(app));
server.listen(0, '127.0.0.1', () => console.log(`PORT ${(server.address() as { port: number }).port}`));
process.on('SIGTERM', () => {
  rmSync(dir, { recursive: true, force: true });
  process.exit(0);
});
