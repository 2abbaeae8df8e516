/**
 * bench/store-takeover: how long openStoreLog (src/cluster/store-log.ts) takes to take a tenant
 * of N entries over on a node with an empty cache: the store's tiles downloaded, the hot index
 * rebuilt from them, the log opened; extrapolated linearly to 10M (both steps are linear in N).
 * The store is versitygw on loopback (bench/lib/versitygw.ts).
 *
 *   npm run build && node dist/bench/store-takeover.js [--entries 1000000] [--more 16384] [--dir /tmp]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { openStoreLog, scopedStore } from '../src/cluster/store-log.js';
import { createLogKeys } from '../src/log/keys.js';
import { S3Store } from '../src/storage/s3-store.js';
import { nextEntry } from './lib/entries.js';
import { fmt, loadAverage } from './lib/format.js';
import { startVersitygw } from './lib/versitygw.js';

const { values } = parseArgs({
  options: { entries: { type: 'string', default: '1000000' }, more: { type: 'string', default: '16384' }, dir: { type: 'string', default: os.tmpdir() } },
});
const N = Number(values.entries);
const MORE = Number(values.more);
const ORIGIN = 'bench.example/takeover';
const dir = mkdtempSync(path.join(values.dir, 'tlog-bench-takeover-'));
const s3 = await startVersitygw(path.join(dir, 's3'), 'bench');
try {
  await createLogKeys(path.join(dir, 'keyholder'), ORIGIN);
  const open = (node: string) =>
    openStoreLog(
      {
        store: scopedStore(new S3Store(s3.client, { bucket: 'bench' }), 'takeover/'),
        tenant: 'takeover',
        cacheRoots: { tilesRoot: path.join(dir, node, 'tiles'), checkpointsRoot: path.join(dir, node, 'cp'), stateRoot: path.join(dir, node, 'state') },
        keysDir: path.join(dir, 'keyholder', 'keys'),
        origin: ORIGIN,
        epoch: 1,
        logOptions: { maxBatch: 16384 },
      },
      (t) =>
        console.log(
          `  store at ${fmt(t.storeSize)}, ${t.adopted} records adopted, ${fmt(t.tilesDownloaded)} tiles and bundles downloaded; seconds: ` +
            Object.entries(t.seconds)
              .map(([k, v]) => `${k} ${fmt(v, 1)}`)
              .join(', '),
        ),
    );
  const w = await open('writer');
  const t0 = performance.now();
  for (let done = 0; done < N; ) {
    const n = Math.min(16384, N - done);
    await Promise.all(w.appendMany(Array.from({ length: n }, () => nextEntry())));
    done += n;
  }
  console.log(`wrote ${fmt(N)} entries through the store in ${fmt((performance.now() - t0) / 1000, 1)} s`);
  await w.close();
  const t1 = performance.now();
  const t = await open('taker');
  const secs = (performance.now() - t1) / 1000;
  console.log(
    `take-over of ${fmt(t.treeSize)} entries (empty cache, index rebuilt): ${fmt(secs, 1)} s; 10M extrapolated: ${fmt((secs * 10_000_000) / N, 0)} s (load ${loadAverage()})`,
  );
  // The node that held the tenant before takes it back after the taker wrote MORE entries: its
  // cache (closed cleanly at N) is a prefix of the store's chain, so it is kept (store-cache.ts).
  for (let done = 0; done < MORE; ) {
    const n = Math.min(16384, MORE - done);
    await Promise.all(t.appendMany(Array.from({ length: n }, () => nextEntry())));
    done += n;
  }
  await t.close();
  const t2 = performance.now();
  const back = await open('writer');
  console.log(
    `take-back by the node that held it at ${fmt(N)}, the store at ${fmt(back.treeSize)} (cache kept, index caught up): ${fmt((performance.now() - t2) / 1000, 1)} s (load ${loadAverage()})`,
  );
  await back.close();
} finally {
  await s3.stop();
  rmSync(dir, { recursive: true, force: true });
}
