/**
 * bench/peer: our log next to Tessera's POSIX log on the same machine, same client, same
 * entries (distinct, 64 bytes), in one run:
 *   - ours: `tlog serve` (dist/src/cli/main.js), tenant default;
 *   - tessera-stock: Tessera's conformance server (cmd/conformance/posix of the version
 *     bench/peer/go/go.mod pins): batches of 256 entries or 1 s, a checkpoint every 1 s;
 *   - tessera-tuned: bench/peer/go/main.go, the same routes on Tessera's POSIX driver with
 *     --tuned-batch / --tuned-age / --tuned-checkpoint (default 4096 / 10ms / 100ms).
 * All three take POST .../add (body = entry, answer = its index), so single appends are the same
 * request everywhere. Rounds interleave the servers (each scenario: ours, stock, tuned; then the
 * next scenario) and print the load average before and after; the table at the end shows each
 * figure's range over the rounds and the ratio ours/theirs of the best runs.
 *
 * Scenarios (--only append,latency,bulk,tiles):
 *   append   single appends/s, p50/p99 and server CPU per append at 64 and 256 connections
 *            (--connections), autocannon closed loop, POST /add;
 *   latency  appends at a fixed rate (--rates, default 500 and 2000/s, open loop over at most
 *            --rate-connections keep-alive connections, 512): due -> answer and due -> first
 *            published checkpoint covering the entry (its file watched on disk), p50/p99,
 *            server CPU per append. Ours is driven through POST /append here,
 *            whose answer carries the signed checkpoint; Tessera's /add answers the index only;
 *   bulk     entries/s and server CPU per entry: ours through append-batch (--batch entries per
 *            request, --batch-connections), Tessera through /add at --bulk-connections (1024),
 *            its only write route;
 *   tiles    full tiles and entry bundles GET/s and CPU per GET at --tile-connections, from each
 *            server's own file serving and from nginx (Debian's, 1 worker) on the same files;
 *            tessera-tuned serves files with the same net/http FileServer as stock, so it is
 *            left out unless --tuned-tiles.
 * Server CPU comes from /proc/<pid>/stat; peak RSS (VmHWM) from /proc/<pid>/status at the end.
 *
 *   npm run build && node dist/bench/peer.js [--duration 10] [--rounds 2] [--rates 500,2000]
 *       [--servers ours,stock,tuned] [--only ...] [--cache ~/.cache/tlog-bench] [--dir /tmp]
 *       [--node <another node binary for ours, e.g. the current LTS>]
 *
 * The first run builds both Tessera servers with Go (modules from the Go module proxy) into
 * the cache directory; later runs reuse them.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { formatIndexPath } from '../src/tiles/layout.js';
import { autocannon, postBodies, statusSummary, type ACResult } from './lib/autocannon.js';
import { bundleOf, nextEntry } from './lib/entries.js';
import { CheckpointWatch, fixedRate, percentile, type AnswerParser } from './lib/fixed-rate.js';
import { fmt, loadAverage } from './lib/format.js';
import { startNginx, type Nginx } from './lib/nginx.js';
import { cpuMeter, mainThreadCpuSeconds, rssOf } from './lib/procstat.js';
import { describeFilesystem } from './lib/filesystem.js';
import { startOurs, type Running } from './lib/servers.js';
import { buildTessera, defaultCacheDir, startTessera } from './lib/tessera.js';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '2' },
    connections: { type: 'string', default: '64,256' },
    rates: { type: 'string', default: '500,2000' },
    batch: { type: 'string', default: '1000' },
    'batch-connections': { type: 'string', default: '8' },
    'bulk-connections': { type: 'string', default: '1024' },
    'rate-connections': { type: 'string', default: '512' },
    'tile-connections': { type: 'string', default: '64' },
    'tile-entries': { type: 'string', default: '131072' },
    'tuned-batch': { type: 'string', default: '4096' },
    'tuned-age': { type: 'string', default: '10ms' },
    'tuned-checkpoint': { type: 'string', default: '100ms' },
    'tuned-tiles': { type: 'boolean', default: false },
    servers: { type: 'string', default: 'ours,stock,tuned' },
    only: { type: 'string' },
    'no-nginx': { type: 'boolean', default: false },
    cache: { type: 'string', default: defaultCacheDir() },
    dir: { type: 'string', default: os.tmpdir() },
    keep: { type: 'boolean', default: false },
    node: { type: 'string' },
  },
});
const DURATION = Number(values.duration);
const ROUNDS = Number(values.rounds);
const numbers = (s: string) => s.split(',').map(Number);
const CONNECTIONS = numbers(values.connections!);
const RATES = numbers(values.rates!);
const BATCH = Number(values.batch);
const TILE_ENTRIES = Number(values['tile-entries']);
const only = values.only ? new Set(values.only.split(',')) : null;
const want = (what: string) => !only || only.has(what);
for (const [k, v] of [
  ['duration', DURATION],
  ['rounds', ROUNDS],
  ['batch', BATCH],
  ['tile-entries', TILE_ENTRIES],
] as const) {
  if (!(v > 0)) throw new Error(`--${k} must be a positive number`);
}

// ---- the servers ----

type PeerKey = 'ours' | 'stock' | 'tuned';
const TITLES: Record<PeerKey, string> = { ours: 'ours', stock: 'tessera-stock', tuned: 'tessera-tuned' };

interface Peer {
  readonly key: PeerKey;
  readonly server: Running;
  readonly pid: number;
  /** POST path of one entry, answered with its index. */
  readonly addPath: string;
  /** POST path and parser of the fixed-rate runs. */
  readonly ratePath: string;
  readonly parseRate: AnswerParser;
  /** URL path prefix of checkpoint and tile/ on the server. */
  readonly prefix: string;
  /** The served directory relative to the bench's work directory, which nginx serves. */
  readonly filesPath: string;
  readonly checkpointFile: string;
}

