/**
 * bench/http: the HTTP service under autocannon, in one run:
 *   - single-entry appends (POST /<t>/append, a distinct entry per request) per second, with
 *     p50/p99 latency, at 64 and 256 connections;
 *   - entries per second through POST /<t>/append-batch (bundle encoding);
 *   - tile GETs per second from our service next to nginx (Debian's, started here on loopback
 *     with a generated minimal configuration, one worker) serving the same tiles/ directory;
 *   - the server's RSS (now and peak);
 *   - over each append and append-batch run, the CPU the server and this process (autocannon)
 *     used, as % of one core and, for appends, server CPU per request: when the two come near
 *     the machine's cores, the machine is the limit, not the server.
 * The server is a separate process (dist/src/cli/main.js serve, TLOG_LOG_LEVEL=warn), so the load
 * generator does not share its event loop.
 *
 *   npm run build && node dist/bench/http.js [--duration 10] [--batch 1000] [--dir /tmp]
 *                                            [--cpu-prof DIR] [--no-nginx]
 *
 * Targets on a 2-core machine: appends >= 10,000/s with p99 <= 100 ms; batched >= 50,000
 * entries/s; tile GETs >= half of nginx.
 */
import { formatIndexPath } from '../src/tiles/layout.js';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

// ---- autocannon, typed for what we use ----

interface ACRequest {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  setupRequest?: (req: ACRequest, context: Record<string, unknown>) => ACRequest;
}
interface ACOptions {
  url: string;
  connections: number;
  duration: number;
  pipelining?: number;
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  requests?: ACRequest[];
  timeout?: number;
}
interface ACHisto {
  average: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  total: number;
}
interface ACResult {
  requests: ACHisto & { sent: number };
  latency: ACHisto;
  throughput: ACHisto;
  errors: number;
  timeouts: number;
  non2xx: number;
  duration: number;
  '2xx': number;
  statusCodeStats?: Record<string, { count: number }>;
}
const autocannon = createRequire(import.meta.url)('autocannon') as (o: ACOptions) => Promise<ACResult>;

// ---- options ----

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    batch: { type: 'string', default: '1000' },
    'batch-connections': { type: 'string', default: '8' },
    'tile-connections': { type: 'string', default: '64' },
    dir: { type: 'string', default: os.tmpdir() },
    'cpu-prof': { type: 'string' },
    'no-nginx': { type: 'boolean', default: false },
    'only': { type: 'string' },
  },
});
const DURATION = Number(values.duration);
const BATCH = Number(values.batch);
const here = path.dirname(fileURLToPath(import.meta.url));
const bin = path.resolve(here, '../src/cli/main.js');
const only = values.only ? new Set(values.only.split(',')) : null;
const want = (what: string) => !only || only.has(what);

// ---- helpers ----

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function rssOf(pid: number): { rssMiB: number; peakMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+([0-9]+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMiB: kb('VmRSS') / 1024, peakMiB: kb('VmHWM') / 1024 };
}

