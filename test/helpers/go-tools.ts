/**
 * Go programs the tests build from modules under test/interop/go/ (a `tool` directive or a small
 * main package, versions pinned in go.mod/go.sum) and run: built once into test/interop/go/bin,
 * where a binary newer than its module's go.mod, go.sum and .go files is reused, so test runs do
 * not relink big servers. A missing `go` fails loudly: CI installs Go, so these tests must not
 * skip. .ci/run warms the Go build cache the same way.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from './dist.js';

export const goBinDir = path.join(repoRoot, 'test/interop/go/bin');

/**
 * The environment for the go command in a module: a `toolchain goX.Y.Z` line in its go.mod is
 * passed as GOTOOLCHAIN (the installed Go defaults to "local", which would refuse the module).
 */
export function goEnv(moduleDir: string): NodeJS.ProcessEnv {
  const tc = /^toolchain\s+(\S+)\s*$/m.exec(readFileSync(path.join(moduleDir, 'go.mod'), 'utf8'))?.[1];
  return tc ? { ...process.env, GOTOOLCHAIN: tc } : { ...process.env };
}

/**
 * Builds `pkg` in `moduleDir` to test/interop/go/bin/<name> unless it is newer than go.mod, go.sum,
 * the module's own .go files and `inputs`; `build(out)` replaces the plain `go build -o out pkg`.
 * Returns the binary's path.
 */
export function buildGoTool(moduleDir: string, pkg: string, name: string, o: { inputs?: string[]; build?: (out: string) => void } = {}): string {
  const binary = path.join(goBinDir, name);
  const sources = readdirSync(moduleDir)
    .filter((f) => f.endsWith('.go'))
    .map((f) => path.join(moduleDir, f));
  const inputs = [path.join(moduleDir, 'go.mod'), path.join(moduleDir, 'go.sum'), ...sources, ...(o.inputs ?? [])].map((f) => statSync(f).mtimeMs);
  if (existsSync(binary) && statSync(binary).mtimeMs >= Math.max(...inputs)) return binary;
  const version = spawnSync('go', ['version'], { encoding: 'utf8' });
  if (version.error || version.status !== 0) {
    throw new Error(`\`go\` is not on PATH: the tests build ${pkg} from ${moduleDir} and need Go >= 1.26 (${version.error?.message ?? version.stderr})`);
  }
  // Two test files may build at once, and one may be running the binary: build beside it, rename over.
  const tmp = `${binary}.${process.pid}.tmp`;
  mkdirSync(goBinDir, { recursive: true });
  if (o.build) o.build(tmp);
  else {
    const b = spawnSync('go', ['build', '-buildvcs=false', '-o', tmp, pkg], { cwd: moduleDir, env: goEnv(moduleDir), encoding: 'utf8', timeout: 900_000 });
    if (b.error || b.status !== 0) throw new Error(`go build ${pkg} failed (${version.stdout.trim()}): ${b.error?.message ?? ''}\n${b.stderr}`);
  }
  renameSync(tmp, binary);
  return binary;
}

export interface JsonRun<T> {
  code: number | null;
  /** The last line the program printed on stdout, parsed. */
  summary: T;
  stderr: string;
}

/**
 * Runs a checker that ends by printing one line of JSON, asynchronously (a server in this
 * process may have to answer it); fails if that line is not JSON.
 */
export function runJsonTool<T>(binary: string, args: string[]): Promise<JsonRun<T>> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const line = stdout.trim().split('\n').pop() ?? '';
      let summary: T;
      try {
        summary = JSON.parse(line) as T;
      } catch {
        reject(new Error(`${path.basename(binary)} (exit ${code}) printed no JSON summary: stdout ${JSON.stringify(stdout)} stderr ${stderr}`));
        return;
      }
      resolve({ code, summary, stderr });
    });
  });
}
