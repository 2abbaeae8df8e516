/**
 * Server programs that tests run as child processes (third-party servers built from Go): a free
 * loopback port to give them, their output gathered for failure messages, waiting until they
 * answer, and stopping them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { until } from './wait.js';

/** A loopback port that was free a moment ago, for a program that must be told its port. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
    s.on('error', reject);
  });
}

export interface ServerProcess {
  readonly proc: ChildProcess;
  /** Everything it wrote on stdout and stderr so far. */
  output(): string;
}

/** Spawns a server program, gathering its stdout and stderr. */
export function spawnServer(binary: string, args: string[], env?: NodeJS.ProcessEnv): ServerProcess {
  const proc = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return { proc, output: () => out };
}

/** Waits until a GET of `url` answers 2xx (`what` names the wait); fails with its output if the server exits first. */
export async function untilAnswers(what: string, s: ServerProcess, url: string, timeoutMs = 30_000): Promise<void> {
  await until(
    what,
    async () => {
      if (s.proc.exitCode !== null) throw new Error(`${what}: the server exited ${s.proc.exitCode}:\n${s.output()}`);
      try {
        return (await fetch(url)).ok;
      } catch {
        return false;
      }
    },
    timeoutMs,
  );
}

/**
 * Stops a child that still runs (SIGTERM unless told otherwise) and resolves once it has exited.
 * A child still running `killAfterMs` later is SIGKILLed: a server's graceful stop waiting on a
 * connection must not hold a test's clean-up past its hook timeout (a bound on waiting, not a
 * time measurement).
 */
export async function stopChild(p: ChildProcess | null | undefined, signal: NodeJS.Signals = 'SIGTERM', killAfterMs = 15_000): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const force = setTimeout(() => p.kill('SIGKILL'), killAfterMs);
    p.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    p.kill(signal);
  });
}
