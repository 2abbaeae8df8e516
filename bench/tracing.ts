/**
 * bench/tracing: what tracing costs. Single-entry appends (POST /default/append, a distinct
 * entry per request) per second, and the server's CPU per append, for
 *   - before: another build (--before: its dist/src/cli/main.js), e.g. the commit before tracing;
 *   - off:    this build, no OTEL_* variable (nothing of OpenTelemetry is loaded);
 *   - on:     this build, exporting every span (OTLP/HTTP protobuf, the SDK's default batch
 *             processor) to a sink in this process that reads and drops what it gets;
 * in one run, interleaved (before, off, on, before, off, on, ...) so that the machine's other
 * load falls on all three alike; the load average is printed with each run.
 *
 *   npm run build && node dist/bench/tracing.js [--before ../before/dist/src/cli/main.js]
 *                                               [--rounds 3] [--duration 8] [--connections 64]
 *
 * A build of the commit before tracing, next to this one (node_modules shared):
 *   mkdir /tmp/tlog-before && git archive <commit> | tar -x -C /tmp/tlog-before \
 *     && ln -s "$PWD/node_modules" /tmp/tlog-before/ && (cd /tmp/tlog-before && npx tsc -p tsconfig.json)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { postBodies, statusSummary } from './lib/autocannon.js';
import { nextEntry } from './lib/entries.js';
import { fmt, loadAverage } from './lib/format.js';
import { cpuMeter } from './lib/procstat.js';
import { startOurs } from './lib/servers.js';

const { values } = parseArgs({
  options: {
    before: { type: 'string' },
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '8' },
    connections: { type: 'string', default: '64' },
  },
});
const ROUNDS = Number(values.rounds);
const DURATION = Number(values.duration);
const CONNECTIONS = Number(values.connections);

/** An OTLP/HTTP sink: reads every export and answers 200; counts the bytes. */
let sinkBytes = 0;
const sink = http.createServer((req, res) => {
  req.on('data', (d: Buffer) => (sinkBytes += d.length));
  req.on('end', () => res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end());
});
await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
const endpoint = `http://127.0.0.1:${(sink.address() as AddressInfo).port}`;

/** Every OTEL_* variable of this process, unset (an empty value counts as unset). */
const noOtel = Object.fromEntries(
  Object.keys(process.env)
    .filter((k) => k.startsWith('OTEL_'))
    .map((k) => [k, '']),
);

interface Variant {
  readonly name: string;
  readonly bin?: string;
  readonly env: Record<string, string>;
}
const variants: Variant[] = [
  ...(values.before ? [{ name: 'before', bin: path.resolve(values.before), env: noOtel }] : []),
  { name: 'off', env: noOtel },
  { name: 'on', env: { ...noOtel, OTEL_EXPORTER_OTLP_ENDPOINT: endpoint } },
];

interface Result {
  perSec: number;
  cpuUs: number;
}
const results = new Map<string, Result[]>(variants.map((v) => [v.name, []]));

console.log(`load average before: ${loadAverage()}; ${os.cpus().length} cores; ${CONNECTIONS} connections, ${DURATION} s a run, ${ROUNDS} rounds`);
if (!values.before) console.log('no --before build: measuring off and on only');
const base = mkdtempSync(path.join(os.tmpdir(), 'tlog-bench-tracing-'));
try {
  for (let round = 1; round <= ROUNDS; round++) {
    for (const v of variants) {
      const cwd = mkdtempSync(path.join(base, `${v.name}-`));
      const server = await startOurs(cwd, { bin: v.bin, env: v.env });
      try {
        // A short warm-up (JIT, the first tiles), not measured.
        await postBodies(server.url, '/default/append', CONNECTIONS, 1, nextEntry, 30);
        const bytes0 = sinkBytes;
        const cpu = cpuMeter(server.child.pid!);
        const r = await postBodies(server.url, '/default/append', CONNECTIONS, DURATION, nextEntry, 30);
        const used = cpu(r['2xx'], 'append');
        const perSec = r['2xx'] / r.duration;
        results.get(v.name)!.push({ perSec, cpuUs: used.perUs });
        const exported = v.name === 'on' ? `, ${fmt((sinkBytes - bytes0) / 1024)} KiB of spans exported during the run` : '';
        console.log(
          `round ${round} ${v.name.padEnd(6)} ${fmt(perSec)} appends/s, p50 ${fmt(r.latency.p50, 1)} ms, p99 ${fmt(r.latency.p99, 1)} ms, ${fmt(used.perUs)} us server CPU per append (${statusSummary(r)}${exported}; load ${loadAverage()})`,
        );
      } finally {
        await server.stop();
        rmSync(cwd, { recursive: true, force: true });
      }
    }
  }
} finally {
  rmSync(base, { recursive: true, force: true });
  sink.close();
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
console.log('\nmedians (range):');
for (const v of variants) {
  const rs = results.get(v.name)!;
  const ps = rs.map((r) => r.perSec);
  const cs = rs.map((r) => r.cpuUs);
  console.log(
    `  ${v.name.padEnd(6)} ${fmt(median(ps))} appends/s (${fmt(Math.min(...ps))}-${fmt(Math.max(...ps))}), ${fmt(median(cs))} us CPU per append (${fmt(Math.min(...cs))}-${fmt(Math.max(...cs))})`,
  );
}
console.log(`load average after: ${loadAverage()}`);
