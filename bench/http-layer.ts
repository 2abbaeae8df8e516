/**
 * bench/http-layer: server CPU per single append in the HTTP layer alone (the log answers at
 * once: bench/lib/http-layer-server.ts), at 64 and 256 connections, for this build and, with
 * --other, another build's dist/ in alternating rounds. Less noisy than bench/http.js on a busy
 * machine, since no batch, thread or disk takes part; bench/http.js gives the whole cost. Each
 * round also measures a bare node:http server (bench/lib/bare-http-server.ts): the floor under
 * any HTTP layer on node, and the load generator's ceiling on this machine.
 *
 *   npm run build && node dist/bench/http-layer.js [--duration 5] [--rounds 2] [--other /tmp/before/dist]
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { postBodies } from './lib/autocannon.js';
import { nextEntry } from './lib/entries.js';
import { fmt, loadAverage } from './lib/format.js';
import { cpuMeter } from './lib/procstat.js';

const { values } = parseArgs({
  options: { duration: { type: 'string', default: '5' }, rounds: { type: 'string', default: '2' }, other: { type: 'string' } },
});
const here = path.resolve(import.meta.dirname, '..');
const builds = [here, ...(values.other ? [path.resolve(values.other)] : [])];
const serverScript = path.join(here, 'bench/lib/http-layer-server.js');
const bareScript = path.join(here, 'bench/lib/bare-http-server.js');
const BARE = 'bare node:http';

async function measure(dist: string): Promise<string> {
  const args = dist === BARE ? [bareScript] : [serverScript, dist];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      const m = /PORT ([0-9]+)/.exec(String(d));
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`server exited (${code})`)));
  });
  const out: string[] = [];
  try {
    for (const connections of [64, 256]) {
      const cpu = cpuMeter(child.pid!);
      const r = await postBodies(`http://127.0.0.1:${port}`, '/default/append', connections, Number(values.duration), nextEntry);
      const used = cpu(r.requests.total);
      // The load generator's CPU per request too: near 100% of a core, it is the limit.
      const client = (used.benchPct / 100) * (r.duration / r.requests.total) * 1e6;
      out.push(
        `${connections} conns: ${fmt(r.requests.average)}/s, ${fmt(used.perUs, 1)} us server CPU per request (load generator ${fmt(used.benchPct)}% of a core, ${fmt(client, 1)} us a request)${r.non2xx ? ` (${r.non2xx} non-2xx)` : ''}`,
      );
    }
  } finally {
    child.kill('SIGTERM');
  }
  return out.join('; ');
}

console.log(`bench/http-layer: node ${process.version}, ${values.duration} s per run`);
for (let round = 1; round <= Number(values.rounds); round++) {
  for (const dist of [...builds, BARE]) console.log(`${dist}  load ${loadAverage()}  ${await measure(dist)}`);
}
