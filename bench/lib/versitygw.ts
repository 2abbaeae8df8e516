/**
 * A versitygw S3 server on loopback for the store benches: the binary the tests build
 * (test/interop/go/bin/versitygw; run `npx vitest run test/storage/s3-guarantees.test.ts` once to
 * build it), its posix backend in a temp directory, one bucket.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { s3Client } from '../../src/storage/s3-store.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), process.env.TLOG_REPO_ROOT ?? '../../..');

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

export interface Versitygw {
  readonly client: S3Client;
  /** http://127.0.0.1:<port> */
  readonly endpoint: string;
  readonly pid: number;
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string; readonly region: string };
  stop(): Promise<void>;
}

export async function startVersitygw(dir: string, bucket: string): Promise<Versitygw> {
  const bin = [path.join(repo, 'test/interop/go/bin/versitygw'), path.join(repo, '../test/interop/go/bin/versitygw')].find((p) => existsSync(p));
  if (!bin) throw new Error('versitygw is not built: run `npx vitest run test/storage/s3-guarantees.test.ts` once');
  const root = path.join(dir, 'root');
  const versions = path.join(dir, 'versions');
  for (const d of [root, versions]) mkdirSync(d, { recursive: true });
  const port = await freePort();
  const creds = { accessKeyId: 'bench', secretAccessKey: 'bench-secret' };
  const p: ChildProcess = spawn(
    bin,
    [
      '--port',
      `127.0.0.1:${port}`,
      '--quiet',
      // Connections kept open between requests, as AWS S3 and most S3 servers do: versitygw
      // closes each one after its answer by default, which costs a TCP connection per request.
      '--keep-alive',
      '--access',
      creds.accessKeyId,
      '--secret',
      creds.secretAccessKey,
      '--region',
      'us-east-1',
      'posix',
      '--versioning-dir',
      versions,
      root,
    ],
    { stdio: 'ignore', env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } },
  );
  const client = s3Client({ endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', ...creds });
  for (let i = 0; ; i++) {
    try {
      await client.send(new CreateBucketCommand({ Bucket: bucket }));
      break;
    } catch (e) {
      if (i > 500) throw e;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  return {
    client,
    endpoint: `http://127.0.0.1:${port}`,
    pid: p.pid!,
    credentials: { ...creds, region: 'us-east-1' },
    stop: async () => {
      client.destroy();
      p.kill('SIGTERM');
      await new Promise((r) => p.once('exit', r));
    },
  };
}
