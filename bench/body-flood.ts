/**
 * bench/body-flood: what many large request bodies cost the server's memory. `tlog serve` runs a
 * tenant that needs a bearer token; N connections (default 48) each send a body of M MiB
 * (default 15) to it at once, as fast as the sockets take it, and stop sending once answered.
 * Prints the server's RSS before, at its peak (VmHWM) and after, the answers' statuses, and how
 * much of the bodies the clients got onto the wire before their answer came.
 *
 *   --auth none   no credentials (the attack: refused with 401 before any body is read)
 *   --auth token  a valid token and a body that is no entry bundle (read, then refused with 400;
 *                 bounded by http.maxBodyBytesInFlight: past it, 503 before reading)
 *
 *   npm run build && node dist/bench/body-flood.js [--auth none|token] [--connections 48] [--mib 15] [--bin dist/src/cli/main.js]
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { rssOf } from './lib/procstat.js';
import { type Running, startOurs } from './lib/servers.js';

const { values } = parseArgs({
  options: {
    auth: { type: 'string', default: 'none' },
    connections: { type: 'string', default: '48' },
    mib: { type: 'string', default: '15' },
    bin: { type: 'string' },
  },
});
const bin = values.bin === undefined ? undefined : path.resolve(values.bin);
const N = Number(values.connections);
const SIZE = Number(values.mib) * 1024 * 1024;
const TOKEN = 'body-flood-token';

/** Our server with one tenant that needs a bearer token. */
function startServer(dir: string): Promise<Running> {
  const cfg = path.join(dir, 'tlog.json');
  const tenant = { name: 'locked', origin: 'bench.example/locked', credentials: { tokens: [createHash('sha256').update(TOKEN).digest('hex')] } };
  writeFileSync(cfg, JSON.stringify({ tenants: [tenant] }));
  return startOurs(dir, { bin, args: ['--config', cfg] });
}

/** One connection: headers, then the body as fast as the socket takes it until an answer comes. */
function flood(port: number, headers: string): Promise<{ status: number; sentMiB: number }> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunk = Buffer.alloc(256 * 1024, 0x62);
    let sent = 0;
    let answered = false;
    let text = '';
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      sock.destroy();
      resolve({ status: Number(/^HTTP\/1\.1 ([0-9]{3})/.exec(text)?.[1] ?? 0), sentMiB: sent / 1048576 });
    };
    sock.on('data', (d) => {
      answered = true;
      text += d.toString('latin1');
      if (text.includes('\r\n\r\n')) setImmediate(finish);
    });
    sock.on('error', finish);
    sock.on('close', finish);
    sock.write(`POST /locked/append-batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: ${SIZE}\r\n${headers}\r\n`);
    const pump = () => {
      while (sent < SIZE && !answered && !sock.destroyed) {
        const piece = chunk.subarray(0, Math.min(chunk.length, SIZE - sent));
        sent += piece.length;
        if (!sock.write(piece)) return void sock.once('drain', pump);
      }
    };
    pump();
  });
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'tlog-body-flood-'));
const server = await startServer(dir);
const { child } = server;
const port = Number(new URL(server.url).port);
try {
  // Warm up: one answered request, so the baseline includes a live HTTP stack.
  await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.text());
  await new Promise((r) => setTimeout(r, 500));
  const before = rssOf(child.pid!);
  const headers = values.auth === 'token' ? `Authorization: Bearer ${TOKEN}\r\n` : '';
  const t0 = performance.now();
  const results = await Promise.all(Array.from({ length: N }, () => flood(port, headers)));
  const seconds = (performance.now() - t0) / 1000;
  await new Promise((r) => setTimeout(r, 500));
  const after = rssOf(child.pid!);
  const statuses: Record<number, number> = {};
  for (const r of results) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
  const sent = results.reduce((a, r) => a + r.sentMiB, 0);
  console.log(`body-flood: ${N} connections x ${values.mib} MiB, auth ${values.auth}, server ${bin ?? 'this build'}`);
  console.log(
    `  answers ${JSON.stringify(statuses)} in ${seconds.toFixed(2)} s; clients put ${sent.toFixed(0)} MiB on the wire before their answers (of ${(N * SIZE) / 1048576} MiB)`,
  );
  console.log(
    `  server RSS: ${before.rssMiB.toFixed(0)} MiB before (peak until then ${before.peakMiB.toFixed(0)}), ${after.peakMiB.toFixed(0)} MiB peak, ${after.rssMiB.toFixed(0)} MiB after`,
  );
} finally {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