const oursAnswer: AnswerParser = (body) => {
  const a = JSON.parse(body) as { index: number; treeSize: number };
  return { index: a.index, checkpointSize: a.treeSize };
};
const indexAnswer: AnswerParser = (body) => ({ index: Number(body) });

async function startPeers(keys: PeerKey[], tmp: string): Promise<Peer[]> {
  const peers: Peer[] = [];
  const bins = keys.some((k) => k !== 'ours') ? buildTessera(values.cache!) : null;
  if (bins) console.log(`Tessera ${bins.version}: ${bins.stock}, ${bins.tuned}`);
  for (const key of keys) {
    const work = path.join(tmp, key);
    mkdirSync(work, { recursive: true });
    if (key === 'ours') {
      const server = await startOurs(work, { node: values.node });
      peers.push({
        key,
        server,
        pid: server.child.pid!,
        addPath: '/default/add',
        ratePath: '/default/append',
        parseRate: oursAnswer,
        prefix: '/default',
        filesPath: `/${key}/tiles/default`,
        checkpointFile: path.join(work, 'tiles/default/checkpoint'),
      });
    } else {
      const tuning =
        key === 'tuned'
          ? { batchSize: Number(values['tuned-batch']), batchAge: values['tuned-age']!, checkpointInterval: values['tuned-checkpoint']! }
          : undefined;
      const server = await startTessera(bins!, work, `bench.example/tessera-${key}`, tuning);
      peers.push({
        key,
        server,
        pid: server.child.pid!,
        addPath: '/add',
        ratePath: '/add',
        parseRate: indexAnswer,
        prefix: '',
        filesPath: `/${key}/log`,
        checkpointFile: server.checkpointFile,
      });
    }
    const p = peers[peers.length - 1]!;
    console.log(`${TITLES[key].padEnd(13)} pid ${p.pid} at ${p.server.url}; RSS at start ${fmt(rssOf(p.pid).rssMiB, 1)} MiB`);
  }
  return peers;
}

// ---- results ----

interface Metric {
  readonly label: string;
  readonly higherIsBetter: boolean;
  readonly digits: number;
}
const metrics = new Map<string, Metric>();
const results = new Map<string, Map<PeerKey, number[]>>();

