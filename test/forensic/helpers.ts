/**
 * Shared by the forensic tests: logs written by the engine, and the POSIX sh scripts of
 * docs/forensic run in two userlands, each the whole PATH of the scripts: busybox's sh and
 * applets alone (its awk has no exponentiation, its printf %d stops at 2^31), and dash with
 * gawk in --posix mode and only the GNU coreutils the scripts document. CI installs busybox,
 * gawk and dash (.ci/run).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Log } from '../../src/log/log.js';
import { logPaths } from '../../src/tile-store/paths.js';
import { makeTempDir, removeDir, tempDataRoots } from '../helpers/temp-dirs.js';
import { repoRoot } from '../helpers/dist.js';

export const scriptsDir = path.join(repoRoot, 'docs/forensic');

/** A userland for the scripts: `dir` is their whole PATH, and holds `sh`. */
export interface Shell {
  readonly name: string;
  readonly dir: string;
  /** The sh the scripts run under (dir/sh). */
  readonly sh: string;
}

const made: string[] = [];

/** Removes the directories the shells below made. */
export function cleanupShells(): void {
  for (const d of made.splice(0)) removeDir(d);
}

/** The absolute path of a program on the test's PATH, or a clear failure saying how to get it. */
function need(cmd: string, pkg: string): string {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  const p = r.stdout.trim();
  if (r.status !== 0 || !p.startsWith('/')) {
    throw new Error(`the forensic tests need ${cmd}, which is not installed: apt-get install ${pkg} (.ci/run does)`);
  }
  return p;
}

function toolDir(prefix: string): string {
  const d = makeTempDir(`tlog-forensic-${prefix}-`);
  made.push(d);
  return d;
}

/** openssl verifies the signatures in tlog-checkpoint.sh; neither userland has one of its own. */
const OPENSSL = () => need('openssl', 'openssl');

/** busybox's sh and every applet it has (`busybox --list`), and nothing else but openssl if asked. */
export function busyboxShell(o: { openssl?: boolean } = {}): Shell {
  const bb = need('busybox', 'busybox');
  const dir = toolDir('busybox');
  const applets = spawnSync(bb, ['--list'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
  if (!applets.includes('sh') || !applets.includes('awk')) throw new Error(`busybox ${bb} has no sh or awk applet`);
  for (const a of applets) symlinkSync(bb, path.join(dir, a));
  if (o.openssl ?? true) symlinkSync(OPENSSL(), path.join(dir, 'openssl'));
  return { name: o.openssl === false ? 'busybox without openssl' : 'busybox', dir, sh: path.join(dir, 'sh') };
}

/** The tools lib.sh documents, beside sh and awk: a script that needs another one fails here. */
const GNU_TOOLS = ['cat', 'cp', 'mkdir', 'mv', 'od', 'rm', 'sha256sum', 'wc'];

/** dash as sh, gawk --posix as awk, the GNU coreutils of GNU_TOOLS, and openssl. */
export function dashGnuShell(): Shell {
  const dash = need('dash', 'dash');
  const gawk = need('gawk', 'gawk');
  const dir = toolDir('dash-gnu');
  symlinkSync(dash, path.join(dir, 'sh'));
  writeFileSync(path.join(dir, 'awk'), `#!${dash}\nexec ${gawk} --posix "$@"\n`, { mode: 0o755 });
  for (const t of GNU_TOOLS) symlinkSync(need(t, 'coreutils'), path.join(dir, t));
  symlinkSync(OPENSSL(), path.join(dir, 'openssl'));
  return { name: 'dash + GNU', dir, sh: path.join(dir, 'sh') };
}

/**
 * A copy of a shell whose `tool` is replaced by a stub: a small sh script (run by dash) with
 * the given body, e.g. `exit 0` for a tool that succeeds and prints nothing.
 */
export function withStub(base: Shell, tool: string, body: string): Shell {
  const dash = need('dash', 'dash');
  const dir = toolDir(`stub-${tool}`);
  for (const name of readdirSync(base.dir)) {
    if (name !== tool) symlinkSync(path.join(base.dir, name), path.join(dir, name));
  }
  writeFileSync(path.join(dir, tool), `#!${dash}\n${body}\n`, { mode: 0o755 });
  return { name: `${base.name}, ${tool} stubbed`, dir, sh: path.join(dir, 'sh') };
}

export interface ScriptResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a script of docs/forensic under `shell`, with the shell's directory as the whole PATH. */
export function runScript(shell: Shell, script: string, args: string[], env: NodeJS.ProcessEnv = {}): ScriptResult {
  const r = spawnSync(shell.sh, [path.join(scriptsDir, script), ...args], {
    encoding: 'utf8',
    env: { PATH: shell.dir, ...env },
    maxBuffer: 256 << 20,
  });
  if (r.error) throw r.error;
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
  const { dir: root, roots } = tempDataRoots('tlog-forensic-');
  const paths = logPaths(roots, 'default');
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
