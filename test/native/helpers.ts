/**
 * Test helpers shared by test/native and test/hot-index: the mapped-file backends this machine
 * has, and a compiled copy of native/ and src/hot-index/ for child processes (which run plain
 * node, without vitest's TS transform). The copy is compiled with the project's own tsc into a
 * temp directory that links the project's node_modules, so `koffi` resolves as in production.
 */
import { execFileSync } from 'node:child_process';
import { symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { nativeAvailable, type MappedFileBackend } from '../../native/index.js';
import { repoRoot } from '../helpers/dist.js';
import { makeTempDir, removeDir } from '../helpers/temp-dirs.js';

export const FIXTURES = resolve(import.meta.dirname, 'fixtures');

/** The backends each mapped-file and index test runs on: plain files always, mmap where koffi loads. */
export const mappedFileBackends: MappedFileBackend[] = nativeAvailable ? ['mmap', 'plain'] : ['plain'];

let built: { root: string; out: string } | undefined;

/** Compiles native/ and src/hot-index/ once per test worker; returns the output root. */
export function compiledTree(): string {
  if (built !== undefined) return built.out;
  const root = makeTempDir('tlog-build-');
  symlinkSync(join(repoRoot, 'node_modules'), join(root, 'node_modules'));
  const config = {
    extends: join(repoRoot, 'tsconfig.json'),
    compilerOptions: { outDir: join(root, 'out'), rootDir: repoRoot, declaration: false, sourceMap: false },
    include: [join(repoRoot, 'native'), join(repoRoot, 'src/hot-index')],
  };
  const configPath = join(root, 'tsconfig.json');
  writeFileSync(configPath, JSON.stringify(config));
  execFileSync(join(repoRoot, 'node_modules/.bin/tsc'), ['-p', configPath], { stdio: 'pipe' });
  // The output must resolve node_modules: put it under the linked directory's parent.
  built = { root, out: join(root, 'out') };
  return built.out;
}

export function cleanupCompiled(): void {
  if (built) removeDir(built.root);
  built = undefined;
}