function record(id: string, m: Metric, peer: PeerKey, value: number): void {
  if (!Number.isFinite(value)) return;
  if (!metrics.has(id)) metrics.set(id, m);
  let per = results.get(id);
  if (!per) results.set(id, (per = new Map()));
  (per.get(peer) ?? per.set(peer, []).get(peer)!).push(value);
}
const perSecond = (label: string): Metric => ({ label, higherIsBetter: true, digits: 0 });
const cost = (label: string, digits = 0): Metric => ({ label, higherIsBetter: false, digits });

const line = (peer: Peer, what: string, text: string) => console.log(`  ${TITLES[peer.key].padEnd(13)} ${what}: ${text}  [load ${loadAverage()}]`);

// ---- scenarios ----

async function appendsAt(peer: Peer, connections: number): Promise<void> {
  const cpu = cpuMeter(peer.pid);
  // Ours only: node's event-loop thread, where every request is parsed and answered, is what
  // bounds a closed loop of many connections (Go's runtime spreads Tessera over its threads).
  const loop0 = peer.key === 'ours' ? mainThreadCpuSeconds(peer.pid) : NaN;
  const r = await postBodies(peer.server.url, peer.addPath, connections, DURATION, nextEntry, 30);
  const used = cpu(r['2xx'], 'append');
  const loopSeconds = mainThreadCpuSeconds(peer.pid) - loop0;
  const loopUs = (loopSeconds / r['2xx']) * 1e6;
  const loopBusy = (loopSeconds / r.duration) * 100;
  const okPerSec = r['2xx'] / r.duration;
  const loopText = Number.isFinite(loopUs) ? `; event-loop thread ${fmt(loopUs)} us an append, busy ${fmt(loopBusy)}%` : '';
  line(
    peer,
    `appends @${connections}`,
    `${fmt(okPerSec)}/s  p50 ${fmt(r.latency.p50)} ms  p99 ${fmt(r.latency.p99)} ms  (${statusSummary(r)})  ${used.text}${loopText}`,
  );
  if (r.non2xx || r.errors) return; // a figure with refusals in it compares nothing
  record(`append/s@${connections}`, perSecond(`single appends/s, ${connections} connections`), peer.key, okPerSec);
  record(`append p50@${connections}`, cost(`  p50 ms, ${connections} connections`), peer.key, r.latency.p50);
  record(`append p99@${connections}`, cost(`  p99 ms, ${connections} connections`), peer.key, r.latency.p99);
  record(`append cpu@${connections}`, cost(`  server CPU us per append, ${connections} connections`), peer.key, used.perUs);
  record(`append loop@${connections}`, cost(`    of it on node's event-loop thread (ours)`), peer.key, loopUs);
  record(`append loop busy@${connections}`, cost(`    event-loop thread busy, % of the run (ours)`), peer.key, loopBusy);
}

