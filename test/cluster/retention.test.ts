/**
 * A cluster tenant's Object Lock retention (`retention` in its configuration): a node refuses to
 * start when the bucket cannot honour it (naming the tenant and the bucket, before any lease is
 * taken), and on a bucket with Object Lock every immutable object the tenant's log writes
 * through the node carries it. Real versitygw, real `tlog serve` (in process).
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve } from '../../src/cli/serve.js';
import { historyKey, journalKey } from '../../src/cluster/store-layout.js';
import { createLogKeys } from '../../src/log/keys.js';
import { S3Store } from '../../src/storage/s3-store.js';
import { rejectionOf } from '../helpers/errors.js';
import { dataRootsIn, makeTempDir, removeDir } from '../helpers/temp-dirs.js';
import { until } from '../helpers/wait.js';
import { S3Server } from '../storage/s3-server.js';

const PLAIN = 'plain';
const LOCKED = 'locked';
const TOKEN = 'retention-test-token';
const TOKEN_HASH = createHash('sha256').update(TOKEN).digest('hex');
let s3: S3Server;
let client: S3Client;
let dir: string;

beforeAll(async () => {
  s3 = new S3Server({ buckets: [{ name: PLAIN }, { name: LOCKED, lock: true }] });
  await s3.start();
  client = s3.client();
  dir = makeTempDir('tlog-cluster-retention-');
  await createLogKeys(path.join(dir, 'keys'), 'retention.test/audit');
  writeFileSync(path.join(dir, 's3.json'), JSON.stringify({ accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey }), { mode: 0o600 });
}, 180_000);

afterAll(async () => {
  client?.destroy();
  await s3?.close();
  if (dir) removeDir(dir);
});

/** A one-node cluster configuration on `bucket` with the tenant `audit` asking for `retention`. */
function config(bucket: string, retention: unknown): string {
  const file = path.join(dir, `tlog-${bucket}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      store: { endpoint: s3.endpoint, region: s3.region, bucket, credentialsFile: path.join(dir, 's3.json') },
      cluster: { leaseTtlSeconds: 3 },
      tenants: [{ name: 'audit', origin: 'retention.test/audit', keysDir: path.join(dir, 'keys', 'keys'), credentials: { tokens: [TOKEN_HASH] }, retention }],
    }),
  );
  return file;
}

describe('Object Lock retention of a cluster tenant', { timeout: 120_000 }, () => {
  it('a bucket without Object Lock: the node refuses to start, naming the tenant and the bucket, and takes no lease', async () => {
    const e = await rejectionOf<Error>(
      serve({
        roots: dataRootsIn(path.join(dir, 'plain')),
        config: config(PLAIN, { mode: 'COMPLIANCE', days: 7 }),
        listen: '127.0.0.1:0',
        advertise: 'http://127.0.0.1:1',
        cacheDir: path.join(dir, 'cache-plain'),
      }),
    );
    expect(e.message).toBe('tenant audit asks for Object Lock retention (COMPLIANCE, 7 days) but bucket plain has no Object Lock enabled');
    expect(await new S3Store(client, { bucket: PLAIN }).list('')).toEqual([]);
  });

  it('a bucket with Object Lock: the journal, tiles, bundles and history the node writes carry the retention; the checkpoint does not', async () => {
    const stop = new AbortController();
    let port = 0;
    const running = serve({
      roots: dataRootsIn(path.join(dir, 'locked')),
      config: config(LOCKED, { mode: 'GOVERNANCE', days: 1 }),
      listen: '127.0.0.1:0',
      advertise: 'http://127.0.0.1:0',
      cacheDir: path.join(dir, 'cache-locked'),
      onBound: (p) => {
        port = p;
      },
      signal: stop.signal,
    });
    running.catch(() => {});
    try {
      const appended = await until(
        'an append acknowledged once the node holds the tenant',
        async () => {
          if (port === 0) return null;
          const r = await fetch(`http://127.0.0.1:${port}/audit/append`, {
            method: 'POST',
            headers: { authorization: `Bearer ${TOKEN}` },
            body: 'held under lock',
          });
          return r.status === 200 ? ((await r.json()) as { index: number }) : null;
        },
        60_000,
      );
      expect(appended.index).toBe(0);
      const head = (key: string) => client.send(new HeadObjectCommand({ Bucket: LOCKED, Key: `tenants/audit/${key}` }));
      for (const key of [journalKey(0), 'tile/0/000.p/1', 'tile/entries/000.p/1', historyKey(1), historyKey(0)]) {
        const h = await head(key);
        expect(h.ObjectLockMode, key).toBe('GOVERNANCE');
        expect(h.ObjectLockRetainUntilDate!.getTime(), key).toBeGreaterThan(Date.now());
      }
      expect((await head('checkpoint')).ObjectLockMode).toBeUndefined();
    } finally {
      stop.abort();
      await running.catch(() => {});
    }
  });
});