async function startServer(cwd: string): Promise<{ child: ChildProcess; url: string }> {
  const nodeArgs = values['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(values['cpu-prof'])}`] : [];
  const child = spawn(process.execPath, [...nodeArgs, bin, 'serve', '--listen', '127.0.0.1:0'], {
    cwd,
    env: { ...process.env, TLOG_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'inherit', 'pipe'],
  });
  let err = '';
  const port = await new Promise<number>((resolve, reject) => {
    child.stderr!.on('data', (d) => {
      err += d;
      const m = /listening on http:\/\/[^\s]+:([0-9]+)/.exec(err);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (code) => reject(new Error(`server exited (${code}) before listening:\n${err}`)));
  });
  child.stderr!.on('data', (d) => process.stderr.write(`[server] ${d}`));
  return { child, url: `http://127.0.0.1:${port}` };
}

/** Clock ticks per second of /proc/<pid>/stat times (`getconf CLK_TCK`, 100 on Linux nearly always). */
const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU seconds (user + system, all threads) a process has used, from /proc/<pid>/stat. */
function cpuSecondsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after "(comm)", which may itself hold spaces: state is field 3, utime 14, stime 15.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

/**
 * Starts measuring the CPU of the server and of this process (autocannon runs in it) over a run.
 * On this 2-core machine the load generator takes most of a core: when server + bench come near
 * 200%, the machine, not the server, is the limit.
 */
function cpuMeter(serverPid: number): (requests: number) => { text: string; serverPct: number; benchPct: number } {
  const t0 = performance.now();
  const s0 = cpuSecondsOf(serverPid);
  const b0 = process.cpuUsage();
  return (requests) => {
    const wall = (performance.now() - t0) / 1000;
    const server = cpuSecondsOf(serverPid) - s0;
    const b = process.cpuUsage(b0);
    const bench = (b.user + b.system) / 1e6;
    const serverPct = (server / wall) * 100;
    const benchPct = (bench / wall) * 100;
    const per = requests > 0 ? `, ${fmt((server / requests) * 1e6)} us server CPU per request` : '';
    return { serverPct, benchPct, text: `CPU: server ${fmt(serverPct)}%, bench (autocannon) ${fmt(benchPct)}% of ${os.cpus().length * 100}%${per}` };
  };
}

function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

function statusSummary(r: ACResult): string {
  const parts = [`2xx ${r['2xx']}`];
  if (r.non2xx) parts.push(`non-2xx ${r.non2xx}${r.statusCodeStats ? ` ${JSON.stringify(Object.fromEntries(Object.entries(r.statusCodeStats).map(([k, v]) => [k, v.count])))}` : ''}`);
  if (r.errors) parts.push(`errors ${r.errors}`);
  if (r.timeouts) parts.push(`timeouts ${r.timeouts}`);
  return parts.join(', ');
}

/** Entry bytes distinct across the whole run: a run tag, a counter, and padding to ~64 bytes. */
let entryCounter = 0;
const RUN = Math.random().toString(36).slice(2, 10);
function nextEntry(): Buffer {
  const s = `bench ${RUN} ${entryCounter++} `;
  return Buffer.from(s.padEnd(64, '.'));
}

function bundleOf(n: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const e = nextEntry();
    const len = Buffer.allocUnsafe(2);
    len.writeUInt16BE(e.length);
    parts.push(len, e);
  }
  return Buffer.concat(parts);
}

/** Sums and counts of the engine's histograms, scraped from /metrics, to say where batch time goes. */
type EngineStats = Record<'entries' | 'integration' | 'write' | 'commit', { sum: number; count: number }>;
async function engineStats(url: string): Promise<EngineStats> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const read = (name: string) => ({
    sum: Number(new RegExp(`^${name}_sum\\{tenant="default"\\} (\\S+)$`, 'm').exec(text)?.[1] ?? 0),
    count: Number(new RegExp(`^${name}_count\\{tenant="default"\\} (\\S+)$`, 'm').exec(text)?.[1] ?? 0),
  });
  return { entries: read('tlog_batch_entries'), integration: read('tlog_integration_seconds'), write: read('tlog_batch_write_seconds'), commit: read('tlog_commit_seconds') };
}
function describeBatches(a: EngineStats, b: EngineStats, seconds: number): string {
  const n = b.entries.count - a.entries.count;
  if (n === 0) return 'no batches';
  const per = (k: keyof EngineStats) => ((b[k].sum - a[k].sum) / n) * 1000;
  return `engine: ${fmt(n / seconds, 1)} batches/s of ${fmt((b.entries.sum - a.entries.sum) / n, 1)} entries; per batch ${fmt(per('integration'), 1)} ms from take to answer, of which ${fmt(per('write'), 1)} ms writing tiles/bundles and the journal record and ${fmt(per('commit'), 2)} ms moving the commit point`;
}

interface Row {
  what: string;
  value: string;
  target?: string;
  ok?: boolean;
}
const rows: Row[] = [];

async function appends(url: string, pid: number, connections: number): Promise<ACResult> {
  const before = await engineStats(url);
  const cpu = cpuMeter(pid);
  const r = await autocannon({
    url,
    connections,
    duration: DURATION,
    timeout: 30,
    requests: [
      {
        method: 'POST',
        path: '/default/append',
        headers: { 'content-type': 'application/octet-stream' },
        setupRequest: (req) => ({ ...req, body: nextEntry() }),
      },
    ],
  });
  const used = cpu(r.requests.total);
  const okPerSec = r['2xx'] / r.duration;
  console.log(
    `appends, ${connections} connections: ${fmt(okPerSec)}/s  p50 ${fmt(r.latency.p50, 1)} ms  p99 ${fmt(r.latency.p99, 1)} ms  max ${fmt(r.latency.max)} ms  (${statusSummary(r)})  ${used.text}`,
  );
  console.log(`  ${describeBatches(before, await engineStats(url), r.duration)}`);
  rows.push({ what: `appends/s @${connections} conns`, value: fmt(okPerSec), target: '>= 10,000', ok: okPerSec >= 10_000 && r.non2xx === 0 });
  rows.push({ what: `append p50 / p99 @${connections}`, value: `${fmt(r.latency.p50, 1)} / ${fmt(r.latency.p99, 1)} ms`, target: 'p99 <= 100 ms', ok: r.latency.p99 <= 100 });
  rows.push({ what: `CPU server / bench @${connections}`, value: `${fmt(used.serverPct)}% / ${fmt(used.benchPct)}%` });
  return r;
}

