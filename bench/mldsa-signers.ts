/**
 * bench/mldsa-signers: milliseconds per ML-DSA-44 signature for each backend this runtime offers
 * (src/log/mldsa-backend.ts: node:crypto, liboqs-wasm, noble), on this thread, over a checkpoint-
 * sized subtree/v1 message; the key derivation from the seed once; and a check that noble
 * verifies every signature made. The backend `tlog serve` would choose is marked.
 *
 *   npm run build && node dist/bench/mldsa-signers.js [--signatures N]
 *
 * Run it once per runtime to compare (e.g. the system Node and the current LTS). Single-threaded
 * figures: the sign pool computes them on its worker, off the event loop.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { ml_dsa44 } from '@noble/post-quantum/ml-dsa.js';
import { availableMldsaBackends, chooseMldsaBackend, loadMldsaBackend } from '../src/log/mldsa-backend.js';
import { subtreeV1Message } from '../src/note/signers.js';

const { values } = parseArgs({ options: { signatures: { type: 'string', default: '300' } } });
const N = Number(values.signatures);
if (!Number.isInteger(N) || N < 10) throw new Error('--signatures wants an integer >= 10');

const seed = randomBytes(32);
const publicKey = ml_dsa44.keygen(seed).publicKey;
const message = (i: number) =>
  subtreeV1Message({
    cosignerName: 'example.com/bench',
    timestamp: 1_700_000_000 + i,
    origin: 'example.com/bench',
    start: 0,
    end: 1000 + i,
    hash: randomBytes(32),
  });

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
const ms = (x: number) => +x.toFixed(3);

console.log(`Node ${process.version} (OpenSSL ${process.versions.openssl}), ${N} signatures per backend (noble: ${Math.ceil(N / 10)})`);
const rows = [];
for (const name of availableMldsaBackends()) {
  const t0 = performance.now();
  const backend = await loadMldsaBackend(name);
  const loadMs = performance.now() - t0;
  const t1 = performance.now();
  const key = backend.keyFromSeed(seed);
  const keyMs = performance.now() - t1;
  // noble is an order of magnitude slower: a tenth of the signatures gives the same precision.
  const n = name === 'noble' ? Math.ceil(N / 10) : N;
  const msgs = Array.from({ length: n }, (_, i) => Uint8Array.from(message(i)));
  for (let i = 0; i < Math.min(10, n); i++) backend.sign(key, msgs[i]!); // warm up
  const times: number[] = [];
  const sigs: Uint8Array[] = [];
  for (const m of msgs) {
    const s = performance.now();
    sigs.push(backend.sign(key, m));
    times.push(performance.now() - s);
  }
  let verified = 0;
  for (let i = 0; i < n; i++) if (ml_dsa44.verify(sigs[i]!, msgs[i]!, publicKey)) verified++;
  const sorted = [...times].sort((a, b) => a - b);
  const mean = times.reduce((a, b) => a + b, 0) / n;
  rows.push({
    backend: name + (name === chooseMldsaBackend(undefined) ? ' (chosen)' : ''),
    'load ms': ms(loadMs),
    'key from seed ms': ms(keyMs),
    'sign ms mean': ms(mean),
    'sign ms p50': ms(pct(sorted, 0.5)),
    'sign ms p99': ms(pct(sorted, 0.99)),
    'signatures/s': Math.round(1000 / mean),
    'noble verifies': `${verified}/${n}`,
  });
}
console.table(rows);
