/**
 * `tlog serve`: the HTTP service. With no configuration it serves the embedded default tenant
 * on loopback, creating its log and keys on first start. SIGTERM/SIGINT stop accepting,
 * finish the batch in flight, and exit 0.
 */
import { serve as serveNode } from '@hono/node-server';
import { createApp } from '../http/app.js';
import type { DataRoots } from '../log/paths.js';
import { openOrInitDefault, TenantRegistry } from '../tenants/registry.js';
import { TlogError, ErrorCode } from '../errors.js';

export interface ServeOptions {
  readonly roots: DataRoots;
  readonly listen: string;
  readonly origin?: string;
}

function parseListen(listen: string): { host: string; port: number } {
  const m = /^(.*):([0-9]{1,5})$/.exec(listen);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) throw new TlogError(ErrorCode.badInput, `bad --listen ${JSON.stringify(listen)}: want host:port`);
  return { host: m[1]!.replace(/^\[(.*)\]$/, '$1'), port };
}

export async function serve(o: ServeOptions): Promise<void> {
  const { host, port } = parseListen(o.listen);
  const tenants = new TenantRegistry();
  const { log, created } = await openOrInitDefault(o.roots, o.origin ?? `${host === '0.0.0.0' ? 'localhost' : host}:${port}/default`);
  tenants.add(log);
  const say = (s: string) => process.stderr.write(s + '\n');
  say(`${created ? 'created' : 'opened'} log "default" (origin ${log.origin}, size ${log.treeSize}) in ${log.paths.tilesDir}`);
  say(`verifier keys:\n  ${log.verifierKeys().join('\n  ')}`);
  const app = createApp(tenants);
  const server = serveNode({ fetch: app.fetch, hostname: host, port }, (info) => {
    say(`listening on http://${host}:${info.port} (embedded default tenant: writes accepted without credentials on this address)`);
  });
  await new Promise<void>((resolve) => {
    const stop = () => {
      say('stopping: finishing the batch in flight');
      server.close();
      tenants.closeAll().then(resolve, (e) => {
        say(`error while stopping: ${(e as Error).message}`);
        process.exitCode = 1;
        resolve();
      });
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}