async function batches(url: string, pid: number): Promise<void> {
  const connections = Number(values['batch-connections']);
  const before = await engineStats(url);
  const cpu = cpuMeter(pid);
  const r = await autocannon({
    url,
    connections,
    duration: DURATION,
    timeout: 60,
    requests: [
      {
        method: 'POST',
        path: '/default/append-batch',
        headers: { 'content-type': 'application/octet-stream' },
        setupRequest: (req) => ({ ...req, body: bundleOf(BATCH) }),
      },
    ],
  });
  const used = cpu(0);
  const perSec = (r['2xx'] * BATCH) / r.duration;
  console.log(
    `append-batch of ${BATCH}, ${connections} connections: ${fmt(perSec)} entries/s (${fmt(r['2xx'] / r.duration, 1)} requests/s, p50 ${fmt(r.latency.p50)} ms, p99 ${fmt(r.latency.p99)} ms; ${statusSummary(r)})  ${used.text}`,
  );
  console.log(`  ${describeBatches(before, await engineStats(url), r.duration)}`);
  rows.push({ what: `batched entries/s (${BATCH}/req)`, value: fmt(perSec), target: '>= 50,000', ok: perSec >= 50_000 && r.non2xx === 0 });
}

/** Existing tile and bundle paths of tenant default, full ones, for the tile GET runs. */
function tilePaths(treeSize: number): string[] {
  const fmtN = formatIndexPath;
  const out: string[] = [];
  const full0 = Math.floor(treeSize / 256);
  for (let i = 0; i < Math.min(full0, 512); i++) out.push(`/default/tile/0/${fmtN(i)}`, `/default/tile/entries/${fmtN(i)}`);
  for (let i = 0; i < Math.floor(treeSize / 65536); i++) out.push(`/default/tile/1/${fmtN(i)}`);
  return out;
}

async function tileGets(url: string, paths: string[], who: string): Promise<number> {
  let i = 0;
  const r = await autocannon({
    url,
    connections: Number(values['tile-connections']),
    duration: DURATION,
    requests: [{ method: 'GET', setupRequest: (req) => ({ ...req, path: paths[i++ % paths.length]! }) }],
  });
  const perSec = r['2xx'] / r.duration;
  console.log(`tile GETs from ${who}: ${fmt(perSec)}/s  p50 ${fmt(r.latency.p50, 1)} ms  p99 ${fmt(r.latency.p99, 1)} ms  ${fmt(r.throughput.average / 1048576, 1)} MiB/s (${statusSummary(r)})`);
  return r.non2xx ? 0 : perSec;
}

async function startNginx(root: string, tmp: string): Promise<{ child: ChildProcess; url: string } | null> {
  const nginx = ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p));
  if (!nginx) {
    console.log('nginx: NOT INSTALLED, so no comparison. Install it with: apt-get update && apt-get install -y nginx');
    return null;
  }
  const port = await freePort();
  const prefix = path.join(tmp, 'nginx');
  for (const d of ['', 'logs', 'tmp']) mkdirSync(path.join(prefix, d), { recursive: true });
  const conf = path.join(prefix, 'nginx.conf');
  writeFileSync(
    conf,
    `${process.getuid?.() === 0 ? 'user root;\n' : ''}daemon off;
worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  keepalive_timeout 65;
  default_type application/octet-stream;
  client_body_temp_path ${prefix}/tmp/body;
  proxy_temp_path ${prefix}/tmp/proxy;
  fastcgi_temp_path ${prefix}/tmp/fastcgi;
  uwsgi_temp_path ${prefix}/tmp/uwsgi;
  scgi_temp_path ${prefix}/tmp/scgi;
  open_file_cache max=10000 inactive=60s;
  server {
    listen 127.0.0.1:${port};
    root ${root};
    location / {
      add_header Cache-Control "public, max-age=604800, immutable";
      add_header Access-Control-Allow-Origin "*";
    }
  }
}
`,
  );
  const child = spawn(nginx, ['-p', prefix, '-c', conf], { stdio: ['ignore', 'inherit', 'inherit'] });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try {
      const r = await fetch(`${url}/default/checkpoint`);
      await r.arrayBuffer();
      if (r.status === 200) return { child, url };
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  console.log(`nginx: did not come up (see ${prefix}/logs/error.log)`);
  return null;
}