async function atRate(peer: Peer, rate: number): Promise<void> {
  const cpu = cpuMeter(peer.pid);
  const r = await fixedRate({
    url: peer.server.url,
    urlPath: peer.ratePath,
    rate,
    seconds: DURATION,
    connections: Number(values['rate-connections']),
    checkpointFile: peer.checkpointFile,
    parse: peer.parseRate,
  });
  const used = cpu(r.answered, 'append');
  const ms = (xs: number[]) => `p50 ${fmt(percentile(xs, 50), 1)} / p99 ${fmt(percentile(xs, 99), 1)} ms`;
  const problems = [
    r.failed && `${r.failed} failed ${JSON.stringify(r.failures)}`,
    r.neverPublished && `${r.neverPublished} never in a published checkpoint`,
    r.answerNotCovering && `${r.answerNotCovering} answers with a checkpoint not covering them`,
  ].filter(Boolean);
  line(
    peer,
    `${rate}/s fixed rate`,
    `${r.answered}/${r.sent} answered in ${fmt(r.seconds, 1)} s; answer ${ms(r.answerMs)}${peer.key === 'ours' ? ' (carries the signed checkpoint)' : ' (index only)'}; published checkpoint ${ms(r.publishedMs)}; sent late p99 ${fmt(r.lagP99Ms, 1)} ms; ${used.text}${problems.length ? `  PROBLEMS: ${problems.join(', ')}` : ''}`,
  );
  if (problems.length) return;
  record(`pub p50@${rate}`, cost(`append -> published checkpoint at ${rate}/s, p50 ms`, 1), peer.key, percentile(r.publishedMs, 50));
  record(`pub p99@${rate}`, cost(`append -> published checkpoint at ${rate}/s, p99 ms`, 1), peer.key, percentile(r.publishedMs, 99));
  record(`ans p50@${rate}`, cost(`  answer at ${rate}/s, p50 ms (ours: with checkpoint; Tessera: index)`, 1), peer.key, percentile(r.answerMs, 50));
  record(`ans p99@${rate}`, cost(`  answer at ${rate}/s, p99 ms`, 1), peer.key, percentile(r.answerMs, 99));
  record(`rate cpu@${rate}`, cost(`server CPU us per append at a steady ${rate}/s`), peer.key, used.perUs);
}

async function bulk(peer: Peer): Promise<void> {
  const cpu = cpuMeter(peer.pid);
  let r: ACResult;
  let entries: number;
  let how: string;
  if (peer.key === 'ours') {
    const connections = Number(values['batch-connections']);
    r = await postBodies(peer.server.url, '/default/append-batch', connections, DURATION, () => bundleOf(BATCH));
    entries = r['2xx'] * BATCH;
    how = `append-batch of ${BATCH}, ${connections} connections`;
  } else {
    const connections = Number(values['bulk-connections']);
    r = await postBodies(peer.server.url, peer.addPath, connections, DURATION, nextEntry);
    entries = r['2xx'];
    how = `/add, ${connections} connections`;
  }
  const used = cpu(entries, 'entry');
  const perSec = entries / r.duration;
  line(peer, `bulk (${how})`, `${fmt(perSec)} entries/s  p50 ${fmt(r.latency.p50)} ms  p99 ${fmt(r.latency.p99)} ms  (${statusSummary(r)})  ${used.text}`);
  if (r.non2xx || r.errors) return;
  record('bulk/s', perSecond(`bulk entries/s (ours: append-batch of ${BATCH}; Tessera: /add at ${values['bulk-connections']} connections)`), peer.key, perSec);
  record('bulk cpu', cost('  server CPU us per bulk entry', 1), peer.key, used.perUs);
}

/** The published tree size, from the checkpoint file. */
function treeSize(peer: Peer): number {
  return Number(readFileSync(peer.checkpointFile, 'utf8').split('\n')[1]);
}

/** Grows a log to TILE_ENTRIES entries (ours through append-batch, Tessera through /add) so every server has the same full tiles. */
async function fill(peer: Peer): Promise<void> {
  const need = TILE_ENTRIES - treeSize(peer);
  if (need <= 0) return;
  console.log(`  ${TITLES[peer.key].padEnd(13)} filling: ${fmt(need)} more entries to ${fmt(TILE_ENTRIES)}`);
  if (peer.key === 'ours') {
    for (let left = need; left > 0; left -= 50_000) {
      const r = await fetch(`${peer.server.url}/default/append-batch`, {
        method: 'POST',
        body: new Uint8Array(bundleOf(Math.min(left, 50_000))),
        headers: { 'content-type': 'application/octet-stream' },
      });
      if (r.status !== 200) throw new Error(`filling ours: HTTP ${r.status} ${await r.text()}`);
      await r.arrayBuffer();
    }
  } else {
    const r = await autocannon({
      url: peer.server.url,
      connections: 256,
      amount: need,
      timeout: 60,
      requests: [{ method: 'POST', path: peer.addPath, setupRequest: (req) => ({ ...req, body: nextEntry() }) }],
    });
    if (r.non2xx || r.errors) throw new Error(`filling ${TITLES[peer.key]}: ${statusSummary(r)}`);
  }
  const cp = new CheckpointWatch(peer.checkpointFile);
  const ok = await cp.waitCovering(TILE_ENTRIES - 1, 60_000);
  cp.close();
  if (!ok) throw new Error(`${TITLES[peer.key]}: no checkpoint of ${TILE_ENTRIES} entries a minute after filling`);
}

