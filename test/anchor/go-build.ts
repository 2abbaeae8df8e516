/**
 * Builds a Go program pinned by a module under test/interop/go/ (a `tool` directive, versions in
 * go.mod/go.sum) into test/interop/go/bin, once: a binary newer than go.mod and go.sum is reused,
 * so test runs do not relink big servers. .ci/run warms the Go build cache the same way.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../helpers/dist.js';

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
 * Builds `pkg` in `moduleDir` to test/interop/go/bin/<name> unless it is newer than go.mod, go.sum
 * and `inputs`; `build(out)` replaces the plain `go build -o out pkg`. Returns the binary's path.
 */
export function buildGoTool(moduleDir: string, pkg: string, name: string, o: { inputs?: string[]; build?: (out: string) => void } = {}): string {
  const binary = path.join(goBinDir, name);
  const inputs = [path.join(moduleDir, 'go.mod'), path.join(moduleDir, 'go.sum'), ...(o.inputs ?? [])].map((f) => statSync(f).mtimeMs);
  if (existsSync(binary) && statSync(binary).mtimeMs >= Math.max(...inputs)) return binary;
  const version = spawnSync('go', ['version'], { encoding: 'utf8' });
  if (version.error || version.status !== 0) {
    throw new Error(`\`go\` is not on PATH: the tests build ${pkg} from ${moduleDir} (${version.error?.message ?? version.stderr})`);
  }
  // Two test files may build at once, and one may be running the binary: build beside it, rename over.
  const tmp = `${binary}.${process.pid}.tmp`;
  mkdirSync(goBinDir, { recursive: true });
  if (o.build) o.build(tmp);
  else {
    const b = spawnSync('go', ['build', '-buildvcs=false', '-o', tmp, pkg], { cwd: moduleDir, env: goEnv(moduleDir), encoding: 'utf8', timeout: 900_000 });
    if (b.error || b.status !== 0) throw new Error(`go build ${pkg} failed: ${b.error?.message ?? ''}\n${b.stderr}`);
  }
  renameSync(tmp, binary);
  return binary;
}
