/**
 * bench/index-growth: latency at a steady append rate while the dedup table grows (1 M -> 2 M+
 * entries crosses two doublings), next to the same rate while it does not.
 *
 *   npm run build && node dist/bench/index-growth.js [--mode index|log] [--from 1000000]
 *     [--to 2500000] [--rate 20000] [--batch 200] [--capacity 1000000] [--dir /tmp]
 *     [--module <index or log module>]
 *
 * --mode index (default): HotIndex.insertMany of `batch` leaves every batch/rate seconds, as the
 *   sequencer does after each commit (open loop: a batch is due on schedule whatever happened
 *   before). Prints each batch's latency from when it was due to when its insert returned, and
 *   the insert call alone.
 * --mode log: Log.appendMany of `batch` 64-byte entries every batch/rate seconds; prints each
 *   append's latency from when it was due to its answer (signed checkpoint and proof).
 *
 * A batch or append counts as "growing" when its [due, done] interval overlaps a growth: for
 * the background design, from the growth being seen to its swap; for the old design (a growth
 * inside one insert), that insert. --module runs another build of the same API (e.g. main's,
 * the old design: `--module /path/to/main/dist/src/hot-index/index.js`, or `.../log/log.js` for
 * --mode log). The machine's load averages are printed with the figures: on a shared machine
 * they move every percentile.
 */
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type * as IndexModule from '../src/hot-index/index.js';
import type * as LogModule from '../src/log/log.js';
import { logPaths } from '../src/tile-store/paths.js';
import { fmt, loadAverage } from './lib/format.js';
import { fillHashes } from './lib/synthetic.js';

const { values } = parseArgs({
  options: {
    mode: { type: 'string', default: 'index' },
    from: { type: 'string', default: '1000000' },
    to: { type: 'string', default: '2500000' },
    rate: { type: 'string', default: '20000' },
    batch: { type: 'string', default: '200' },
    dir: { type: 'string', default: os.tmpdir() },
    module: { type: 'string' },
    // Entries the index is first sized for: 1 M makes 2^17 buckets, doubled at 1.1 M and 2.2 M.
    capacity: { type: 'string', default: '1000000' },
  },
});
const from = Number(values.from);
const to = Number(values.to);
const rate = Number(values.rate);
const batch = Number(values.batch);
const periodMs = (batch / rate) * 1000;

interface Sample {
  due: number;
  done: number;
  /** The insert call alone (index mode). */
  callMs?: number;
}

/** A growth seen from outside: [start, end] on the performance.now() clock. */
type Window = [number, number];

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;
}

function report(label: string, samples: Sample[], windows: Window[]): void {
  const overlaps = (s: Sample) => windows.some(([a, b]) => s.due <= b && s.done >= a);
  for (const [name, set] of [
    ['growing', samples.filter(overlaps)],
    ['not growing', samples.filter((s) => !overlaps(s))],
  ] as const) {
    const lat = set.map((s) => s.done - s.due).sort((x, y) => x - y);
    const call = set
      .filter((s) => s.callMs !== undefined)
      .map((s) => s.callMs!)
      .sort((x, y) => x - y);
    const ms = (xs: number[]) => `p50 ${percentile(xs, 50).toFixed(2)} p99 ${percentile(xs, 99).toFixed(2)} max ${(xs.at(-1) ?? Number.NaN).toFixed(1)} ms`;
    let line = `${label} ${name.padEnd(11)} n=${fmt(set.length).padStart(9)}  latency ${ms(lat)}`;
    if (call.length > 0) line += `  | insert call ${ms(call)}`;
    console.log(line);
  }
  console.log(`${label} growths: ${windows.map(([a, b]) => `${(b - a).toFixed(0)} ms`).join(', ') || 'none'}`);
}

/** Calls tick() at the steady rate until it returns false; each call gets its due time. */
async function steady(tick: (due: number) => boolean | Promise<boolean>): Promise<void> {
  const t0 = performance.now();
  for (let k = 0; ; k++) {
    const due = t0 + k * periodMs;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    if (!(await tick(due))) return;
  }
}