/**
 * Fills the log to two level-1 tiles if needed, then reads full tiles and bundles from us and from
 * nginx, alternating twice and keeping each one's better run (the machine may be shared).
 */
async function tileRuns(url: string, tmp: string): Promise<void> {
  let size = Number((await (await fetch(`${url}/default/checkpoint`)).text()).split('\n')[1]);
  for (let need = 65536 * 2 - size; need > 0; need -= 50_000) {
    const r = await fetch(`${url}/default/append-batch`, { method: 'POST', body: new Uint8Array(bundleOf(Math.min(need, 50_000))), headers: { 'content-type': 'application/octet-stream' } });
    if (r.status !== 200) throw new Error(`filling the log: HTTP ${r.status} ${await r.text()}`);
    await r.arrayBuffer();
  }
  size = Number((await (await fetch(`${url}/default/checkpoint`)).text()).split('\n')[1]);
  const paths = tilePaths(size);
  console.log(`tree size ${fmt(size)}; tile runs rotate over ${paths.length} full tiles and bundles (no gzip asked)`);
  const ng = values['no-nginx'] ? null : await startNginx(path.join(tmp, 'tiles'), tmp);
  try {
    let ours = 0;
    let theirs = 0;
    for (let round = 0; round < (ng ? 2 : 1); round++) {
      ours = Math.max(ours, await tileGets(url, paths, 'our service'));
      if (ng) theirs = Math.max(theirs, await tileGets(ng.url, paths, 'nginx (1 worker)'));
    }
    rows.push({ what: 'tile GETs/s ours (best of runs)', value: fmt(ours) });
    if (ng) {
      const ratio = ours / theirs;
      console.log(`tile GET ratio ours/nginx: ${fmt(ratio, 2)}`);
      rows.push({ what: 'tile GETs/s nginx (1 worker)', value: fmt(theirs) });
      rows.push({ what: 'tile GETs ratio ours/nginx', value: fmt(ratio, 2), target: '>= 0.5', ok: ratio >= 0.5 });
    } else {
      rows.push({ what: 'tile GETs ratio ours/nginx', value: 'n/a (nginx missing)', target: '>= 0.5', ok: false });
    }
  } finally {
    ng?.child.kill('SIGQUIT');
  }
}

async function main(): Promise<void> {
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run npm run build first`);
  const tmp = mkdtempSync(path.join(values.dir!, 'tlog-bench-http-'));
  const load = () => os.loadavg().map((x) => x.toFixed(2)).join(' ');
  console.log(`bench/http: node ${process.version}, ${os.cpus().length} cpus (${os.cpus()[0]?.model ?? '?'}), ${DURATION} s per run, data in ${tmp}; load average ${load()}`);
  const { child, url } = await startServer(tmp);
  const pid = child.pid!;
  const stopServer = async () => {
    if (child.exitCode !== null) return;
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  };
  try {
    console.log(`server pid ${pid} at ${url}; RSS at start ${fmt(rssOf(pid).rssMiB, 1)} MiB`);
    // Warm up the JIT and the log's first tiles.
    await autocannon({ url, connections: 16, duration: 2, requests: [{ method: 'POST', path: '/default/append', setupRequest: (req) => ({ ...req, body: nextEntry() }) }] });

    if (want('append')) {
      await appends(url, pid, 64);
      await appends(url, pid, 256);
    }
    if (want('batch')) await batches(url, pid);

    // Make sure there are enough full tiles to read, then read them.
    if (want('tiles')) await tileRuns(url, tmp);
    const mem = rssOf(pid);
    console.log(`server RSS ${fmt(mem.rssMiB, 1)} MiB, peak ${fmt(mem.peakMiB, 1)} MiB`);
    rows.push({ what: 'server RSS now / peak', value: `${fmt(mem.rssMiB, 1)} / ${fmt(mem.peakMiB, 1)} MiB` });
  } finally {
    await stopServer();
    if (values['cpu-prof']) console.log(`CPU profile of the server written to ${path.resolve(values['cpu-prof'])}`);
    rmSync(tmp, { recursive: true, force: true });
  }

  console.log(`\nsummary (load average at the end ${load()}: other processes on the machine skew every figure)`);
  const w = Math.max(...rows.map((r) => r.what.length));
  const v = Math.max(...rows.map((r) => r.value.length));
  for (const r of rows) {
    const verdict = r.ok === undefined ? '' : `${r.ok ? 'MET   ' : 'MISSED'} target ${r.target}`;
    console.log(`  ${r.what.padEnd(w)}  ${r.value.padStart(v)}  ${verdict}`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
