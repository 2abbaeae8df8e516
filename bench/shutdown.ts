/**
 * bench/shutdown: how long `tlog serve` takes to exit after SIGTERM while clients keep sending
 * appends on kept-alive connections, and how many requests it still answered after it said
 * "stopping" (must be 0). The test suite checks that it exits and refuses late requests; the
 * time is measured here, since a test must not assert wall-clock bounds.
 *
 *   npm run build && node dist/bench/shutdown.js [--connections 16] [--runs 5]
 *
 * Target: exit within 2 s of SIGTERM.
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    connections: { type: 'string', default: '16' },
    runs: { type: 'string', default: '5' },
  },
});
const bin = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../src/cli/main.js');

async function run(connections: number): Promise<{ exitMs: number; late: number; code: number | null }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tlog-bench-shutdown-'));
  try {
    const child = spawn(process.execPath, [bin, 'serve', '--listen', '127.0.0.1:0'], {
      cwd: dir,
      env: { ...process.env, TLOG_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const port = await new Promise<number>((resolve, reject) => {
      child.stderr.on('data', () => {
        const m = /listening on http:\/\/[^\s]+:([0-9]+)/.exec(err);
        if (m) resolve(Number(m[1]));
      });
      void exited.then(() => reject(new Error(`serve exited before listening: ${err}`)));
    });
    const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
    let n = 0;
    const once = () =>
      new Promise<number>((resolve) => {
        const req = http.request(
          { host: '127.0.0.1', port, path: '/default/append', agent, method: 'POST', headers: { 'content-type': 'application/octet-stream' } },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.on('error', () => resolve(0));
        req.end(`bench entry ${n++}`);
      });
    let done = false;
    let answered = 0;
    let late = 0;
    void exited.then(() => (done = true));
    const workers = Array.from({ length: connections }, async () => {
      while (!done) {
        const afterStopping = /^stopping:/m.test(err);
        const status = await once();
        if (status === 200) answered++;
        if (afterStopping && status === 200) late++;
      }
    });
    while (answered < 500) await new Promise((r) => setTimeout(r, 10));
    const t0 = performance.now();
    child.kill('SIGTERM');
    const code = await exited;
    const exitMs = performance.now() - t0;
    await Promise.all(workers);
    agent.destroy();
    return { exitMs, late, code };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const connections = Number(values.connections);
const runs = Number(values.runs);
const times: number[] = [];
for (let i = 0; i < runs; i++) {
  const r = await run(connections);
  times.push(r.exitMs);
  console.log(`run ${i + 1}: exit ${r.code} after ${r.exitMs.toFixed(0)} ms; ${r.late} answer(s) to requests sent after "stopping"`);
}
times.sort((a, b) => a - b);
console.log(
  `bench/shutdown: ${connections} keep-alive connections, ${runs} runs: SIGTERM to exit median ${times[Math.floor(runs / 2)]!.toFixed(0)} ms, max ${times[runs - 1]!.toFixed(0)} ms`,
);