/** Full tiles and bundles of the first TILE_ENTRIES entries, under `prefix` (c2sp.org/tlog-tiles paths). */
function tilePaths(prefix: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < Math.min(Math.floor(TILE_ENTRIES / 256), 512); i++)
    out.push(`${prefix}/tile/0/${formatIndexPath(i)}`, `${prefix}/tile/entries/${formatIndexPath(i)}`);
  for (let i = 0; i < Math.floor(TILE_ENTRIES / 65536); i++) out.push(`${prefix}/tile/1/${formatIndexPath(i)}`);
  return out;
}

async function tileGets(url: string, paths: string[], pid: number): Promise<{ r: ACResult; perSec: number; cpuUs: number }> {
  let i = 0;
  const cpu = cpuMeter(pid);
  const r = await autocannon({
    url,
    connections: Number(values['tile-connections']),
    duration: DURATION,
    requests: [{ method: 'GET', setupRequest: (req) => ({ ...req, path: paths[i++ % paths.length]! }) }],
  });
  return { r, perSec: r['2xx'] / r.duration, cpuUs: cpu(r['2xx']).perUs };
}

async function tiles(peer: Peer, ng: Nginx | null): Promise<void> {
  await fill(peer);
  const conns = values['tile-connections'];
  const own = await tileGets(peer.server.url, tilePaths(peer.prefix), peer.pid);
  line(
    peer,
    'tile GETs, own server',
    `${fmt(own.perSec)}/s  p99 ${fmt(own.r.latency.p99, 1)} ms  ${fmt(own.r.throughput.average / 1048576, 1)} MiB/s  ${fmt(own.cpuUs)} us CPU per GET (${statusSummary(own.r)})`,
  );
  if (!own.r.non2xx && !own.r.errors) {
    record('tiles/s', perSecond(`full-tile GETs/s, ${conns} connections`), peer.key, own.perSec);
    record('tiles cpu', cost('  server CPU us per GET'), peer.key, own.cpuUs);
  }
  if (!ng) return;
  const other = await tileGets(ng.url, tilePaths(peer.filesPath), ng.child.pid!);
  line(
    peer,
    'tile GETs, nginx on its files',
    `${fmt(other.perSec)}/s  p99 ${fmt(other.r.latency.p99, 1)} ms  ${fmt(other.cpuUs)} us nginx CPU per GET (${statusSummary(other.r)})`,
  );
  if (!other.r.non2xx && !other.r.errors) {
    record('nginx tiles/s', perSecond(`  nginx (1 worker) on its files: full-tile GETs/s`), peer.key, other.perSec);
    record('nginx tiles cpu', cost('  nginx CPU us per GET'), peer.key, other.cpuUs);
    if (!own.r.non2xx && !own.r.errors)
      record('tiles vs nginx', { label: '  own server / nginx, GETs/s', higherIsBetter: true, digits: 2 }, peer.key, own.perSec / other.perSec);
  }
}

// ---- the table ----

