/** The crash test's child runs the compiled code: build dist/ when it is missing or older than src/. */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function mtimes(dir: string, ext: string): number[] {
  return (readdirSync(dir, { recursive: true }) as string[])
    .filter((n) => n.endsWith(ext) && !n.endsWith('.d.ts'))
    .map((n) => statSync(path.join(dir, n)).mtimeMs);
}

export function ensureDist(): void {
  const wanted = ['anchor/anchorer.js', 'anchor/config.js', 'log/log.js', 'tile-store/paths.js'].map((f) => path.join(repoRoot, 'dist/src', f));
  const fresh =
    wanted.every(existsSync) &&
    Math.min(...wanted.map((f) => statSync(f).mtimeMs)) >=
      Math.max(...mtimes(path.join(repoRoot, 'src'), '.ts'), ...mtimes(path.join(repoRoot, 'native'), '.ts'));
  if (fresh) return;
  const r = spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: repoRoot, encoding: 'utf8', timeout: 240_000 });
  // tsc emits even when some other module has a type error; what the child needs must be fresh.
  const built = wanted.every((f) => existsSync(f) && statSync(f).mtimeMs >= Date.now() - 300_000);
  if (!built) throw new Error(`tsc did not build ${wanted.join(', ')} (${r.status}):\n${r.stdout}\n${r.stderr}`);
}
