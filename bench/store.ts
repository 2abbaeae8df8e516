/**
 * bench/store: single appends per second and p50/p99 latency at 256 concurrent appenders, a log
 * whose truth is an S3 store (versitygw on loopback, src/cluster/store-log.ts) against the
 * embedded local-files log, interleaved in one run (posix, s3, posix, s3, ...), with the load
 * average. In process: 256 appenders each awaiting its append before the next (as 256 HTTP
 * connections would), on the engine directly, so the figures compare the backends and not HTTP.
 *
 * With --http, each backend is served by its own process (bench/lib/store-serve.ts: the service's
 * HTTP app, as `tlog serve` runs it) and loaded by autocannon (POST /default/append, one
 * distinct entry per request) from this one.
 *
 * With --slices N (in process), both logs stay open and take turns, one second each, N times:
 * on a machine whose load moves by the second, the two backends then meet the same load, and
 * the ratio of the two totals is steadier than that of two runs seconds apart.
 *
 *   npm run build && node dist/bench/store.js [--seconds 10] [--rounds 2] [--connections 256] [--http] [--slices N] [--dir /tmp]
 *
 * Target: S3 at least half the POSIX rate (the store's round trips are per batch).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { openStoreLog, scopedStore } from '../src/cluster/store-log.js';
import type { StorePublished } from '../src/cluster/store-sink.js';
import { createLogKeys } from '../src/log/keys.js';
import { Log } from '../src/log/log.js';
import { S3Store } from '../src/storage/s3-store.js';
import { logPaths, type DataRoots } from '../src/tile-store/paths.js';
import { postBodies } from './lib/autocannon.js';
import { nextEntry } from './lib/entries.js';
import { fmt, loadAverage } from './lib/format.js';
import { startVersitygw } from './lib/versitygw.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '2' },
    connections: { type: 'string', default: '256' },
    dir: { type: 'string', default: os.tmpdir() },
    http: { type: 'boolean', default: false },
    slices: { type: 'string', default: '0' },
  },
});
const SECONDS = Number(values.seconds);
const ROUNDS = Number(values.rounds);
const CONNECTIONS = Number(values.connections);
const ORIGIN = 'bench.example/store';

const dir = mkdtempSync(path.join(values.dir, 'tlog-bench-store-'));
const roots = (name: string): DataRoots => ({
  tilesRoot: path.join(dir, name, 'tiles'),
  checkpointsRoot: path.join(dir, name, 'checkpoints'),
  stateRoot: path.join(dir, name, 'state'),
});

type Figures = { rate: number; p50: number; p99: number; n: number };

/** 256 appenders for `seconds`: appends/s and latency percentiles (ms). */
async function load(log: Log, seconds = SECONDS): Promise<Figures> {
  const lat: number[] = [];
  const end = performance.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (performance.now() < end) {
        const s = performance.now();
        await log.append(nextEntry());
        lat.push(performance.now() - s);
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(lat.length * p))] ?? 0;
  return { rate: lat.length / secs, p50: q(0.5), p99: q(0.99), n: lat.length };
}

/** The same, over HTTP: a server process for the backend, autocannon here. */
async function loadOverHttp(backend: 'posix' | 's3', name: string): Promise<Figures> {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'lib', 'store-serve.js');
  const args = ['--backend', backend, '--dir', path.join(dir, name), '--origin', ORIGIN];
  if (backend === 's3') args.push('--endpoint', s3.endpoint, '--prefix', `${name}/`, '--keys', path.join(keysHolder, 'keys'));
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, TLOG_LOG_LEVEL: 'warn' } });
  const exited = new Promise((r) => child.once('exit', r));
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /PORT (\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      child.once('exit', (code) => reject(new Error(`the ${backend} server exited (${code}) before listening`)));
    });
    const r = await postBodies(`http://127.0.0.1:${port}`, '/default/append', CONNECTIONS, SECONDS, nextEntry, 30);
    if (r.non2xx > 0) console.log(`  (${r.non2xx} answers other than 2xx)`);
    return { rate: r['2xx'] / r.duration, p50: r.latency.p50, p99: r.latency.p99, n: r['2xx'] };
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

