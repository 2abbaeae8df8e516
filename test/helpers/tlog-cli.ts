/**
 * Running the compiled `tlog` (dist/, see dist.ts) as a real process: one command to its end
 * (runTlog), or a `tlog serve` that the test talks to over a socket (spawnServe).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { afterAll } from 'vitest';
import { tlogBin } from './dist.js';

export interface TlogRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `tlog <args>` to its end. A process that did not exit by itself (killed, timed out, or
 * not started) is a failure of its own, not an empty answer.
 */
export function runTlog(
  args: string[],
  o: { cwd?: string; input?: string; env?: Record<string, string>; baseEnv?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): TlogRun {
  const r = spawnSync(process.execPath, [tlogBin, ...args], {
    cwd: o.cwd,
    input: o.input,
    encoding: 'utf8',
    timeout: o.timeoutMs,
    // `env` adds to `baseEnv` (default: this process's environment).
    env: { ...(o.baseEnv ?? process.env), ...o.env },
  });
  if (r.error || r.signal) throw new Error(`tlog ${args.join(' ')}: ${r.error ? r.error.message : `killed by ${r.signal}`}\n${r.stderr}`);
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

export interface ServeProc {
  readonly child: ChildProcess;
  readonly port: number;
  readonly url: string;
  stderr(): string;
  stdout(): string;
  /** Resolves with the exit code (or signal) when the process ends. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Spawns `tlog [globalArgs] serve --listen 127.0.0.1:0 [args]` and waits for its "listening on
 * http://host:port" line on stderr; fails if it exits first.
 */
export function spawnServe(args: string[], o: { cwd: string; env?: Record<string, string>; globalArgs?: string[]; timeoutMs?: number }): Promise<ServeProc> {
  const child = spawn(process.execPath, [tlogBin, ...(o.globalArgs ?? []), 'serve', '--listen', '127.0.0.1:0', ...args], {
    cwd: o.cwd,
    env: { ...process.env, TLOG_LOG_LEVEL: 'info', ...o.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`tlog serve did not announce itself: ${err}`));
    }, o.timeoutMs ?? 20_000);
    child.stderr!.on('data', (d) => {
      err += d;
      const m = /listening on http:\/\/([^\s]+):([0-9]+)/.exec(err);
      if (m) {
        clearTimeout(timer);
        const port = Number(m[2]);
        resolve({ child, port, url: `http://127.0.0.1:${port}`, stderr: () => err, stdout: () => out, exited });
      }
    });
    void exited.then((e) => {
      clearTimeout(timer);
      reject(new Error(`tlog serve exited (${e.code ?? e.signal}) before listening: ${err}`));
    });
  });
}

/**
 * spawnServe for a test file: every serve it started and that still runs after all the file's
 * tests is killed (SIGKILL), so that a failed test leaves no process behind.
 */
export function serveSpawner(): typeof spawnServe {
  const procs: ServeProc[] = [];
  afterAll(() => {
    for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL');
  });
  return async (args, o) => {
    const p = await spawnServe(args, o);
    procs.push(p);
    return p;
  };
}

/** Sends SIGTERM and resolves with the exit code. */
export async function stopServe(p: ServeProc): Promise<number | null> {
  p.child.kill('SIGTERM');
  return (await p.exited).code;
}

/** Writes a service configuration (JSON) for a spawned serve. */
export function writeConfig(file: string, cfg: Record<string, unknown>): void {
  writeFileSync(file, JSON.stringify(cfg, null, 2));
}
