/**
 * bench/witness: add-checkpoint requests per second and latency percentiles for our witness,
 * cosigning with Ed25519 only and with Ed25519 + ML-DSA-44, state persisted durably (the
 * default) or kept in memory (--store memory, to see the cost of the fsyncs).
 *
 *   npm run build && node dist/bench/witness.js [--connections 16] [--requests 100]
 *       [--mldsa-requests 20] [--logs 0] [--store file|memory] [--dir /path/on/the/disk]
 *
 * The witness runs in a child process (this file with --serve-child) on loopback; the load
 * comes from autocannon, one instance per connection, each driving its own log through a
 * chain of real requests: old k, a consistency proof, and the log-signed checkpoint of size
 * k+1, so every request is a full verify + check + cosign + persist and must get a 200.
 * --logs N (N < connections) makes connections share logs: requests then also queue on the
 * per-log mutex, and a request that loses a race gets a 409 (counted, not an error).
 */
import { spawn } from 'node:child_process';
import { createPrivateKey, sign as nodeSign } from 'node:crypto';
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { EMPTY_ROOT, leafHash, nodeHash } from '../src/merkle/hash.js';
import { consistencyProof, treeHash, type NodeReader } from '../src/merkle/proof.js';
import { formatCheckpoint } from '../src/note/checkpoint.js';
import { computeKeyID, formatVerifierKey, SignatureType } from '../src/note/keys.js';
import { formatNote } from '../src/note/note.js';
import { formatAddCheckpointRequest } from '../witness/request.js';
import { runWitness } from '../witness/serve.js';
import { MemoryStateStore } from '../witness/state.js';

const { values } = parseArgs({
  options: {
    'serve-child': { type: 'boolean', default: false },
    mldsa44: { type: 'string', default: 'on' },
    store: { type: 'string', default: 'file' },
    connections: { type: 'string', default: '16' },
    requests: { type: 'string', default: '100' },
    'mldsa-requests': { type: 'string', default: '20' },
    logs: { type: 'string', default: '0' },
    dir: { type: 'string', default: os.tmpdir() },
    config: { type: 'string' },
    data: { type: 'string' },
  },
});

/** The part of autocannon's API used here (the package ships no types). */
interface AutocannonRequest {
  method?: string;
  path?: string;
  body?: string;
}
interface AutocannonInstance {
  on(event: 'response', f: (client: unknown, status: number, bytes: number, ms: number) => void): void;
}
type Autocannon = (
  opts: {
    url: string;
    connections: number;
    pipelining: number;
    amount: number;
    requests: { method: string; path: string; setupRequest: (req: AutocannonRequest) => AutocannonRequest }[];
  },
  done: (err: Error | null) => void,
) => AutocannonInstance;
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

// ---- the log: one Ed25519 key (node:crypto signs fast; the witness verifies with noble) ----

const LOG_KEY_NAME = 'bench.example/log';
const seed = Buffer.alloc(32, 0x42);
const logPrivate = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]), format: 'der', type: 'pkcs8' });
const logPublic = Buffer.from(
  createPrivateKey({ key: logPrivate.export({ format: 'der', type: 'pkcs8' }), format: 'der', type: 'pkcs8' }).export({ format: 'jwk' }).x!,
  'base64url',
);
const logKeyID = computeKeyID(LOG_KEY_NAME, SignatureType.ed25519, logPublic);
const logVkey = formatVerifierKey({ name: LOG_KEY_NAME, type: SignatureType.ed25519, publicKey: logPublic });
const originOf = (i: number) => `bench.example/log${i}`;

/** A tree of `n` entries as perfect levels, for roots and proofs. */
function levelsOf(n: number): Uint8Array[][] {
  const levels: Uint8Array[][] = [Array.from({ length: n }, (_, i) => leafHash(Buffer.from(`bench entry ${i}`)))];
  for (let lv = levels[0]!; lv.length > 1; ) {
    const up: Uint8Array[] = [];
    for (let i = 0; i + 1 < lv.length; i += 2) up.push(nodeHash(lv[i]!, lv[i + 1]!));
    levels.push(up);
    lv = up;
  }
  return levels;
}

/** The chain of add-checkpoint bodies for one log: old k -> size k+1, k = 0..steps-1. */
function chainOf(origin: string, steps: number, levels: Uint8Array[][]): string[] {
  const node: NodeReader = (h, i) => levels[h]![i]!;
  const out: string[] = [];
  for (let k = 0; k < steps; k++) {
    const size = k + 1;
    const text = formatCheckpoint({ origin, treeSize: size, rootHash: size === 0 ? EMPTY_ROOT : treeHash(size, node), extensions: [] });
    const note = formatNote({ text, signatures: [{ name: LOG_KEY_NAME, keyID: logKeyID, signature: nodeSign(null, Buffer.from(text), logPrivate) }] });
    out.push(formatAddCheckpointRequest(k, k === 0 ? [] : consistencyProof(k, size, node), note));
  }
  return out;
}