const s3 = await startVersitygw(path.join(dir, 's3'), 'bench');
const keysHolder = path.join(dir, 'keyholder');
await createLogKeys(keysHolder, ORIGIN);
const results: { backend: string; rate: number; p50: number; p99: number; n: number; load: string }[] = [];
/** --slices: both logs open, taking turns of one second; the ratio of the totals, and the median of each pair's ratio. */
async function slices(n: number): Promise<void> {
  const posix = await Log.init(logPaths(roots('posix-slices'), 'bench'), ORIGIN);
  const s3log = await openStoreLog({
    store: scopedStore(new S3Store(s3.client, { bucket: 'bench' }), 'slices/'),
    tenant: 'bench',
    cacheRoots: roots('s3-slices'),
    keysDir: path.join(keysHolder, 'keys'),
    origin: ORIGIN,
    epoch: 1,
  });
  const total = { posix: 0, s3: 0 };
  const pairs: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const p = await load(posix, 1);
      const s = await load(s3log, 1);
      total.posix += p.n;
      total.s3 += s.n;
      pairs.push(s.rate / p.rate);
    }
  } finally {
    await posix.close();
    await s3log.close();
  }
  pairs.sort((a, b) => a - b);
  console.log(
    `${n} slices of 1 s each: POSIX ${fmt(total.posix / n)} appends/s, S3 ${fmt(total.s3 / n)} appends/s: ratio ${fmt(total.s3 / total.posix, 2)}; ` +
      `per pair median ${fmt(pairs[Math.floor(n / 2)]!, 2)} (${fmt(pairs[0]!, 2)}-${fmt(pairs[n - 1]!, 2)}; load ${loadAverage()}; target >= 0.5)`,
  );
}

try {
  if (Number(values.slices) > 0) await slices(Number(values.slices));
  else await rounds();
} finally {
  await s3.stop();
  rmSync(dir, { recursive: true, force: true });
}

/** The backends one after the other, ROUNDS times, each on a new log. */
async function rounds(): Promise<void> {
  for (let round = 0; round < ROUNDS; round++) {
    for (const backend of ['posix', 's3'] as const) {
      const name = `${backend}-${round}`;
      if (values.http) {
        const r = await loadOverHttp(backend, name);
        results.push({ backend, ...r, load: loadAverage() });
        console.log(
          `${backend.padEnd(5)} round ${round + 1} (HTTP): ${fmt(r.rate)} appends/s, p50 ${fmt(r.p50, 1)} ms, p99 ${fmt(r.p99, 1)} ms (${fmt(r.n)} appends; load ${loadAverage()})`,
        );
        continue;
      }
      const trailing: StorePublished[] = [];
      const log =
        backend === 'posix'
          ? await Log.init(logPaths(roots(name), 'bench'), ORIGIN)
          : await openStoreLog({
              store: scopedStore(new S3Store(s3.client, { bucket: 'bench' }), `${name}/`),
              tenant: 'bench',
              cacheRoots: roots(name),
              keysDir: path.join(keysHolder, 'keys'),
              origin: ORIGIN,
              epoch: 1,
              onPublished: (p) => trailing.push(p),
            });
      const r = await load(log);
      await log.close();
      results.push({ backend, ...r, load: loadAverage() });
      console.log(
        `${backend.padEnd(5)} round ${round + 1}: ${fmt(r.rate)} appends/s, p50 ${fmt(r.p50, 1)} ms, p99 ${fmt(r.p99, 1)} ms (${fmt(r.n)} appends; load ${loadAverage()})`,
      );
      if (trailing.length > 0) {
        // How long the store's checkpoint trails an acknowledgement: from the oldest batch a
        // checkpoint covers being journaled in the store (acknowledgeable) to that checkpoint landing.
        const ms = trailing.map((p) => p.trailingMs).sort((a, b) => a - b);
        const q = (x: number) => ms[Math.min(ms.length - 1, Math.floor(ms.length * x))]!;
        const batches = trailing.reduce((n, p) => n + p.batches, 0);
        console.log(
          `      the store's checkpoint trailed by p50 ${fmt(q(0.5), 1)} ms, p99 ${fmt(q(0.99), 1)} ms, max ${fmt(ms[ms.length - 1]!, 1)} ms; ${fmt(batches / trailing.length, 1)} batches per checkpoint written`,
        );
      }
    }
  }
  const mean = (b: string) => {
    const rs = results.filter((r) => r.backend === b);
    return rs.reduce((s, r) => s + r.rate, 0) / rs.length;
  };
  console.log(`\nS3 / POSIX: ${fmt(mean('s3'))} / ${fmt(mean('posix'))} appends/s = ${fmt(mean('s3') / mean('posix'), 2)} (target >= 0.5)`);
}
