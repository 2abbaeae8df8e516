/**
 * bench/cluster: `tlog serve` nodes sharing ten tenants of one bucket (a real versitygw on
 * loopback, bench/lib/versitygw.ts: the binary the tests build), next to the POSIX backend:
 *
 *  - appends/s and p50/p99, single appends at --connections (default 256) spread over the ten
 *    tenants: POSIX (one `tlog serve`, local files), S3 on 1 node, S3 on 3 nodes with each
 *    request sent to its tenant's holder, and S3 on 3 nodes with requests sent round robin to
 *    any node (2 of 3 forwarded);
 *  - server CPU per entry (every node and the store), entries per batch (from /metrics);
 *  - fail-over: --kills (default 20) times, SIGKILL the holder of a tenant and time until an
 *    append of that tenant is acknowledged by another node (probing every 50 ms), then start the
 *    killed node again and wait until the tenants are spread back.
 *
 *   node dist/bench/cluster.js [--duration 10] [--connections 256] [--kills 20] [--ttl 5] [--rounds 1]
 *
 * --rounds N keeps a 1-node and a 3-node cluster up (each on its own versitygw; the idle one
 * only renews its leases) and measures them in turn N times (1-node first in odd rounds, 3-node
 * first in even ones), so both see the same machine: each round prints the ratios 3-node /
 * 1-node (to the holder, and round robin), and the last line their medians. The target (issue
 * 14): 3 nodes with 10 tenants do at least one node's appends/s.
 *
 * Every process (nodes, store, this load generator) shares the machine: on the 2 cores this was
 * built on, three nodes do not have three machines' CPU, and the load average is printed with
 * every figure.
 */
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { preferredNode } from '../src/cluster/members.js';
import { holderUrl } from '../src/cluster/node.js';
import { createLogKeys } from '../src/log/keys.js';
import { S3Store } from '../src/storage/s3-store.js';
import { autocannon } from './lib/autocannon.js';
import { fmt, loadAverage } from './lib/format.js';
import { percentile } from './lib/fixed-rate.js';
import { cpuSecondsOf } from './lib/procstat.js';
import { startOurs, type Running } from './lib/servers.js';
import { startVersitygw, type Versitygw } from './lib/versitygw.js';

const args = process.argv.slice(2);
const opt = (name: string, def: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const DURATION = opt('duration', 10);
const CONNECTIONS = opt('connections', 256);
const KILLS = opt('kills', 20);
const TTL = opt('ttl', 5);
const ROUNDS = opt('rounds', 1);
const TENANTS = Array.from({ length: 10 }, (_, i) => `t${i}`);
const TOKEN = 'bench-token';
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const AUTH = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/octet-stream' };

/** The store's credentials (bench/lib/versitygw.ts starts it with these). */
const S3 = { accessKeyId: 'bench', secretAccessKey: 'bench-secret', region: 'us-east-1' };

interface Cluster {
  store: Versitygw;
  storeUrl: string;
  nodes: (Running | null)[];
  ports: number[];
  config: string;
  dir: string;
}

async function makeKeys(dir: string): Promise<void> {
  for (const t of TENANTS) {
    const d = path.join(dir, 'keys', t);
    mkdirSync(d, { recursive: true, mode: 0o700 });
    await createLogKeys(d, `bench.cluster/${t}`);
  }
}

const tenantsConfig = (dir: string, withKeys: boolean) =>
  TENANTS.map((t) => ({
    name: t,
    origin: `bench.cluster/${t}`,
    ...(withKeys ? { keysDir: path.join(dir, 'keys', t, 'keys') } : {}),
    credentials: { tokens: [sha(TOKEN)] },
  }));

async function startNode(c: Cluster, i: number): Promise<Running> {
  const r = await startOurs(c.dir, {
    args: ['--config', c.config, '--cache-dir', path.join(c.dir, `node${i}`), ...(c.ports[i] ? ['--listen', `127.0.0.1:${c.ports[i]}`] : [])],
  });
  c.ports[i] = Number(new URL(r.url).port);
  c.nodes[i] = r;
  return r;
}

async function startCluster(n: number): Promise<Cluster> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tlog-bench-cluster-'));
  await makeKeys(dir);
  const store = await startVersitygw(path.join(dir, 's3'), 'tlog');
  const config = path.join(dir, 'cluster.json');
  writeFileSync(
    config,
    JSON.stringify({
      store: { endpoint: store.endpoint, region: S3.region, bucket: 'tlog' },
      cluster: { leaseTtlSeconds: TTL },
      tenants: tenantsConfig(dir, true),
    }),
  );
  const c: Cluster = { store, storeUrl: store.endpoint, nodes: [], ports: [], config, dir };
  for (let i = 0; i < n; i++) await startNode(c, i);
  return c;
}

