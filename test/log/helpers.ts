/** Helpers shared by the log engine's tests. */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { auditLog } from '../../src/client/audit.js';
import { dirSource } from '../../src/client/source.js';
import type { Log } from '../../src/log/log.js';
import type { DataRoots, LogPaths } from '../../src/tile-store/paths.js';
import { repoRoot } from '../helpers/dist.js';
import { stopChild } from '../helpers/processes.js';

/** Every checkpoint note a log kept in its history (historyDir/log), leaving out temporary files (dot names). */
export function historyNotes(p: LogPaths): string[] {
  const dir = path.join(p.historyDir, 'log');
  return (readdirSync(dir, { recursive: true }) as string[])
    .map((n) => path.join(dir, n))
    .filter((f) => statSync(f).isFile() && !path.basename(f).startsWith('.'))
    .map((f) => readFileSync(f, 'utf8'));
}

/**
 * Audits a log's files as a verifying client would: its tiles, against every checkpoint of its
 * history. `collectedPartials`: partial tiles the log collected may be gone (our own logs).
 */
export function auditLogFiles(log: Log, p: LogPaths, origin: string, collectedPartials = true) {
  return auditLog(dirSource(p.tilesDir), { verifiers: log.verifiers, origin, history: historyNotes(p), collectedPartials });
}

/**
 * Runs a child driver of test/log (plain node against dist/: build it first with ensureDist) on
 * the data roots, the tenant and `args`, until it prints "done"; then SIGKILLs it and returns
 * what it printed. A child that exits first fails the test with its stderr.
 */
export async function runChildUntilDone(script: string, roots: DataRoots, tenant: string, args: string[]): Promise<string> {
  const child = spawn(process.execPath, [path.join(repoRoot, 'test/log', script), roots.tilesRoot, roots.checkpointsRoot, roots.stateRoot, tenant, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('done\n')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`${script} exited ${code}: ${err}`)));
  });
  await stopChild(child, 'SIGKILL');
  return out;
}
