/**
 * The repository, and the compiled tree the tests that spawn processes run: dist/, what
 * `tsc -p tsconfig.json` makes of src/, native/ and witness/ (child processes run plain node,
 * without vitest's TypeScript transform).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The compiled `tlog` command. */
export const tlogBin = path.join(repoRoot, 'dist/src/cli/main.js');
/** The compiled witness command. */
export const witnessBin = path.join(repoRoot, 'dist/witness/main.js');
/** A compiled module of src/, e.g. distModule('log/log.js'), for a script a test runs in a child. */
export const distModule = (rel: string): string => path.join(repoRoot, 'dist/src', rel);

const SOURCES = ['src', 'native', 'witness'];
const ENTRY_POINTS = [tlogBin, witnessBin];

function newestSource(): number {
  let newest = 0;
  for (const dir of SOURCES) {
    for (const name of readdirSync(path.join(repoRoot, dir), { recursive: true }) as string[]) {
      if (name.endsWith('.ts') && !name.endsWith('.d.ts')) newest = Math.max(newest, statSync(path.join(repoRoot, dir, name)).mtimeMs);
    }
  }
  return newest;
}

/** tsc writes every output at each run: entry points newer than every source mean a build of the current sources. */
function fresh(): boolean {
  return ENTRY_POINTS.every(existsSync) && Math.min(...ENTRY_POINTS.map((f) => statSync(f).mtimeMs)) >= newestSource();
}

/**
 * Builds dist/ when it is missing or older than a source file (`npm test` builds first, so
 * there this only looks). Give the hook that calls it time for a build (a few minutes on a
 * busy machine).
 */
export function ensureDist(): void {
  if (fresh()) return;
  const r = spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: repoRoot, encoding: 'utf8', timeout: 240_000 });
  // tsc emits even when some module has a type error; what the tests run must be fresh.
  if (!fresh()) throw new Error(`tsc did not build dist/ from the current sources (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
}
