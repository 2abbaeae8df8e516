/**
 * bench/engine: entries per second integrated by the log engine, fsync on, for 64-byte and
 * 1 KiB entries and several engine batch caps, plus lone sequential appends (the low-load
 * case: one entry, one batch, one signed checkpoint) and the process's peak RSS.
 *
 *   npm run build && node dist/bench/engine.js [--entries N] [--dir /path/on/the/disk/to/test]
 *
 * Target on a 2-core machine: at least 50,000 entries/s for 64-byte entries.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Log } from '../src/log/log.js';
import { logPaths } from '../src/tile-store/paths.js';

const { values } = parseArgs({
  options: {
    entries: { type: 'string', default: '200000' },
    dir: { type: 'string', default: os.tmpdir() },
    lone: { type: 'string', default: '300' },
  },
});
const total = Number(values.entries);

function entryOf(i: number, size: number): Uint8Array {
  const b = Buffer.alloc(size, 0x61);
  b.write(`entry-${i}-`, 0);
  return b;
}

async function freshLog(maxBatch: number): Promise<{ log: Log; dir: string }> {
  const dir = mkdtempSync(path.join(values.dir!, 'tlog-bench-'));
  const paths = logPaths({ tilesRoot: path.join(dir, 'tiles'), checkpointsRoot: path.join(dir, 'cp'), stateRoot: path.join(dir, 'state') }, 'bench');
  return { log: await Log.init(paths, 'bench.example/log', { maxBatch }), dir };
}

async function throughput(entrySize: number, maxBatch: number, n: number): Promise<number> {
  const { log, dir } = await freshLog(maxBatch);
  // Offered in chunks of 4096 (as many HTTP clients would), the engine's group commit decides
  // the batches; results are counted, not kept, so RSS shows the engine rather than the bench.
  const t0 = performance.now();
  let done = 0;
  const chunks: Promise<void>[] = [];
  for (let i = 0; i < n; i += 4096) {
    const entries = Array.from({ length: Math.min(4096, n - i) }, (_, j) => entryOf(i + j, entrySize));
    chunks.push(Promise.all(log.appendMany(entries)).then((rs) => void (done += rs.length)));
  }
  await Promise.all(chunks);
  if (done !== n) throw new Error(`only ${done} of ${n} appends resolved`);
  const secs = (performance.now() - t0) / 1000;
  await log.close();
  rmSync(dir, { recursive: true, force: true });
  return n / secs;
}

async function lone(n: number): Promise<{ perSec: number; p50: number; p99: number }> {
  const { log, dir } = await freshLog(8192);
  const lat: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await log.append(entryOf(i, 64));
    lat.push(performance.now() - t);
  }
  const secs = (performance.now() - t0) / 1000;
  await log.close();
  rmSync(dir, { recursive: true, force: true });
  lat.sort((a, b) => a - b);
  return { perSec: n / secs, p50: lat[Math.floor(n * 0.5)]!, p99: lat[Math.floor(n * 0.99)]! };
}

console.log(`bench/engine: node ${process.version}, ${os.cpus().length} cores, data in ${values.dir}, fsync on`);
console.log('entry bytes  batch cap  entries      entries/s');
for (const [size, n] of [
  [64, total],
  [1024, Math.floor(total / 2)],
] as const) {
  for (const cap of [256, 1024, 4096, 16384]) {
    const rate = await throughput(size, cap, n);
    console.log(`${String(size).padStart(11)}  ${String(cap).padStart(9)}  ${String(n).padStart(7)}  ${rate.toFixed(0).padStart(13)}`);
  }
}
const l = await lone(Number(values.lone));
console.log(`lone sequential 64-byte appends: ${l.perSec.toFixed(0)}/s, latency p50 ${l.p50.toFixed(2)} ms, p99 ${l.p99.toFixed(2)} ms`);
console.log(`peak RSS: ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
