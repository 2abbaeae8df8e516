/**
 * A cluster on loopback for tests: a real versitygw (test/storage/s3-server.ts) and `tlog serve`
 * nodes as real processes sharing one configuration, each with its own cache directory.
 */
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { preferredNode } from '../../src/cluster/members.js';
import { holderUrl } from '../../src/cluster/node.js';
import { S3Store } from '../../src/storage/s3-store.js';
import { createLogKeys } from '../../src/log/keys.js';
import { S3Server } from '../storage/s3-server.js';
import { makeTempDir, removeDir } from '../helpers/temp-dirs.js';
import { spawnServe, writeConfig, type ServeProc } from '../helpers/tlog-cli.js';
import { until } from '../helpers/wait.js';

export const TOKEN = 'cluster-test-token';
export const ADMIN = 'cluster-test-admin';
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
export const auth = { authorization: `Bearer ${TOKEN}` };

export interface ClusterNodeProc {
  readonly index: number;
  proc: ServeProc | null;
  readonly cacheDir: string;
  readonly listen: string;
}

export class TestCluster {
  readonly s3 = new S3Server({ buckets: [{ name: 'tlog' }] });
  readonly dir = makeTempDir('tlog-cluster-');
  readonly config = path.join(this.dir, 'cluster.json');
  readonly tenants: string[];
  readonly nodes: ClusterNodeProc[] = [];
  private store: S3Store | null = null;

  constructor(
    readonly nodeCount: number,
    tenantCount: number,
    readonly ttlSeconds: number,
  ) {
    this.tenants = Array.from({ length: tenantCount }, (_, i) => `t${i}`);
  }

  /** Starts the store and every node (ports fixed after the first start, so a restarted node keeps its URL). */
  async start(): Promise<void> {
    await this.s3.start();
    this.store = new S3Store(this.s3.client(), { bucket: 'tlog' });
    // Each tenant's key files, made once and shared by every node (as deployed to each machine).
    for (const t of this.tenants) {
      mkdirSync(path.join(this.dir, 'keys', t), { recursive: true, mode: 0o700 });
      await createLogKeys(path.join(this.dir, 'keys', t), `cluster.test/${t}`);
    }
    writeConfig(this.config, {
      adminToken: sha(ADMIN),
      store: { endpoint: this.s3.endpoint, region: this.s3.region, bucket: 'tlog' },
      cluster: { leaseTtlSeconds: this.ttlSeconds },
      tenants: this.tenants.map((t) => {
        const keysDir = path.join(this.dir, 'keys', t, 'keys');
        return { name: t, origin: `cluster.test/${t}`, keysDir, credentials: { tokens: [sha(TOKEN)] } };
      }),
    });
    for (let i = 0; i < this.nodeCount; i++) {
      const n: ClusterNodeProc = { index: i, proc: null, cacheDir: path.join(this.dir, `node${i}`), listen: '127.0.0.1:0' };
      this.nodes.push(n);
      await this.startNode(n);
    }
  }

  /** Starts (or restarts) a node; a restart listens on the port it had, so its URL stays the same. */
  async startNode(n: ClusterNodeProc): Promise<void> {
    const port = n.proc?.port ?? 0;
    n.proc = await spawnServe(['--config', this.config, '--cache-dir', n.cacheDir, '--listen', `127.0.0.1:${port}`], {
      cwd: this.dir,
      env: {
        AWS_ACCESS_KEY_ID: this.s3.accessKeyId,
        AWS_SECRET_ACCESS_KEY: this.s3.secretAccessKey,
        TLOG_LOG_FORMAT: 'json',
        TLOG_LOG_LEVEL: 'warn',
      },
    });
  }

  url(i: number): string {
    return this.nodes[i]!.proc!.url;
  }

  urls(): string[] {
    return this.nodes.filter((n) => n.proc !== null).map((n) => n.proc!.url);
  }

  /** The holder URL in the tenant's lease object (null: no lease, or released). */
  async holder(tenant: string): Promise<string | null> {
    const o = await this.store!.get(`leases/${tenant}`);
    if (o === null) return null;
    const r = JSON.parse(Buffer.from(o.bytes).toString()) as { holder: string; released: boolean; epoch: number };
    return r.released ? null : holderUrl(r.holder);
  }

  async leaseEpoch(tenant: string): Promise<number> {
    const o = await this.store!.get(`leases/${tenant}`);
    return o === null ? 0 : (JSON.parse(Buffer.from(o.bytes).toString()) as { epoch: number }).epoch;
  }

  /** Waits until every tenant is held by its preferred node among `urls` and appends through that node answer. */
  async untilSpread(urls: string[] = this.urls(), timeoutMs = 60_000): Promise<Map<string, string>> {
    return until(
      'every tenant held by its preferred node',
      async () => {
        const m = new Map<string, string>();
        for (const t of this.tenants) {
          const h = await this.holder(t);
          if (h === null || h !== preferredNode(t, urls)) return null;
          m.set(t, h);
        }
        return m;
      },
      timeoutMs,
    );
  }

  /** SIGKILLs node i; resolves once it is gone. */
  async kill(i: number): Promise<void> {
    const p = this.nodes[i]!.proc!;
    p.child.kill('SIGKILL');
    await p.exited;
  }

  nodeOf(url: string): ClusterNodeProc {
    const n = this.nodes.find((x) => x.proc?.url === url);
    if (!n) throw new Error(`no node at ${url}`);
    return n;
  }

  async close(): Promise<void> {
    for (const n of this.nodes) if (n.proc && n.proc.child.exitCode === null && n.proc.child.signalCode === null) n.proc.child.kill('SIGKILL');
    await Promise.all(this.nodes.map((n) => n.proc?.exited));
    await this.s3.close();
    removeDir(this.dir);
  }
}

/** POST /<t>/append through a node: the status and the JSON answer (or null). */
export async function append(
  base: string,
  tenant: string,
  entry: string,
  headers: Record<string, string> = auth,
): Promise<{ status: number; body: Record<string, unknown> | null; headers: Headers }> {
  try {
    const r = await fetch(`${base}/${tenant}/append`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/octet-stream' },
      body: entry,
      signal: AbortSignal.timeout(30_000),
    });
    const text = await r.text();
    let body: Record<string, unknown> | null = null;
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      body = null;
    }
    return { status: r.status, body, headers: r.headers };
  } catch {
    return { status: 0, body: null, headers: new Headers() };
  }
}