// ---- the child: the witness ----

async function serveChild(): Promise<void> {
  const logs = Number(values.logs);
  const w = await runWitness({
    config: {
      name: 'bench.example/witness',
      mldsa44: values.mldsa44 === 'on',
      logs: Array.from({ length: logs }, (_, i) => ({ origin: originOf(i), keys: [logVkey] })),
    },
    dataDir: values.data!,
    listen: '127.0.0.1:0',
    store: values.store === 'memory' ? new MemoryStateStore() : undefined,
    log: () => {},
  });
  process.stdout.write(`url ${w.url}\n`);
  process.once('SIGTERM', () => void w.close().then(() => process.exit(0)));
}

function startChild(mldsa44: boolean, logs: number, data: string): Promise<{ url: string; stop: () => Promise<void> }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [fileURLToPath(import.meta.url), '--serve-child', '--mldsa44', mldsa44 ? 'on' : 'off', '--store', values.store!, '--logs', String(logs), '--data', data],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /url (\S+)/.exec(out);
      if (m) {
        resolve({
          url: m[1]!,
          stop: () =>
            new Promise<void>((r) => {
              child.once('exit', () => r());
              child.kill('SIGTERM');
            }),
        });
      }
    });
    child.once('exit', (code) => reject(new Error(`witness child exited (${code}) before listening`)));
  });
}

// ---- the load ----

interface Figures {
  requests: number;
  ok: number;
  conflicts: number;
  other: number;
  seconds: number;
  latencies: number[];
  /** hrtime of the last response: autocannon reports completion on its 1 s ticker, so the
   * wall time is measured to the last response instead. */
  last: bigint;
}

function runInstance(url: string, bodies: string[], fig: Figures): Promise<void> {
  let next = 0;
  return new Promise((resolve, reject) => {
    const inst = autocannon(
      {
        url,
        connections: 1,
        pipelining: 1,
        amount: bodies.length,
        requests: [
          {
            method: 'POST',
            path: '/add-checkpoint',
            setupRequest: (req: AutocannonRequest) => ({ ...req, body: bodies[next++] ?? bodies[bodies.length - 1] }),
          },
        ],
      },
      (err: Error | null) => (err ? reject(err) : resolve()),
    );
    inst.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
      fig.requests++;
      fig.latencies.push(ms);
      fig.last = process.hrtime.bigint();
      if (status === 200) fig.ok++;
      else if (status === 409) fig.conflicts++;
      else fig.other++;
    });
  });
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

async function scenario(mldsa44: boolean, perConnection: number): Promise<void> {
  const connections = Number(values.connections);
  const logs = Number(values.logs) > 0 ? Number(values.logs) : connections;
  const levels = levelsOf(perConnection + 1);
  // Connections sharing a log split its chain: conn c takes steps c/logs, c/logs + shares, ...
  // (they race; the losers get 409s). With one log per connection every request is a 200.
  const chains = Array.from({ length: logs }, (_, i) => chainOf(originOf(i), perConnection, levels));
  const data = mkdtempSync(path.join(values.dir!, 'witness-bench-'));
  const child = await startChild(mldsa44, logs, data);
  try {
    const fig: Figures = { requests: 0, ok: 0, conflicts: 0, other: 0, seconds: 0, latencies: [], last: 0n };
    const t0 = process.hrtime.bigint();
    await Promise.all(Array.from({ length: connections }, (_, c) => runInstance(child.url, chains[c % logs]!, fig)));
    fig.seconds = Number(fig.last - t0) / 1e9;
    const sorted = fig.latencies.sort((a, b) => a - b);
    const label = mldsa44 ? 'Ed25519 + ML-DSA-44' : 'Ed25519 only';
    console.log(
      `add-checkpoint  ${label.padEnd(20)} store=${values.store}  connections=${connections} logs=${logs}  ` +
        `${fig.requests} requests (${fig.ok} x 200, ${fig.conflicts} x 409, ${fig.other} other) in ${fig.seconds.toFixed(2)} s  ` +
        `${(fig.requests / fig.seconds).toFixed(0)} req/s  p50 ${pct(sorted, 50).toFixed(1)} ms  p99 ${pct(sorted, 99).toFixed(1)} ms  max ${sorted[sorted.length - 1]!.toFixed(1)} ms`,
    );
    if (fig.other > 0) process.exitCode = 1;
  } finally {
    await child.stop();
    rmSync(data, { recursive: true, force: true });
  }
}

if (values['serve-child']) {
  await serveChild();
} else {
  console.log(`bench/witness: node ${process.version}, ${os.cpus().length} cpus, data under ${values.dir}`);
  await scenario(false, Number(values.requests));
  await scenario(true, Number(values['mldsa-requests']));
}
