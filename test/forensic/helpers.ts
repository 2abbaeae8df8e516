/**
 * Shared by the forensic tests: logs written by the engine, and the POSIX sh scripts of
 * docs/forensic run under dash (CI must have it: Debian's /bin/dash).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Log } from '../../src/log/log.js';
import { logPaths } from '../../src/log/paths.js';

export const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const scriptsDir = path.join(repo, 'docs/forensic');

/** The dash binary, or a clear failure: the scripts' promise is POSIX sh, and dash checks it. */
export function requireDash(): string {
  const r = spawnSync('sh', ['-c', 'command -v dash'], { encoding: 'utf8' });
  const p = r.stdout.trim();
  if (r.status !== 0 || !p) {
    throw new Error('the forensic tests run the scripts under dash, which is not installed: apt-get install dash (Debian has it at /bin/dash)');
  }
  return p;
}

export interface ScriptResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runScript(dash: string, script: string, args: string[], env: NodeJS.ProcessEnv = {}): ScriptResult {
  const r = spawnSync(dash, [path.join(scriptsDir, script), ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH, ...env },
    maxBuffer: 256 << 20,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * Entry i: varied lengths and every byte value somewhere (NUL, newline, "%", "\", quotes,
 * bytes over 0x7f), unique so that the log's dedup keeps them all.
 */
export function entryFor(i: number): Uint8Array {
  const head = Buffer.from(`entry ${i} `);
  const len = i % 97 === 5 ? 1500 : (i * 7919) % 41;
  const tail = Buffer.alloc(len);
  for (let j = 0; j < len; j++) tail[j] = (i * 31 + j * 17) & 0xff;
  return Buffer.concat([head, tail]);
}

export interface TestLog {
  root: string;
  tilesDir: string;
  historyDir: string;
  log: Log;
  entries: Uint8Array[];
}

/** A log of `size` entries written by the engine in batches (closed on return). */
export async function makeLog(size: number, origin = 'example.com/forensic', batch = 10_000): Promise<TestLog> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'tlog-forensic-'));
  const paths = logPaths({ tilesRoot: path.join(root, 'tiles'), checkpointsRoot: path.join(root, 'checkpoints'), stateRoot: path.join(root, 'state') }, 'default');
  const log = await Log.init(paths, origin);
  const entries: Uint8Array[] = [];
  for (let i = 0; i < size; i++) entries.push(entryFor(i));
  for (let i = 0; i < size; i += batch) await Promise.all(log.appendMany(entries.slice(i, i + batch)));
  await log.close();
  return { root, tilesDir: paths.tilesDir, historyDir: paths.historyDir, log, entries };
}

/** "<index> <hex> ok" lines of tlog-leaves.sh, as a map. */
export function parseLeaves(stdout: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const line of stdout.split('\n')) {
    const m = /^(\d+) ([0-9a-f]{64}) ok$/.exec(line);
    if (m) out.set(Number(m[1]), m[2]!);
  }
  return out;
}

/** The base64 root tlog-root.sh recomputed. */
export function parseRecomputed(stdout: string): string | undefined {
  return /^recomputed +(\S+) /m.exec(stdout)?.[1];
}