function printTable(peers: Peer[]): void {
  const keys = peers.map((p) => p.key);
  const theirs = keys.filter((k) => k !== 'ours');
  const hasOurs = keys.includes('ours');
  const head = ['figure', ...keys.map((k) => TITLES[k]), ...(hasOurs ? theirs.map((k) => `ours/${k}`) : [])];
  const rows: string[][] = [];
  for (const [id, m] of metrics) {
    const per = results.get(id)!;
    const best = (k: PeerKey) => {
      const xs = per.get(k);
      return xs?.length ? (m.higherIsBetter ? Math.max(...xs) : Math.min(...xs)) : NaN;
    };
    const cell = (k: PeerKey) => {
      const xs = per.get(k);
      if (!xs?.length) return '-';
      const lo = Math.min(...xs);
      const hi = Math.max(...xs);
      return lo === hi || fmt(lo, m.digits) === fmt(hi, m.digits) ? fmt(lo, m.digits) : `${fmt(lo, m.digits)}-${fmt(hi, m.digits)}`;
    };
    const ratio = (k: PeerKey) => {
      const r = best('ours') / best(k);
      return Number.isFinite(r) ? `${fmt(r, 2)}x` : '-';
    };
    rows.push([m.label, ...keys.map(cell), ...(hasOurs ? theirs.map(ratio) : [])]);
  }
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const show = (r: string[]) => `| ${r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  console.log(show(head));
  console.log(`|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`);
  for (const r of rows) console.log(show(r));
  console.log(`\nCells: the range over ${ROUNDS} round(s). Ratios: ours/theirs of each one's best round (highest rate, lowest time, CPU or memory):`);
  console.log('above 1 means ours is higher: better on /s rows, worse on ms, us and MiB rows.');
}

// ---- main ----

async function main(): Promise<void> {
  const keys = values.servers!.split(',') as PeerKey[];
  for (const k of keys) if (!(k in TITLES)) throw new Error(`--servers: unknown server ${k} (want ours, stock, tuned)`);
  const tmp = mkdtempSync(path.join(values.dir!, 'tlog-bench-peer-'));
  console.log(
    `bench/peer: node ${process.version}, ${os.cpus().length} cpus (${os.cpus()[0]?.model ?? '?'}), ${DURATION} s per run, ${ROUNDS} round(s), data in ${tmp}; load average ${loadAverage()}`,
  );
  console.log(`command: node ${path.relative(process.cwd(), process.argv[1]!)} ${process.argv.slice(2).join(' ')}`);
  console.log(
    `ours runs on ${values.node ? `${values.node} (${execFileSync(values.node, ['--version'], { encoding: 'utf8' }).trim()})` : `this node (${process.version})`}`,
  );
  console.log(`files: ${describeFilesystem(tmp)}`);
  console.log(`tessera-tuned: batches of ${values['tuned-batch']} / ${values['tuned-age']}, a checkpoint every ${values['tuned-checkpoint']}`);
  const peers: Peer[] = [];
  let ng: Nginx | null = null;
  try {
    peers.push(...(await startPeers(keys, tmp)));
    // Warm up each server (the JIT, the first tiles) with the same load.
    for (const p of peers) {
      await autocannon({
        url: p.server.url,
        connections: 16,
        duration: 2,
        requests: [{ method: 'POST', path: p.addPath, setupRequest: (req) => ({ ...req, body: nextEntry() }) }],
      });
    }
    const tilePeers = peers.filter((p) => p.key !== 'tuned' || values['tuned-tiles']);
    if (want('tiles') && !values['no-nginx'] && tilePeers.length) ng = await startNginx(tmp, tmp, `${tilePeers[0]!.filesPath}/checkpoint`);

    for (let round = 1; round <= ROUNDS; round++) {
      console.log(`\nround ${round}/${ROUNDS}: load average before ${loadAverage()}`);
      if (want('append')) for (const c of CONNECTIONS) for (const p of peers) await appendsAt(p, c);
      if (want('latency')) for (const rate of RATES) for (const p of peers) await atRate(p, rate);
      if (want('bulk')) for (const p of peers) await bulk(p);
      if (want('tiles')) for (const p of tilePeers) await tiles(p, ng);
      console.log(`round ${round}/${ROUNDS}: load average after ${loadAverage()}`);
    }
    for (const p of peers) {
      const mem = rssOf(p.pid);
      record('rss', cost('peak RSS MiB', 1), p.key, mem.peakMiB);
    }
  } finally {
    ng?.stop();
    for (const p of peers) await p.server.stop();
    if (values.keep) console.log(`data kept in ${tmp}`);
    else rmSync(tmp, { recursive: true, force: true });
  }
  console.log(`\nsummary (load average at the end ${loadAverage()}: other processes on the machine skew every figure)\n`);
  printTable(peers);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
