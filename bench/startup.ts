/**
 * bench/startup: how soon `tlog serve --config` with many tenants answers on its port, and how
 * soon every tenant is open (answers 200), from the moment the process is spawned; then the size
 * of a /metrics scrape (admin token) with every tenant holding entries.
 *
 *   npm run build && node dist/bench/startup.js [--tenants 100] [--entries 0] [--runs 3] [--dir D] [--copies yes|no]
 *                                               [--poll healthz|tenants] [--bin other/dist/src/cli/main.js]
 *
 * The tenants are made (and filled with --entries 64-byte entries each, through the engine) once
 * in --dir (default: a temporary directory, removed at the end); a --dir that already holds a
 * tlog.yaml of the same shape is reused, so a large set is filled only once. Each run restarts
 * the service on the same files (warm page cache after the first).
 *
 * Targets: the port answers within 1 s; 100 tenants of 1M entries each are ready within 5 s.
 * The test suite checks the behaviour (503 + Retry-After for a tenant still opening, 200 for an
 * open one); the times are measured here, since a test must not assert wall-clock bounds.
 */
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { hashToken } from '../src/http/auth.js';
import { silentLogger } from '../src/log/log.js';
import { logPaths } from '../src/tile-store/paths.js';
import { initLog } from '../src/tenants/registry.js';
import { fmt, loadAverage } from './lib/format.js';
import { cpuSecondsOf } from './lib/procstat.js';
import { freePort, oursBin } from './lib/servers.js';

const { values } = parseArgs({
  options: {
    tenants: { type: 'string', default: '100' },
    entries: { type: 'string', default: '0' },
    runs: { type: 'string', default: '3' },
    dir: { type: 'string' },
    copies: { type: 'string' },
    poll: { type: 'string', default: 'healthz' },
    bin: { type: 'string' },
  },
});
const TENANTS = Number(values.tenants);
const ENTRIES = Number(values.entries);
const RUNS = Number(values.runs);
/** How readiness is watched: /healthz every 20 ms (default), or every tenant's checkpoint every 50 ms. */
const POLL = values.poll === 'tenants' ? 'tenants' : 'healthz';
/** The `tlog` to start: another build's dist/src/cli/main.js (to compare), else this one's. */
const BIN = values.bin ? path.resolve(values.bin) : oursBin;
/** Copies of the first log rather than each one filled (see prepare): the default once there are entries. */
const COPIES = values.copies === undefined ? ENTRIES > 0 && TENANTS > 1 : values.copies !== 'no';
const TOKEN = 'bench-token';
const ADMIN = 'bench-admin';
const names = Array.from({ length: TENANTS }, (_, i) => `t${String(i).padStart(3, '0')}`);