async function indexMode(dir: string): Promise<void> {
  const mod = (await import(pathToFileURL(values.module ?? path.join(import.meta.dirname, '../src/hot-index/index.js')).href)) as typeof IndexModule;
  const ix = mod.openIndex(path.join(dir, 'index.idx'), { initialCapacity: Number(values.capacity), checkpointEvery: 0, onWarning: () => {} });
  ix.writeCommitPoint({ treeSize: to, rootHash: new Uint8Array(32), checkpointHash: new Uint8Array(32) });
  const buf = new Uint8Array(Math.max(batch, 100_000) * 32);
  for (let first = 0; first < from; first += 100_000) {
    const count = Math.min(100_000, from - first);
    fillHashes(buf, first, count);
    ix.insertMany(buf.subarray(0, count * 32), first);
  }
  const grown = (ix as { whenGrown?: () => Promise<void> }).whenGrown;
  if (grown) await grown.call(ix);
  console.log(`prefilled ${fmt(from)} leaves, capacity ${fmt(ix.capacity)}; load average ${loadAverage()}`);

  const samples: Sample[] = [];
  const windows: Window[] = [];
  let next = from;
  let openWindow: number | undefined;
  let cap = ix.capacity;
  await steady((due) => {
    const count = Math.min(batch, to - next);
    fillHashes(buf, next, count);
    const t = performance.now();
    ix.insertMany(buf.subarray(0, count * 32), next);
    const done = performance.now();
    next += count;
    samples.push({ due, done, callMs: done - t });
    const growing = (ix as { growing?: boolean }).growing === true;
    if (growing && openWindow === undefined) openWindow = t;
    if (ix.capacity !== cap) {
      // Swapped in (background design: in this call or in idle time before it), or grown
      // inside this call (old design).
      windows.push([openWindow ?? t, done]);
      openWindow = growing ? done : undefined;
      cap = ix.capacity;
    }
    return next < to;
  });
  if (openWindow !== undefined) windows.push([openWindow, performance.now()]);
  report('index', samples, windows);
  let bad = 0;
  for (let i = 0; i < to; i += 997) {
    fillHashes(buf, i, 1);
    if (ix.lookup(buf.subarray(0, 32)) !== i) bad++;
  }
  if (bad > 0) throw new Error(`${bad} lookups wrong`);
  ix.close();
}

async function logMode(dir: string): Promise<void> {
  const mod = (await import(pathToFileURL(values.module ?? path.join(import.meta.dirname, '../src/log/log.js')).href)) as typeof LogModule;
  const paths = logPaths({ tilesRoot: path.join(dir, 'tiles'), checkpointsRoot: path.join(dir, 'cp'), stateRoot: path.join(dir, 'state') }, 'bench');
  const log = await mod.Log.init(paths, 'bench.example/growth', { indexCapacity: Number(values.capacity) });
  const entry = (i: number) => Buffer.from(`growth-${i}-`.padEnd(64, '.'));
  for (let first = 0; first < from; first += 16384) {
    await Promise.all(log.appendMany(Array.from({ length: Math.min(16384, from - first) }, (_, k) => entry(first + k))));
  }
  console.log(`prefilled ${fmt(from)} entries; load average ${loadAverage()}`);
  const indexFile = path.join(paths.stateDir, 'index.idx');
  const growFile = `${indexFile}.grow.tmp`;
  const samples: Sample[] = [];
  const pending: Promise<unknown>[] = [];
  const windows: Window[] = [];
  let size = statSync(indexFile).size;
  let openWindow: number | undefined;
  let lastTick = performance.now();
  let next = from;
  await steady((due) => {
    const now = performance.now();
    // Growth as seen from outside: the temporary file of the background design, or the index
    // changing size (the old design grows inside one event-loop turn: from the last tick).
    if (openWindow === undefined && existsSync(growFile)) openWindow = now;
    const s = statSync(indexFile).size;
    if (s !== size) {
      windows.push([openWindow ?? lastTick, now]);
      openWindow = undefined;
      size = s;
    }
    lastTick = now;
    const count = Math.min(batch, to - next);
    const answers = log.appendMany(Array.from({ length: count }, (_, k) => entry(next + k)));
    next += count;
    for (const a of answers) {
      pending.push(
        a.then(() => {
          samples.push({ due, done: performance.now() });
        }),
      );
    }
    return next < to;
  });
  await Promise.all(pending);
  if (openWindow !== undefined) windows.push([openWindow, performance.now()]);
  report('log', samples, windows);
  await log.close();
}

const dir = mkdtempSync(path.join(values.dir!, 'tlog-growth-'));
console.log(
  `bench/index-growth: mode ${values.mode}, ${fmt(from)} -> ${fmt(to)} at ${fmt(rate)}/s in batches of ${batch}` +
    ` (every ${periodMs.toFixed(1)} ms), module ${values.module ?? '(this build)'}; load average ${loadAverage()}`,
);
try {
  if (values.mode === 'log') await logMode(dir);
  else await indexMode(dir);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log(`load average at the end ${loadAverage()}`);
