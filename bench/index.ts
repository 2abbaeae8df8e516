/**
 * Hot index benchmark: inserts/s and lookups/s through the mapping next to a JS Map in the
 * same run, memory after indexing N entries, reopen time after SIGKILL, rebuild time.
 *
 *   npx tsc -p tsconfig.json && node --expose-gc dist/bench/index.js [--n 10000000] [--dir /tmp/x]
 *   (or TLOG_BENCH_N=1000000)
 *
 * Leaf hashes are pseudo-random 32-byte strings from a fixed mix of the leaf index (same
 * distribution as SHA-256 output for a hash table, without spending minutes on SHA-256).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nativeAvailable } from '../native/index.js';
import { openIndex, rebuild } from '../src/hot-index/index.js';
import { fillHashes } from './lib/synthetic.js';

const CHUNK = 100_000;

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function hashesOf(first: number, count: number): Uint8Array {
  const b = new Uint8Array(count * 32);
  fillHashes(b, first, count);
  return b;
}

const root = (n: number): Uint8Array => new Uint8Array(32).fill(n & 0xff);
const mb = (n: number): string => `${(n / 2 ** 20).toFixed(0)} MiB`;
const rate = (count: number, ms: number): string => `${Math.round((count / ms) * 1000).toLocaleString('en-US')}/s`;

function memory(): string {
  (globalThis as { gc?: () => void }).gc?.();
  const m = process.memoryUsage();
  return `rss ${mb(m.rss)}, heapUsed ${mb(m.heapUsed)}, external ${mb(m.external)}`;
}

/** Child mode: index n leaves into path, reporting progress, until killed. */
function child(path: string, n: number): void {
  const ix = openIndex(path, { initialCapacity: n, onWarning: () => {} });
  const buf = new Uint8Array(CHUNK * 32);
  for (let first = 0; first < n; first += CHUNK) {
    const count = Math.min(CHUNK, n - first);
    fillHashes(buf, first, count);
    ix.writeCommitPoint({ treeSize: first + count, rootHash: root(first + count), checkpointHash: root(0) });
    ix.insertMany(buf.subarray(0, count * 32), first);
    process.stdout.write(`${first + count}\n`);
  }
  setInterval(() => {}, 1 << 30);
}