/** One GET (or POST with a body): the status and body, or null when nothing answers. */
function request(port: number, p: string, o: { method?: string; body?: Buffer; token?: string } = {}): Promise<{ status: number; body: string } | null> {
  return new Promise((resolve) => {
    const headers: Record<string, string> = o.token ? { authorization: `Bearer ${o.token}` } : {};
    if (o.body) headers['content-type'] = 'application/octet-stream';
    const req = http.request({ host: '127.0.0.1', port, path: p, method: o.method ?? 'GET', headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', () => resolve(null));
    req.end(o.body);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Makes the configuration and the tenants' logs (with ENTRIES entries each) unless `dir` has them.
 * With --copies (the default once there are entries), only the first log is filled through the
 * engine and the others are byte-for-byte copies of its files (cp, no links: each tenant reads
 * its own files, as it would in production) under their own tenant names. They keep the first
 * one's origin: opening a log does the same work whatever its origin (read the key seeds and
 * the edge tiles, map the index, verify two notes), and the service allows two tenants one
 * origin. Filling 100 logs of 1M entries through the engine would take hours on this machine.
 */
async function prepare(dir: string): Promise<void> {
  const marker = path.join(dir, 'bench-shape.json');
  const shape = JSON.stringify({ tenants: TENANTS, entries: ENTRIES, copies: COPIES });
  if (existsSync(marker) && readFileSync(marker, 'utf8') === shape) {
    console.log(`reusing ${dir} (${TENANTS} tenants, ${fmt(ENTRIES)} entries each${COPIES ? ', copies of the first' : ''})`);
    return;
  }
  const t0 = performance.now();
  const originOf = (n: string) => `bench.example/${COPIES ? names[0]! : n}`;
  const tenants = names.map((n) => ({ name: n, origin: originOf(n), credentials: { tokens: [hashToken(TOKEN)] } }));
  writeFileSync(path.join(dir, 'tlog.json'), JSON.stringify({ listen: '127.0.0.1:0', adminToken: hashToken(ADMIN), tenants }, null, 2));
  const roots = { tilesRoot: path.join(dir, 'tiles'), checkpointsRoot: path.join(dir, 'checkpoints'), stateRoot: path.join(dir, '.tlog') };
  const elapsed = () => `${((performance.now() - t0) / 1000).toFixed(0)} s`;
  for (const [i, n] of names.entries()) {
    if (COPIES && i > 0) {
      const from = logPaths(roots, names[0]!);
      const to = logPaths(roots, n);
      for (const k of ['tilesDir', 'historyDir', 'stateDir'] as const) cpSync(from[k], to[k], { recursive: true, preserveTimestamps: true });
      process.stdout.write(`\rcopied ${i + 1}/${TENANTS} tenants (${elapsed()})`);
      continue;
    }
    const log = await initLog(logPaths(roots, n), originOf(n), { logger: silentLogger });
    for (let done = 0; done < ENTRIES; ) {
      const k = Math.min(16384, ENTRIES - done);
      const batch = Array.from({ length: k }, (_, j) => Buffer.from(`${n} entry ${String(done + j).padStart(50, '0')}`));
      await Promise.all(log.appendMany(batch));
      done += k;
      if (COPIES) process.stdout.write(`\rfilling ${n}: ${fmt(done)} entries (${elapsed()})`);
    }
    await log.close();
    if (ENTRIES > 0) process.stdout.write(`\rmade ${i + 1}/${TENANTS} tenants (${elapsed()})`);
  }
  writeFileSync(marker, shape);
  console.log(
    `\nmade ${TENANTS} tenants of ${fmt(ENTRIES)} entries${COPIES ? ' (copies of the first)' : ''} in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
}

interface RunResult {
  portMs: number;
  firstTenantMs: number;
  allTenantsMs: number;
  status503: number;
  /** CPU seconds the server used (all threads) until every tenant was ready. */
  cpuSeconds: number;
}

async function run(dir: string): Promise<RunResult> {
  const port = await freePort();
  const t0 = performance.now();
  const child = spawn(process.execPath, [BIN, 'serve', '--config', path.join(dir, 'tlog.json'), '--listen', `127.0.0.1:${port}`], {
    cwd: dir,
    env: { ...process.env, TLOG_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  let exited = false;
  const exit = new Promise<void>((r) => child.on('exit', () => ((exited = true), r())));
  try {
    let portMs = NaN;
    while (!exited) {
      if (await request(port, '/healthz')) {
        portMs = performance.now() - t0;
        break;
      }
      await sleep(5);
    }
    if (exited) throw new Error(`serve exited: ${err}`);
    const ready = new Map<string, number>();
    let status503 = 0;
    if (POLL === 'healthz') {
      // /healthz every 20 ms: a tenant is ready from the first answer that lists it (it lists
      // the open tenants), all of them once none is opening. Then each answers 200 (untimed).
      for (;;) {
        const r = await request(port, '/healthz');
        if (exited) break;
        const at = performance.now() - t0;
        const h = r ? (JSON.parse(r.body) as { openingCount: number; tenants: Record<string, unknown> }) : null;
        for (const n of Object.keys(h?.tenants ?? {})) if (!ready.has(n)) ready.set(n, at);
        if (h && h.openingCount === 0 && names.every((n) => ready.has(n))) break;
        await sleep(20);
      }
      for (const n of names) {
        const r = await request(port, `/${n}/checkpoint`);
        if (r?.status !== 200) throw new Error(`${n} listed as open by /healthz answers ${r?.status}`);
      }
    }
    // Or every tenant polled at once, each every 50 ms until it answers 200 (2,000 requests a
    // second for 100 tenants, which load the server they wait for).
    await Promise.all(
      (POLL === 'healthz' ? [] : names).map(async (n) => {
        while (!exited) {
          const r = await request(port, `/${n}/checkpoint`);
          if (r?.status === 200) {
            ready.set(n, performance.now() - t0);
            return;
          }
          if (r?.status === 503) status503++;
          await sleep(50);
        }
      }),
    );
    if (exited) throw new Error(`serve exited: ${err}`);
    const cpuSeconds = cpuSecondsOf(child.pid!);
    const times = [...ready.values()];
    return { portMs, firstTenantMs: Math.min(...times), allTenantsMs: Math.max(...times), status503, cpuSeconds };
  } finally {
    child.kill('SIGTERM');
    await exit;
  }
}

/** Appends one entry to every tenant, then scrapes /metrics with the admin token. */
async function scrape(dir: string): Promise<{ series: number; bytes: number; perTenant: number; fixed: number }> {
  const port = await freePort();
  const child = spawn(process.execPath, [BIN, 'serve', '--config', path.join(dir, 'tlog.json'), '--listen', `127.0.0.1:${port}`], {
    cwd: dir,
    env: { ...process.env, TLOG_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exit = new Promise<void>((r) => child.on('exit', () => r()));
  try {
    for (;;) {
      const r = await request(port, `/${names.at(-1)}/checkpoint`);
      if (r?.status === 200) break;
      await sleep(20);
    }
    for (const n of names) {
      const r = await request(port, `/${n}/append`, { method: 'POST', body: Buffer.from(`metrics probe ${Date.now()} ${n}`), token: TOKEN });
      if (r?.status !== 200) throw new Error(`append to ${n}: ${r?.status} ${r?.body}`);
      await request(port, `/${n}/checkpoint`);
    }
    const r = await request(port, '/metrics', { token: ADMIN });
    if (r?.status !== 200) throw new Error(`/metrics: ${r?.status}`);
    const samples = r.body.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    const perTenant = samples.filter((l) => /[{,]tenant="t[0-9]{3}"/.test(l)).length;
    return { series: samples.length, bytes: Buffer.byteLength(r.body), perTenant, fixed: samples.length - perTenant };
  } finally {
    child.kill('SIGTERM');
    await exit;
  }
}

const dir = values.dir ? path.resolve(values.dir) : mkdtempSync(path.join(os.tmpdir(), 'tlog-bench-startup-'));
try {
  console.log(`load average before: ${loadAverage()}`);
  await prepare(dir);
  const results: RunResult[] = [];
  for (let i = 0; i < RUNS; i++) {
    const r = await run(dir);
    results.push(r);
    console.log(
      `run ${i + 1}: port answers after ${fmt(r.portMs)} ms, first tenant ready after ${fmt(r.firstTenantMs)} ms, all ${TENANTS} after ${fmt(r.allTenantsMs)} ms, ${fmt(r.cpuSeconds, 1)} s of server CPU by then` +
        `${POLL === 'tenants' ? ` (${r.status503} answers 503 meanwhile)` : ''} (load ${loadAverage()})`,
    );
  }
  const m = await scrape(dir);
  console.log(
    `/metrics with the admin token, ${TENANTS} tenants each with entries: ${fmt(m.series)} series (${fmt(m.perTenant)} with a tenant label, ${fmt(m.perTenant / TENANTS, 1)} per tenant; ${fmt(m.fixed)} without), ${fmt(m.bytes / 1024, 1)} KiB`,
  );
  const range = (k: keyof RunResult, digits = 0) =>
    `${fmt(Math.min(...results.map((r) => r[k])), digits)}-${fmt(Math.max(...results.map((r) => r[k])), digits)}`;
  console.log(
    `\n${TENANTS} tenants x ${fmt(ENTRIES)} entries, ${RUNS} runs: port ${range('portMs')} ms, all tenants ready ${range('allTenantsMs')} ms, server CPU by then ${range('cpuSeconds', 1)} s`,
  );
} finally {
  if (!values.dir) rmSync(dir, { recursive: true, force: true });
}
