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
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { autocannon, postBodies, statusSummary, type ACResult } from './lib/autocannon.js';
import { bundleOf, nextEntry } from './lib/entries.js';
import { fmt, loadAverage } from './lib/format.js';
import { startNginx } from './lib/nginx.js';
import { cpuMeter, rssOf } from './lib/procstat.js';
import { startOurs } from './lib/servers.js';

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
    only: { type: 'string' },
  },
});
const DURATION = Number(values.duration);
const BATCH = Number(values.batch);
const only = values.only ? new Set(values.only.split(',')) : null;
const want = (what: string) => !only || only.has(what);

/** Sums and counts of the engine's histograms, scraped from /metrics, to say where batch time goes. */
type EngineStats = Record<'entries' | 'integration' | 'write' | 'commit', { sum: number; count: number }>;
async function engineStats(url: string): Promise<EngineStats> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const read = (name: string) => ({
    sum: Number(new RegExp(`^${name}_sum (\\S+)$`, 'm').exec(text)?.[1] ?? 0),
    count: Number(new RegExp(`^${name}_count (\\S+)$`, 'm').exec(text)?.[1] ?? 0),
  });
  return {
    entries: read('tlog_batch_entries'),
    integration: read('tlog_integration_seconds'),
    write: read('tlog_batch_write_seconds'),
    commit: read('tlog_commit_seconds'),
  };
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
  const r = await postBodies(url, '/default/append', connections, DURATION, nextEntry, 30);
  const used = cpu(r.requests.total);
  const okPerSec = r['2xx'] / r.duration;
  console.log(
    `appends, ${connections} connections: ${fmt(okPerSec)}/s  p50 ${fmt(r.latency.p50, 1)} ms  p99 ${fmt(r.latency.p99, 1)} ms  max ${fmt(r.latency.max)} ms  (${statusSummary(r)})  ${used.text}`,
  );
  console.log(`  ${describeBatches(before, await engineStats(url), r.duration)}`);
  rows.push({ what: `appends/s @${connections} conns`, value: fmt(okPerSec), target: '>= 10,000', ok: okPerSec >= 10_000 && r.non2xx === 0 });
  rows.push({
    what: `append p50 / p99 @${connections}`,
    value: `${fmt(r.latency.p50, 1)} / ${fmt(r.latency.p99, 1)} ms`,
    target: 'p99 <= 100 ms',
    ok: r.latency.p99 <= 100,
  });
  rows.push({ what: `CPU server / bench @${connections}`, value: `${fmt(used.serverPct)}% / ${fmt(used.benchPct)}%` });
  return r;
}

async function batches(url: string, pid: number): Promise<void> {
  const connections = Number(values['batch-connections']);
  const before = await engineStats(url);
  const cpu = cpuMeter(pid);
  const r = await postBodies(url, '/default/append-batch', connections, DURATION, () => bundleOf(BATCH));
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
  console.log(
    `tile GETs from ${who}: ${fmt(perSec)}/s  p50 ${fmt(r.latency.p50, 1)} ms  p99 ${fmt(r.latency.p99, 1)} ms  ${fmt(r.throughput.average / 1048576, 1)} MiB/s (${statusSummary(r)})`,
  );
  return r.non2xx ? 0 : perSec;
}

/**
 * Fills the log to two level-1 tiles if needed, then reads full tiles and bundles from us and from
 * nginx, alternating twice and keeping each one's better run (the machine may be shared).
 */
async function tileRuns(url: string, tmp: string): Promise<void> {
  let size = Number((await (await fetch(`${url}/default/checkpoint`)).text()).split('\n')[1]);
  for (let need = 65536 * 2 - size; need > 0; need -= 50_000) {
    const r = await fetch(`${url}/default/append-batch`, {
      method: 'POST',
      body: new Uint8Array(bundleOf(Math.min(need, 50_000))),
      headers: { 'content-type': 'application/octet-stream' },
    });
    if (r.status !== 200) throw new Error(`filling the log: HTTP ${r.status} ${await r.text()}`);
    await r.arrayBuffer();
  }
  size = Number((await (await fetch(`${url}/default/checkpoint`)).text()).split('\n')[1]);
  const paths = tilePaths(size);
  console.log(`tree size ${fmt(size)}; tile runs rotate over ${paths.length} full tiles and bundles (no gzip asked)`);
  const ng = values['no-nginx'] ? null : await startNginx(path.join(tmp, 'tiles'), tmp, '/default/checkpoint');
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
    ng?.stop();
  }
}

async function main(): Promise<void> {
  const tmp = mkdtempSync(path.join(values.dir!, 'tlog-bench-http-'));
  console.log(
    `bench/http: node ${process.version}, ${os.cpus().length} cpus (${os.cpus()[0]?.model ?? '?'}), ${DURATION} s per run, data in ${tmp}; load average ${loadAverage()}`,
  );
  const server = await startOurs(tmp, { cpuProfDir: values['cpu-prof'] });
  const { child, url } = server;
  const pid = child.pid!;
  try {
    console.log(`server pid ${pid} at ${url}; RSS at start ${fmt(rssOf(pid).rssMiB, 1)} MiB`);
    // Warm up the JIT and the log's first tiles.
    await autocannon({
      url,
      connections: 16,
      duration: 2,
      requests: [{ method: 'POST', path: '/default/append', setupRequest: (req) => ({ ...req, body: nextEntry() }) }],
    });

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
    await server.stop();
    if (values['cpu-prof']) console.log(`CPU profile of the server written to ${path.resolve(values['cpu-prof'])}`);
    rmSync(tmp, { recursive: true, force: true });
  }

  console.log(`\nsummary (load average at the end ${loadAverage()}: other processes on the machine skew every figure)`);
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