async function killedChild(path: string, n: number): Promise<void> {
  const script = fileURLToPath(import.meta.url);
  const c = spawn(process.execPath, [script, '--child', path, String(n)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => {
    let last = '';
    c.stdout.on('data', (d) => {
      last = String(d).trim().split('\n').pop() ?? last;
      // Kill it mid-flight, once it has indexed nearly everything.
      if (Number(last) >= n * 0.95) c.kill('SIGKILL');
    });
    c.on('exit', () => resolve());
  });
}

async function main(): Promise<void> {
  if (process.argv[2] === '--child') return child(process.argv[3]!, Number(process.argv[4]));
  const n = Number(arg('n') ?? process.env.TLOG_BENCH_N ?? 10_000_000);
  const dir = arg('dir') ?? mkdtempSync(join(tmpdir(), 'tlog-bench-index-'));
  const path = join(dir, 'index.idx');
  console.log(`hot index bench: N=${n.toLocaleString('en-US')}, native=${nativeAvailable}, dir=${dir}`);
  console.log(`start: ${memory()}`);

  // Inserts through the mapping (table sized for N up front, as the engine would at start-up).
  const ix = openIndex(path, { initialCapacity: n, checkpointEvery: 0, onWarning: () => {} });
  ix.writeCommitPoint({ treeSize: n, rootHash: root(1), checkpointHash: root(2) });
  const buf = new Uint8Array(CHUNK * 32);
  let insertMs = 0;
  for (let first = 0; first < n; first += CHUNK) {
    const count = Math.min(CHUNK, n - first);
    fillHashes(buf, first, count);
    const t = performance.now();
    ix.insertMany(buf.subarray(0, count * 32), first);
    insertMs += performance.now() - t;
  }
  console.log(
    `index insert: ${rate(n, insertMs)} (${(insertMs / 1000).toFixed(1)} s), file ${mb(statSync(path).size)}, load ${(ix.entryCount / ix.capacity).toFixed(2)}`,
  );
  let t = performance.now();
  ix.checkpointTable();
  console.log(`checkpointTable (msync of the table): ${(performance.now() - t).toFixed(0)} ms`);
  console.log(`after indexing ${n.toLocaleString('en-US')}: ${memory()}`);

  // Lookups: 1M present leaves at random, 1M absent hashes.
  const probes = Math.min(1_000_000, n);
  const present = new Uint8Array(probes * 32);
  const wanted = new Float64Array(probes);
  for (let k = 0; k < probes; k++) {
    wanted[k] = Math.floor(Math.random() * n);
    fillHashes(present.subarray(k * 32, k * 32 + 32), wanted[k]!, 1);
  }
  const absent = hashesOf(n + 1, probes);
  for (let round = 0; round < 2; round++) {
    t = performance.now();
    let bad = 0;
    for (let k = 0; k < probes; k++) if (ix.lookup(present, k * 32) !== wanted[k]) bad++;
    const hitMs = performance.now() - t;
    t = performance.now();
    for (let k = 0; k < probes; k++) if (ix.lookup(absent, k * 32) !== -1) bad++;
    const missMs = performance.now() - t;
    if (bad > 0) throw new Error(`${bad} wrong lookups`);
    console.log(`index lookup (round ${round + 1}): hits ${rate(probes, hitMs)}, misses ${rate(probes, missMs)}`);
  }
  ix.close();

  // Baseline: a JS Map keyed by a 48-bit number taken from the hash (not even exact dedup).
  const key = (b: Uint8Array, o: number): number =>
    (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16)) + (b[o + 3]! | (b[o + 4]! << 8) | (b[o + 5]! << 16)) * 0x100_0000;
  const map = new Map<number, number>();
  let mapMs = 0;
  for (let first = 0; first < n; first += CHUNK) {
    const count = Math.min(CHUNK, n - first);
    fillHashes(buf, first, count);
    t = performance.now();
    for (let k = 0; k < count; k++) {
      const kk = key(buf, k * 32);
      if (!map.has(kk)) map.set(kk, first + k);
    }
    mapMs += performance.now() - t;
  }
  console.log(`Map insert: ${rate(n, mapMs)}; ${memory()}`);
  t = performance.now();
  let hits = 0;
  for (let k = 0; k < probes; k++) if (map.get(key(present, k * 32)) === wanted[k]) hits++;
  const mapHitMs = performance.now() - t;
  t = performance.now();
  for (let k = 0; k < probes; k++) if (map.get(key(absent, k * 32)) !== undefined) hits--;
  console.log(`Map lookup: hits ${rate(probes, mapHitMs)}, misses ${rate(probes, performance.now() - t)} (${hits} ok)`);
  map.clear();

  // Reopen after SIGKILL of a writer that was indexing.
  const crashPath = join(dir, 'crash.idx');
  await killedChild(crashPath, n);
  t = performance.now();
  const re = openIndex(crashPath, { onWarning: () => {} });
  const openMs = performance.now() - t;
  const cp = re.commitPoint;
  console.log(
    `reopen after SIGKILL: ${openMs.toFixed(1)} ms (commit ${cp.treeSize}, indexed ${re.indexedSize}, replay ${cp.treeSize - re.indexedSize} leaves)`,
  );
  re.close();

  // Rebuild from scratch.
  const rebuildPath = join(dir, 'rebuilt.idx');
  async function* leaves(): AsyncGenerator<Uint8Array> {
    for (let first = 0; first < n; first += CHUNK) yield hashesOf(first, Math.min(CHUNK, n - first));
  }
  t = performance.now();
  await rebuild(rebuildPath, leaves(), { commitPoint: { treeSize: n, rootHash: root(1), checkpointHash: root(2) }, expectedLeaves: n });
  const rebuildMs = performance.now() - t;
  console.log(`rebuild of ${n.toLocaleString('en-US')}: ${(rebuildMs / 1000).toFixed(1)} s (${rate(n, rebuildMs)}, hash generation included)`);

  if (arg('dir') === undefined) rmSync(dir, { recursive: true, force: true });
}

await main();
