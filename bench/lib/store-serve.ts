/**
 * The server process of `bench/store --http`: one open tenant `default`, its log either local
 * files (posix) or written through an S3 store (s3, src/cluster/store-log.ts), behind the
 * service's HTTP app as `tlog serve` runs it. Prints `PORT <n>` once listening; SIGTERM closes
 * the log and exits.
 *
 *   node dist/bench/lib/store-serve.js --backend posix|s3 --dir D [--endpoint URL --bucket B --prefix P --keys DIR]
 */
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { openStoreLog, scopedStore } from '../../src/cluster/store-log.js';
import { DEFAULT_HTTP_LIMITS } from '../../src/config/config.js';
import { createApp } from '../../src/http/app.js';
import { BodyBudget } from '../../src/http/body-budget.js';
import { connectionLimits, createHttpServer } from '../../src/http/connections.js';
import { Log } from '../../src/log/log.js';
import { s3Client, S3Store } from '../../src/storage/s3-store.js';
import { OPEN_AUTH, TenantRegistry } from '../../src/tenants/registry.js';
import { logPaths, type DataRoots } from '../../src/tile-store/paths.js';

const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'posix' },
    dir: { type: 'string' },
    origin: { type: 'string', default: 'bench.example/store' },
    endpoint: { type: 'string' },
    bucket: { type: 'string', default: 'bench' },
    prefix: { type: 'string', default: 'http/' },
    keys: { type: 'string' },
    'access-key': { type: 'string', default: 'bench' },
    'secret-key': { type: 'string', default: 'bench-secret' },
  },
});
const dir = values.dir!;
const roots: DataRoots = { tilesRoot: path.join(dir, 'tiles'), checkpointsRoot: path.join(dir, 'checkpoints'), stateRoot: path.join(dir, 'state') };
const log =
  values.backend === 'posix'
    ? await Log.init(logPaths(roots, 'default'), values.origin!)
    : await openStoreLog({
        store: scopedStore(
          new S3Store(
            s3Client({ endpoint: values.endpoint, region: 'us-east-1', accessKeyId: values['access-key']!, secretAccessKey: values['secret-key']! }),
            { bucket: values.bucket! },
          ),
          values.prefix!,
        ),
        tenant: 'default',
        cacheRoots: roots,
        keysDir: values.keys!,
        origin: values.origin!,
        epoch: 1,
      });
const tenants = new TenantRegistry();
await tenants.add(log, OPEN_AUTH);
const app = createApp(tenants, { bodies: new BodyBudget(DEFAULT_HTTP_LIMITS.maxBodyBytesInFlight) });
const server = createHttpServer(app.fetch, connectionLimits(DEFAULT_HTTP_LIMITS));
server.listen(0, '127.0.0.1', () => console.log(`PORT ${(server.address() as AddressInfo).port}`));
process.once('SIGTERM', () => {
  server.closeAllConnections();
  server.close();
  void log.close().then(() => process.exit(0));
});
