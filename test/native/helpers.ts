/**
 * Test helpers shared by test/native and test/hot-index: temp directories, and a compiled copy of
 * native/ and src/hot-index/ for child processes (which run plain node, without vitest's TS
 * transform). The copy is compiled with the project's own tsc into a temp directory that
 * links the project's node_modules, so `koffi` resolves as in production.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const REPO = resolve(import.meta.dirname, '../..');
export const FIXTURES = resolve(import.meta.dirname, 'fixtures');

export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `tlog-${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

let built: { dir: string; cleanup: () => void } | undefined;

/** Compiles native/ and src/hot-index/ once per test worker; returns the output root. */
export function compiledTree(): string {
  if (built !== undefined) return built.dir;
  const t = tempDir('build');
  symlinkSync(join(REPO, 'node_modules'), join(t.dir, 'node_modules'));
  const config = {
    extends: join(REPO, 'tsconfig.json'),
    compilerOptions: { outDir: join(t.dir, 'out'), rootDir: REPO, declaration: false, sourceMap: false },
    include: [join(REPO, 'native'), join(REPO, 'src/hot-index')],
  };
  const configPath = join(t.dir, 'tsconfig.json');
  writeFileSync(configPath, JSON.stringify(config));
  execFileSync(join(REPO, 'node_modules/.bin/tsc'), ['-p', configPath], { stdio: 'pipe' });
  // The output must resolve node_modules: put it under the linked directory's parent.
  built = { dir: join(t.dir, 'out'), cleanup: t.cleanup };
  return built.dir;
}

export function cleanupCompiled(): void {
  built?.cleanup();
  built = undefined;
}
