/**
 * A cluster on loopback for tests: a real versitygw (test/storage/s3-server.ts) and `tlog serve`
 * nodes as real processes sharing one configuration, each with its own cache directory.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { ed25519 } from '@noble/curves/ed25519.js';
import { expect } from 'vitest';
import { fetchCheckpoint, proveInclusion, TileFetcher, urlSource, type TlogSource } from '../../src/client/index.js';
import { buildChecker, runCheck, WANT_CONTENT_TYPES } from '../interop/tlogcheck.js';
import path from 'node:path';
import { preferredNode } from '../../src/cluster/members.js';
import { holderUrl } from '../../src/cluster/node.js';
import { S3Store } from '../../src/storage/s3-store.js';
import { createLogKeys } from '../../src/log/keys.js';
import { createAnchorKey } from '../../src/anchor/key.js';
import { S3Server } from '../storage/s3-server.js';
import { makeTempDir, removeDir } from '../helpers/temp-dirs.js';
import { runTlog, spawnServe, writeConfig, type ServeProc } from '../helpers/tlog-cli.js';
import { until } from '../helpers/wait.js';

export const TOKEN = 'cluster-test-token';
export const ADMIN = 'cluster-test-admin';
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
export const auth = { authorization: `Bearer ${TOKEN}` };
/** A client that signs its requests (RFC 9421), registered as `c` in every tenant. */
export const CLIENT = { id: 'c', seed: new Uint8Array(32).fill(7) };

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
  /** More settings for each tenant's configuration (e.g. anchoring), set before start(). */
  tenantExtra: (tenant: string) => Record<string, unknown> = () => ({});

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
    await this.configure(this.tenants);
    for (let i = 0; i < this.nodeCount; i++) {
      const n: ClusterNodeProc = { index: i, proc: null, cacheDir: path.join(this.dir, `node${i}`), listen: '127.0.0.1:0' };
      this.nodes.push(n);
      await this.startNode(n);
    }
  }

  /**
   * Writes the configuration every node reads, with these tenants (this.tenants becomes them);
   * each tenant's key files are made once and shared by every node (as deployed to each machine).
   * Running nodes pick it up on reload().
   */
  async configure(tenants: readonly string[]): Promise<void> {
    for (const t of tenants) {
      const dir = path.join(this.dir, 'keys', t);
      if (existsSync(dir)) continue;
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      // As tlog init makes them: the log keys and the anchoring key.
      await createLogKeys(dir, `cluster.test/${t}`);
      await createAnchorKey(dir);
    }
    this.tenants.splice(0, this.tenants.length, ...tenants);
    writeConfig(this.config, {
      adminToken: sha(ADMIN),
      store: { endpoint: this.s3.endpoint, region: this.s3.region, bucket: 'tlog' },
      cluster: { leaseTtlSeconds: this.ttlSeconds },
      tenants: tenants.map((t) => {
        const keysDir = path.join(this.dir, 'keys', t, 'keys');
        const clients = [{ id: CLIENT.id, publicKey: Buffer.from(ed25519.getPublicKey(CLIENT.seed)).toString('base64') }];
        return { name: t, origin: `cluster.test/${t}`, keysDir, credentials: { tokens: [sha(TOKEN)], clients }, ...this.tenantExtra(t) };
      }),
    });
  }

  /** POST /admin/reload to node i: the answer's status and JSON. */
  async reload(i: number): Promise<{ status: number; body: Record<string, unknown> }> {
    const r = await fetch(`${this.url(i)}/admin/reload`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } });
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  }

  /** The tenants node i holds, from its /healthz (admin view). */
  async holds(i: number): Promise<string[]> {
    const r = await fetch(`${this.url(i)}/healthz`, { headers: { authorization: `Bearer ${ADMIN}` } });
    const body = (await r.json()) as { cluster?: { holds?: string[] } };
    return body.cluster?.holds ?? [];
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
        TLOG_LOG_LEVEL: process.env.TLOG_CLUSTER_LOG_LEVEL ?? 'warn',
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

  /** Keys under a prefix of the bucket, and one object's bytes. */
  storeKeys(prefix: string): Promise<string[]> {
    return this.store!.list(prefix);
  }

  async storeGet(key: string): Promise<Uint8Array | null> {
    return (await this.store!.get(key))?.bytes ?? null;
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
        // And each is open there (a lease is taken before its log is opened from the store).
        for (const [t, h] of m) if ((await fetch(`${h}/${t}/checkpoint`)).status !== 200) return null;
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

/** A source that tries a GET again (up to 30 times, 500 ms apart) while it is answered 503 (code unavailable). */
function patient(src: TlogSource): TlogSource {
  return {
    where: src.where,
    async get(rel) {
      for (let i = 0; ; i++) {
        try {
          return await src.get(rel);
        } catch (e) {
          if (i >= 30 || (e as { code?: string }).code !== 'unavailable') throw e;
          await new Promise((r) => setTimeout(r, 500));
        }
      }
    },
  };
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

/**
 * Checks a tenant as a verifier would, through a node: every acknowledged entry is at its index
 * (with an inclusion proof in the served checkpoint); every checkpoint in the store's history is
 * consistent with the served tree, so the history holds one root per size; `tlog verify --url`
 * and the Go reference checker (golang.org/x/mod/sumdb/tlog) pass.
 */
export async function auditTenant(c: TestCluster, base: string, tenant: string, acked: ReadonlyMap<number, string>): Promise<number> {
  // Read from the holder itself once it answers: a node that forwards answers 503 + Retry-After
  // for a moment while a lease changes hands (a hand-back to a restarted node may still be
  // settling), which is the cluster working as designed, not what this audit checks.
  const holder = await until(
    `${tenant} answered by its holder`,
    async () => {
      const h = (await c.holder(tenant)) ?? base;
      return (await fetch(`${h}/${tenant}/checkpoint`)).status === 200 ? h : null;
    },
    60_000,
  );
  const prefix = `${holder}/${tenant}`;
  const vkeys = (await (await fetch(`${prefix}/vkeys`)).text()).trim().split('\n');
  const src = new TileFetcher(patient(urlSource(prefix)));
  const cp = await fetchCheckpoint(src, { logKeys: vkeys });
  for (const [index, entry] of acked) {
    const r = await proveInclusion(src, cp, index);
    expect(Buffer.from(r.entry).toString(), `${tenant} entry ${index}`).toBe(entry);
  }
  const history = await c.storeKeys(`tenants/${tenant}/history/`);
  const olds: string[] = [];
  for (const [i, k] of history.entries()) {
    const note = await c.storeGet(k);
    const f = path.join(c.dir, `audit-${tenant}-${i}`);
    writeFileSync(f, note!);
    olds.push('-old', f);
  }
  const vkeyFile = path.join(c.dir, `audit-${tenant}.vkeys`);
  writeFileSync(vkeyFile, `${vkeys.join('\n')}\n`);
  buildChecker();
  const { code, summary, stderr } = await runCheck(['-vkey-file', vkeyFile, ...WANT_CONTENT_TYPES, ...olds, prefix]);
  expect(code, `${stderr}\n${JSON.stringify(summary)}`).toBe(0);
  expect(summary.ok).toBe(true);
  expect(summary.treeSize).toBe(cp.checkpoint.treeSize);
  expect(summary.consistency.length).toBe(history.length);
  const v = runTlog(['verify', '--url', prefix, ...vkeys.flatMap((k) => ['--vkey', k])], { cwd: c.dir });
  expect(v.code, v.stderr + v.stdout).toBe(0);
  return cp.checkpoint.treeSize;
}

export interface KillRun {
  /** Per tenant: every acknowledged index and its entry. */
  readonly acked: Map<string, Map<number, string>>;
  /** Per kill: ms from the SIGKILL to the first append of the victim tenant acknowledged by another node. */
  readonly failoverMs: number[];
}

/**
 * Appends to every tenant through the live nodes (round robin) while, `kills` times, the holder
 * of one tenant is SIGKILLed and started again once another node acknowledged an append of that
 * tenant. Every acknowledged entry is recorded at its index; one index acknowledged with two
 * entries fails at once.
 */
export async function killUnderLoad(c: TestCluster, kills: number, onKill?: (k: number, ms: number) => void): Promise<KillRun> {
  const acked = new Map(c.tenants.map((t) => [t, new Map<number, string>()]));
  const failoverMs: number[] = [];
  let stop = false;
  let seq = 0;
  const conflicts: string[] = [];
  const record = (t: string, r: { status: number; body: Record<string, unknown> | null }, entry: string) => {
    if (r.status !== 200) return false;
    const i = r.body!.index as number;
    const m = acked.get(t)!;
    if (m.has(i) && m.get(i) !== entry) conflicts.push(`${t}[${i}]: ${m.get(i)} and ${entry}`);
    m.set(i, entry);
    return true;
  };
  const loaders = c.tenants.map(async (t, ti) => {
    for (let k = ti; !stop; k++) {
      const urls = c.urls();
      const entry = `${t}-load-${seq++}`;
      record(t, await append(urls[k % urls.length]!, t, entry), entry);
    }
  });
  try {
    for (let k = 0; k < kills; k++) {
      const t = c.tenants[k % c.tenants.length]!;
      const holder = await until(`a holder of ${t}`, () => c.holder(t), 60_000);
      const victim = c.nodeOf(holder);
      await c.kill(victim.index);
      const killedAt = performance.now();
      await until(
        `${t} acknowledged again after kill ${k + 1}`,
        async () => {
          const others = c.urls().filter((u) => u !== holder);
          const entry = `${t}-probe-${seq++}`;
          return record(t, await append(others[k % others.length]!, t, entry), entry);
        },
        60_000,
      );
      failoverMs.push(performance.now() - killedAt);
      if (process.env.TLOG_CLUSTER_LOG_LEVEL) {
        for (const n of c.nodes)
          if (n !== victim)
            console.log(
              `kill ${k} at ${new Date(Date.now() - failoverMs.at(-1)!).toISOString()} (${t}): node ${n.index}\n${n
                .proc!.stdout()
                .split('\n')
                .filter((l) => l.includes(`"${t}"`))
                .slice(-6)
                .join('\n')}`,
            );
      }
      onKill?.(k, failoverMs.at(-1)!);
      await c.startNode(victim);
    }
  } finally {
    stop = true;
    await Promise.all(loaders);
  }
  expect(conflicts).toEqual([]);
  return { acked, failoverMs };
}
