/**
 * A real S3 server for tests: versitygw v1.8.0 (github.com/versity/versitygw) with its posix
 * backend, built from the Go module proxy by the module in test/interop/go/versitygw. It stores
 * objects as files in a temp directory, metadata (etags, retention, lock configuration) in
 * extended attributes, and object versions in a second directory (--versioning-dir): S3 Object
 * Lock needs versioning, as on AWS.
 *
 * The server listens on 127.0.0.1 port 0; versitygw does not print the port the kernel chose,
 * so it is read from /proc (the listening socket among the process's file descriptors).
 * Linux only, like the rest of the suite's process tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { CreateBucketCommand, ListBucketsCommand, type S3Client } from '@aws-sdk/client-s3';
import { repoRoot } from '../helpers/dist.js';
import { buildGoTool } from '../helpers/go-tools.js';
import { s3Client, type S3Endpoint } from '../../src/storage/s3-store.js';
import { stopChild } from '../helpers/processes.js';
import { makeTempDir, removeDir } from '../helpers/temp-dirs.js';

const moduleDir = path.join(repoRoot, 'test/interop/go/versitygw');
const PKG = 'github.com/versity/versitygw/cmd/versitygw';
let binary = '';

/** Builds versitygw once (a no-op when the binary is newer than the module's go.mod and go.sum). */
export function buildVersitygw(): string {
  binary ||= buildGoTool(moduleDir, PKG, 'versitygw');
  return binary;
}

/** The TCP port a process listens on, from /proc/<pid>/fd and /proc/net/tcp; null while it has none. */
function listeningPort(pid: number): number | null {
  const inodes = new Set<string>();
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return null;
  }
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== '0A' /* LISTEN */ || !inodes.has(f[9]!)) continue;
      return Number.parseInt(f[1]!.split(':')[1]!, 16);
    }
  }
  return null;
}

export interface S3ServerOptions {
  /** Buckets made at start; `lock: true` makes one with Object Lock enabled (and so versioning). */
  buckets?: { name: string; lock?: boolean }[];
}

export class S3Server {
  readonly accessKeyId = 'tlogworm-test';
  readonly secretAccessKey = 'tlogworm-test-secret';
  readonly region = 'us-east-1';
  endpoint = '';
  logs = '';
  /** Whether metadata lives in a sidecar directory because the temp filesystem has no user xattrs. */
  sidecar = false;
  private proc: ChildProcess | null = null;
  private readonly dir: string;

  constructor(private readonly opts: S3ServerOptions = {}) {
    this.dir = makeTempDir('tlog-s3-');
  }

  /** What src/storage/s3-store.ts needs to reach this server. */
  get config(): S3Endpoint {
    return { endpoint: this.endpoint, region: this.region, accessKeyId: this.accessKeyId, secretAccessKey: this.secretAccessKey };
  }

  /** A client with the settings the store uses (path-style, checksums only when required). */
  client(): S3Client {
    return s3Client(this.config);
  }

  async start(): Promise<void> {
    const bin = buildVersitygw();
    for (const sidecar of [false, true]) {
      this.sidecar = sidecar;
      const failure = await this.launch(bin, sidecar, 0);
      if (failure === null) break;
      // versitygw refuses a root without user xattrs (tmpfs before Linux 6.6): keep metadata in files.
      if (!sidecar && /xattrs are not supported/.test(failure)) continue;
      throw new Error(`versitygw did not start: ${failure}`);
    }
    const client = this.client();
    try {
      for (const b of this.opts.buckets ?? []) {
        await client.send(new CreateBucketCommand({ Bucket: b.name, ObjectLockEnabledForBucket: b.lock === true ? true : undefined }));
      }
    } finally {
      client.destroy();
    }
  }

  /**
   * Starts the server again after stop(), on the same port and files, making no buckets (the
   * store coming back after an outage: clients keep their endpoint); fails when it does not come up.
   */
  async restart(): Promise<void> {
    const port = Number(new URL(this.endpoint).port);
    const failure = await this.launch(buildVersitygw(), this.sidecar, port);
    if (failure !== null) throw new Error(`versitygw did not restart on port ${port}: ${failure}`);
  }

  /** Starts the process and waits until it answers ListBuckets; returns its output when it died instead. */
  private async launch(bin: string, sidecar: boolean, port: number): Promise<string | null> {
    const root = path.join(this.dir, 'root');
    const versions = path.join(this.dir, 'versions');
    const meta = path.join(this.dir, 'meta');
    for (const d of [root, versions, meta]) mkdirSync(d, { recursive: true });
    const args = [
      '--port',
      `127.0.0.1:${port}`,
      '--quiet',
      '--access',
      this.accessKeyId,
      '--secret',
      this.secretAccessKey,
      '--region',
      this.region,
      'posix',
      '--versioning-dir',
      versions,
      ...(sidecar ? ['--sidecar', meta] : []),
      root,
    ];
    this.logs = '';
    // The credentials go on the command line, not in the environment: no ROOT_* variable of the
    // caller's environment leaks in.
    const p = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
    this.proc = p;
    p.stdout!.on('data', (d: Buffer) => (this.logs += d.toString()));
    p.stderr!.on('data', (d: Buffer) => (this.logs += d.toString()));
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    for (let i = 0; ; i++) {
      if (p.exitCode !== null || p.signalCode !== null) {
        await exited;
        return this.logs || `exit ${p.exitCode ?? p.signalCode}`;
      }
      const port = p.pid === undefined ? null : listeningPort(p.pid);
      if (port !== null) {
        this.endpoint = `http://127.0.0.1:${port}`;
        const client = this.client();
        try {
          await client.send(new ListBucketsCommand({}));
          return null;
        } catch {
          // not serving yet
        } finally {
          client.destroy();
        }
      }
      // A bound on waiting for a process to come up, not a time measurement of the test.
      if (i > 3000) {
        await this.stop();
        return `no answer after 60 s:\n${this.logs}`;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async stop(): Promise<void> {
    const p = this.proc;
    this.proc = null;
    await stopChild(p);
  }

  /** Stops the server and removes its files. */
  async close(): Promise<void> {
    await this.stop();
    removeDir(this.dir);
  }
}
