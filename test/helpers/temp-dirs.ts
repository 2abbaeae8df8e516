/**
 * Temporary directories for tests, and the data roots of a log service inside one (the layout
 * `tlog` uses by default: tiles/, checkpoints/ and state/ side by side).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import type { DataRoots } from '../../src/tile-store/paths.js';

/** A new empty directory under the OS temp directory, named `<prefix>` and six random characters. */
export function makeTempDir(prefix: string): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Removes a directory and everything in it; one that is already gone is fine. */
export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** The data roots of a service in `dir`: dir/tiles, dir/checkpoints and dir/state. */
export function dataRootsIn(dir: string): DataRoots {
  return { tilesRoot: path.join(dir, 'tiles'), checkpointsRoot: path.join(dir, 'checkpoints'), stateRoot: path.join(dir, 'state') };
}

/** A new temporary directory and the data roots in it. */
export function tempDataRoots(prefix: string): { dir: string; roots: DataRoots } {
  const dir = makeTempDir(prefix);
  return { dir, roots: dataRootsIn(dir) };
}

/** A temporary directory made by the `make` hook and removed by the `remove` hook of vitest. */
function hookedTempDir(prefix: string, make: (fn: () => void) => void, remove: (fn: () => void) => void): { readonly dir: string } {
  let dir = '';
  make(() => {
    dir = makeTempDir(prefix);
  });
  remove(() => removeDir(dir));
  return {
    get dir() {
      return dir;
    },
  };
}

/**
 * A new temporary directory for each test of the enclosing describe block (or file): made in a
 * beforeEach, removed in an afterEach. Read `.dir` in a test or in a hook registered after it.
 */
export const tempDirPerTest = (prefix: string): { readonly dir: string } => hookedTempDir(prefix, beforeEach, afterEach);

/**
 * A new temporary directory for all the tests of the enclosing describe block (or file): made
 * in a beforeAll, removed in an afterAll. Read `.dir` in a test or in a hook registered after it.
 */
export const tempDirPerFile = (prefix: string): { readonly dir: string } => hookedTempDir(prefix, beforeAll, afterAll);
