/**
 * Starting the servers under test: ours (`tlog serve`, a separate process so the load generator
 * does not share its event loop) and free loopback ports for the others.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** dist/src/cli/main.js, next to the compiled benchmarks. */
export const oursBin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export interface Running {
  readonly child: ChildProcess;
  readonly url: string;
  /** SIGTERM, and resolves once the process has exited. */
  stop(): Promise<void>;
}

function stopper(child: ChildProcess): () => Promise<void> {
  return async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  };
}

/**
 * `tlog serve --listen 127.0.0.1:0` in `cwd` (its default tenant, open on loopback, unless `args`
 * name a configuration), with TLOG_LOG_LEVEL=warn; resolves once it says where it listens.
 * `cpuProfDir` adds node's --cpu-prof; `bin` runs another build's CLI (default: this one's); `env`
 * adds to the environment; `node` runs it on another node binary (default: this one).
 */
export async function startOurs(
  cwd: string,
  o: { cpuProfDir?: string; bin?: string; args?: readonly string[]; env?: Record<string, string>; node?: string } = {},
): Promise<Running> {
  const bin = o.bin ?? oursBin;
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run npm run build first`);
  const nodeArgs = o.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(o.cpuProfDir)}`] : [];
  const child = spawn(o.node ?? process.execPath, [...nodeArgs, bin, 'serve', ...(o.args ?? []), '--listen', '127.0.0.1:0'], {
    cwd,
    env: { ...process.env, TLOG_LOG_LEVEL: 'warn', ...o.env },
    stdio: ['ignore', 'inherit', 'pipe'],
  });
  let err = '';
  const port = await new Promise<number>((resolve, reject) => {
    child.stderr!.on('data', (d) => {
      err += d;
      const m = /listening on http:\/\/[^\s]+:([0-9]+)/.exec(err);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (code) => reject(new Error(`server exited (${code}) before listening:\n${err}`)));
  });
  child.stderr!.on('data', (d) => process.stderr.write(`[server] ${d}`));
  return { child, url: `http://127.0.0.1:${port}`, stop: stopper(child) };
}

/**
 * Spawns a server that listens on `url` and waits until `url + probePath` answers at all (any
 * status); its stdout and stderr go to the descriptor `stdio`. Fails if it exits first or takes over 30 s.
 */
export async function startListening(cmd: string, args: string[], url: string, probePath: string, stdio: number): Promise<Running> {
  const child = spawn(cmd, args, { stdio: ['ignore', stdio, stdio] });
  let exited: string | null = null;
  child.on('exit', (code, signal) => (exited = `${code ?? signal}`));
  for (let i = 0; i < 600; i++) {
    if (exited !== null) throw new Error(`${path.basename(cmd)} exited (${exited}) before listening`);
    try {
      const r = await fetch(`${url}${probePath}`);
      await r.arrayBuffer();
      return { child, url, stop: stopper(child) };
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  child.kill('SIGKILL');
  throw new Error(`${path.basename(cmd)} did not answer on ${url} within 30 s`);
}