async function stopCluster(c: Cluster): Promise<void> {
  for (const n of c.nodes) await n?.stop();
  await c.store.stop();
  rmSync(c.dir, { recursive: true, force: true });
}

const liveUrls = (c: Cluster) => c.nodes.filter((n): n is Running => n !== null).map((n) => n.url);

async function holders(c: Cluster): Promise<Map<string, string | null>> {
  const store = new S3Store(c.store.client, { bucket: 'tlog' });
  const m = new Map<string, string | null>();
  for (const t of TENANTS) {
    const o = await store.get(`leases/${t}`);
    const r = o ? (JSON.parse(Buffer.from(o.bytes).toString()) as { holder: string; released: boolean }) : null;
    m.set(t, r && !r.released ? holderUrl(r.holder) : null);
  }
  return m;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until every tenant is held by its preferred live node and answers there. */
async function untilSpread(c: Cluster): Promise<Map<string, string>> {
  for (let i = 0; i < 1200; i++) {
    const urls = liveUrls(c);
    const h = await holders(c);
    if (TENANTS.every((t) => h.get(t) === preferredNode(t, urls))) {
      const ok = await Promise.all(TENANTS.map(async (t) => (await fetch(`${h.get(t)}/${t}/checkpoint`).catch(() => null))?.status === 200));
      if (ok.every(Boolean)) return h as Map<string, string>;
    }
    await sleep(100);
  }
  throw new Error('the tenants did not spread within 2 minutes');
}

async function append(url: string, body: string): Promise<number> {
  try {
    const r = await fetch(url, { method: 'POST', headers: AUTH, body });
    await r.arrayBuffer();
    return r.status;
  } catch {
    return 0;
  }
}

interface LoadResult {
  ok: number;
  failed: number;
  perSecond: number;
  p50: number;
  p99: number;
}

/**
 * Closed loop with autocannon: per tenant, CONNECTIONS / 10 connections appending distinct
 * entries to target(t, k) (k: the tenant's number). p50 is the median of the tenants' p50s,
 * p99 the worst tenant's p99.
 */
async function load(target: (t: string, k: number) => string, seconds: number): Promise<LoadResult> {
  let seq = 0;
  const per = Math.max(1, Math.round(CONNECTIONS / TENANTS.length));
  const results = await Promise.all(
    TENANTS.map((t, k) =>
      autocannon({
        url: target(t, k),
        connections: per,
        duration: seconds,
        timeout: 60,
        requests: [
          {
            method: 'POST',
            path: `/${t}/append`,
            headers: AUTH,
            setupRequest: (req) => ({ ...req, body: Buffer.from(`bench ${t} ${process.pid} ${seq++} ${Math.random()}`) }),
          },
        ],
      }),
    ),
  );
  const ok = results.reduce((a, r) => a + r['2xx'], 0);
  const failed = results.reduce((a, r) => a + r.non2xx + r.errors + r.timeouts, 0);
  const wall = Math.max(...results.map((r) => r.duration));
  const p50s = results.map((r) => r.latency.p50).sort((a, b) => a - b);
  return { ok, failed, perSecond: ok / wall, p50: p50s[Math.floor(p50s.length / 2)]!, p99: Math.max(...results.map((r) => r.latency.p99)) };
}

/** Entries and batches every node integrated so far (tlog_batch_entries), summed. */
async function batches(urls: string[]): Promise<{ entries: number; batches: number }> {
  let entries = 0;
  let count = 0;
  for (const u of urls) {
    const text = await (await fetch(`${u}/metrics`)).text();
    entries += Number(/^tlog_batch_entries_sum (\S+)/m.exec(text)?.[1] ?? 0);
    count += Number(/^tlog_batch_entries_count (\S+)/m.exec(text)?.[1] ?? 0);
  }
  return { entries, batches: count };
}

async function measure(name: string, pids: number[], urls: string[], target: (t: string, k: number) => string): Promise<LoadResult> {
  const b0 = await batches(urls);
  const cpu0 = pids.map(cpuSecondsOf);
  const r = await load(target, DURATION);
  const cpu = pids.map((p, i) => cpuSecondsOf(p) - cpu0[i]!);
  const b1 = await batches(urls);
  const entries = b1.entries - b0.entries;
  const nb = b1.batches - b0.batches;
  const nodeCpu = cpu.slice(0, -1).reduce((a, b) => a + b, 0);
  const storeCpu = cpu.at(-1)!;
  console.log(
    `${name.padEnd(34)} ${fmt(r.perSecond).padStart(6)} appends/s  p50 ${fmt(r.p50, 1)} ms  p99 ${fmt(r.p99, 1)} ms  ` +
      `(${r.failed} refused)  node CPU ${fmt((nodeCpu / Math.max(1, entries)) * 1e6)} us/entry, store CPU ${fmt((storeCpu / Math.max(1, entries)) * 1e6)} us/entry, ` +
      `${fmt(entries / Math.max(1, nb), 1)} entries/batch  [load ${loadAverage()}]`,
  );
  return r;
}

async function posixRun(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tlog-bench-posix-'));
  const config = path.join(dir, 'tlog.json');
  writeFileSync(config, JSON.stringify({ tenants: tenantsConfig(dir, false) }));
  const s = await startOurs(dir, { args: ['--config', config] });
  try {
    // The same accounting as the S3 rows; the last "store" figure here is the load generator's CPU.
    await measure('POSIX, 1 node', [s.child.pid!, process.pid], [s.url], () => s.url);
  } finally {
    await s.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function s3Run(n: number): Promise<void> {
  const c = await startCluster(n);
  try {
    const h = await untilSpread(c);
    const pids = [...c.nodes.map((x) => x!.child.pid!), c.store.pid];
    const urls = liveUrls(c);
    await measure(`S3, ${n} node${n > 1 ? 's' : ''}, to the holder`, pids, urls, (t) => h.get(t)!);
    if (n > 1) await measure(`S3, ${n} nodes, round robin (forwarded)`, pids, urls, (_t, k) => urls[k % urls.length]!);
  } finally {
    await stopCluster(c);
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** --rounds: 1-node and 3-node rounds in turn, with the ratio of each round and the medians. */
async function interleaved(rounds: number): Promise<void> {
  const one = await startCluster(1);
  const three = await startCluster(3);
  const toHolder: number[] = [];
  const roundRobin: number[] = [];
  try {
    for (let k = 1; k <= rounds; k++) {
      const oneNode = async () => {
        const h1 = await untilSpread(one);
        return measure(`round ${k}: S3, 1 node`, [one.nodes[0]!.child.pid!, one.store.pid], liveUrls(one), (t) => h1.get(t)!);
      };
      const threeNodes = async () => {
        const h3 = await untilSpread(three);
        const urls = liveUrls(three);
        const pids = [...three.nodes.map((x) => x!.child.pid!), three.store.pid];
        const holder = await measure(`round ${k}: S3, 3 nodes, to the holder`, pids, urls, (t) => h3.get(t)!);
        const rr = await measure(`round ${k}: S3, 3 nodes, round robin`, pids, urls, (_t, i) => urls[i % urls.length]!);
        return [holder, rr] as const;
      };
      // Odd rounds 1 node first, even rounds 3 nodes first: a load that drifts favours neither.
      let r1: LoadResult;
      let r3: LoadResult;
      let r3rr: LoadResult;
      if (k % 2 === 1) {
        r1 = await oneNode();
        [r3, r3rr] = await threeNodes();
      } else {
        [r3, r3rr] = await threeNodes();
        r1 = await oneNode();
      }
      toHolder.push(r3.perSecond / r1.perSecond);
      roundRobin.push(r3rr.perSecond / r1.perSecond);
      console.log(
        `round ${k}: 3 nodes / 1 node = ${fmt(toHolder.at(-1)!, 2)} to the holder, ${fmt(roundRobin.at(-1)!, 2)} round robin  [load ${loadAverage()}]`,
      );
    }
  } finally {
    await stopCluster(one);
    await stopCluster(three);
  }
  console.log(
    `over ${rounds} rounds: median 3 nodes / 1 node = ${fmt(median(toHolder), 2)} to the holder (${toHolder.map((x) => fmt(x, 2)).join(', ')}), ` +
      `${fmt(median(roundRobin), 2)} round robin (${roundRobin.map((x) => fmt(x, 2)).join(', ')})  [load ${loadAverage()}]`,
  );
}

async function failover(): Promise<void> {
  const c = await startCluster(3);
  const times: number[] = [];
  let seq = 0;
  try {
    for (let k = 0; k < KILLS; k++) {
      const h = await untilSpread(c);
      const t = TENANTS[k % TENANTS.length]!;
      const victimUrl = h.get(t)!;
      const vi = c.nodes.findIndex((x) => x?.url === victimUrl);
      // A little load on every tenant meanwhile, through the survivors.
      const victim = c.nodes[vi]!;
      const exited = new Promise((r) => (victim.child as ChildProcess).once('exit', r));
      victim.child.kill('SIGKILL');
      const killedAt = performance.now();
      await exited;
      c.nodes[vi] = null;
      const others = liveUrls(c);
      for (let i = 0; ; i++) {
        if ((await append(`${others[i % others.length]}/${t}/append`, `failover ${k} ${seq++}`)) === 200) break;
        await sleep(50);
      }
      times.push(performance.now() - killedAt);
      console.log(`kill ${k + 1}/${KILLS} (${t}): acknowledged again after ${fmt(times.at(-1)! / 1000, 2)} s  [load ${loadAverage()}]`);
      await startNode(c, vi);
    }
  } finally {
    await stopCluster(c);
  }
  const s = [...times].sort((a, b) => a - b);
  console.log(
    `fail-over over ${KILLS} kills, lease ttl ${TTL} s: p50 ${fmt(percentile(s, 50) / 1000, 2)} s, p99 ${fmt(percentile(s, 99) / 1000, 2)} s, max ${fmt(s.at(-1)! / 1000, 2)} s  [load ${loadAverage()}]`,
  );
}

async function main(): Promise<void> {
  process.env.AWS_ACCESS_KEY_ID = S3.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = S3.secretAccessKey;
  console.log(
    `bench/cluster: 10 tenants, ${CONNECTIONS} connections, ${DURATION} s a run, lease ttl ${TTL} s; ${os.cpus().length} cores shared by every node, the store and this load generator  [load ${loadAverage()}]`,
  );
  if (ROUNDS > 1) await interleaved(ROUNDS);
  else {
    await posixRun();
    await s3Run(1);
    await s3Run(3);
  }
  if (KILLS > 0) await failover();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
