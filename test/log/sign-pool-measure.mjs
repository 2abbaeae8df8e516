/**
 * How much of the main thread a checkpoint signature takes, signTree (on the main thread) vs
 * signTreeAsync through a SignPool, and how many signatures per second the pool gives.
 * Not a test (vitest runs *.test.ts): a measurement to repeat by hand, against dist/.
 *
 *   npx tsc -p tsconfig.json && node test/log/sign-pool-measure.mjs [N=100]
 *
 * Per call: "main CPU" is the main thread's own CPU time (Linux /proc/self/task/<pid>/schedstat,
 * nanoseconds; worker threads are not counted), "ELU busy" the main event loop's active time
 * (performance.eventLoopUtilization; on this VM it also counts the cost of waking up). The
 * first row is a reference: a loop that only waits 10 ms per "call" pays that much for the
 * wake-ups alone. "timer gap" is what a 1 ms interval timer running during a second run saw
 * between its ticks (how long an HTTP request could have waited).
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { generatePrivateKey, SignatureType } from '../../dist/src/note/keys.js';
import { keyPair } from '../../dist/src/note/signers.js';
import { SignPool } from '../../dist/src/log/sign-pool.js';
import { signTree, signTreeAsync } from '../../dist/src/log/checkpoint-signing.js';

const N = Number(process.argv[2] ?? 100);
const ORIGIN = 'example.com/measure';
const edKey = generatePrivateKey(ORIGIN, SignatureType.ed25519);
const mlKey = generatePrivateKey(ORIGIN, SignatureType.mldsa44Subtree);
const plainKeys = { ed25519: keyPair(edKey), mldsa44: keyPair(mlKey) };
const root = (i) => {
  const r = new Uint8Array(32);
  new DataView(r.buffer).setUint32(0, i);
  return r;
};

/** CPU time of the main thread alone, in ms (its tid is the pid). */
function mainThreadCpuMs() {
  return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
}

/**
 * Runs f twice: once alone for the main thread's busy time (a timer would add its own), once
 * with a 1 ms interval timer that records the gaps between its ticks (how long an HTTP request
 * could have waited): the longest, and the 99th percentile.
 */
async function measure(name, f) {
  const elu0 = performance.eventLoopUtilization();
  const cpu0 = mainThreadCpuMs();
  const t0 = performance.now();
  await f();
  const wall = performance.now() - t0;
  const cpu = mainThreadCpuMs() - cpu0;
  const elu = performance.eventLoopUtilization(elu0);

  const gaps = [];
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    gaps.push(now - last);
    last = now;
  }, 1);
  await new Promise((r) => setTimeout(r, 20));
  gaps.length = 0;
  last = performance.now();
  await f();
  clearInterval(timer);
  gaps.sort((a, b) => a - b);
  const row = {
    run: name,
    'main CPU ms/call': +(cpu / N).toFixed(3),
    'ELU busy ms/call': +(elu.active / N).toFixed(3),
    'wall ms/call': +(wall / N).toFixed(3),
    'per second': Math.round((N * 1000) / wall),
    'timer gap p99 ms': +(gaps[Math.floor(gaps.length * 0.99)] ?? 0).toFixed(2),
    'timer gap max ms': +(gaps.at(-1) ?? 0).toFixed(2),
  };
  console.log(JSON.stringify(row));
  return row;
}

const rows = [];
// Warm up noble on this thread.
for (let i = 0; i < 10; i++) signTree(ORIGIN, i, root(i), plainKeys);

rows.push(
  await measure('reference: only wait 10 ms per call', async () => {
    for (let i = 0; i < N; i++) await new Promise((r) => setTimeout(r, 10));
  }),
);
rows.push(
  await measure('signTree (main thread), sequential', async () => {
    for (let i = 0; i < N; i++) {
      signTree(ORIGIN, i, root(i), plainKeys);
      await new Promise((r) => setImmediate(r)); // let the timer in between batches, as a server would
    }
  }),
);

for (const workers of [1, 2]) {
  const pool = new SignPool({ workers });
  const keys = { ed25519: keyPair(edKey, undefined, pool.offload), mldsa44: keyPair(mlKey, undefined, pool.offload) };
  // Warm up: start the workers, load noble there, send the keys.
  await Promise.all(Array.from({ length: 4 * workers }, (_, i) => signTreeAsync(ORIGIN, i, root(i), keys)));
  rows.push(
    await measure(`signTreeAsync, pool of ${workers}, sequential (one batch at a time)`, async () => {
      for (let i = 0; i < N; i++) await signTreeAsync(ORIGIN, i, root(i), keys);
    }),
  );
  rows.push(
    await measure(`signTreeAsync, pool of ${workers}, ${N} concurrent`, async () => {
      await Promise.all(Array.from({ length: N }, (_, i) => signTreeAsync(ORIGIN, i, root(i), keys)));
    }),
  );
  const seed = edKey.seed;
  const msg = () => new TextEncoder().encode(`example.com/measure\n${N}\nAAAA\n`);
  rows.push(
    await measure(`raw Ed25519 through the pool of ${workers}, ${N} concurrent (per-call overhead)`, async () => {
      await Promise.all(Array.from({ length: N }, () => pool.sign('ed25519', seed, msg())));
    }),
  );
  await pool.close();
}
console.table(rows);
