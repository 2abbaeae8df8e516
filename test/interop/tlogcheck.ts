/**
 * The golang.org/x/mod checker in test/interop/go/tlogcheck: building it once per test file and
 * running it. A missing `go` fails loudly: CI installs Go, so these tests must not skip.
 */
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const moduleDir = path.join(here, 'go', 'tlogcheck');
export const checker = path.join(here, 'go', 'bin', 'tlogcheck');

export function buildChecker(): void {
  const version = spawnSync('go', ['version'], { encoding: 'utf8' });
  if (version.error || version.status !== 0) {
    throw new Error(
      '`go` is not on PATH (or does not run): the interop tests build the golang.org/x/mod checker in ' +
        `test/interop/go/tlogcheck and need Go >= 1.26. Install Go and put it on PATH. (${version.error?.message ?? version.stderr})`,
    );
  }
  const build = spawnSync('go', ['build', '-buildvcs=false', '-o', checker, './...'], { cwd: moduleDir, encoding: 'utf8', timeout: 180_000 });
  if (build.error || build.status !== 0) {
    throw new Error(`go build of ${moduleDir} failed (${version.stdout.trim()}): ${build.error?.message ?? ''}\n${build.stderr}`);
  }
}

export interface Signature {
  name: string;
  keyID: string;
  bytes: number;
  verified: boolean;
}

export interface HeaderSet {
  requests: number;
  contentType: string[];
  cacheControl: string[];
  contentEncoding: string[];
}

/** The checker's one line of JSON. */
export interface Summary {
  ok: boolean;
  origin: string;
  treeSize: number;
  rootHash: string;
  extensions: string[];
  signatures: Signature[] | null;
  entries: number;
  bundles: number;
  tiles: number;
  partialFallbacks: number;
  recordProofs: number;
  inclusion: { index: number; proof: string[] }[];
  consistency: { location: string; oldSize: number; oldRoot: string; proof: string[] }[];
  layout?: { files: number; stalePartials: number };
  http?: Record<string, HeaderSet>;
  stage?: string;
  error?: string;
}

export interface CheckResult {
  code: number | null;
  summary: Summary;
  stderr: string;
}

/** Runs the checker (asynchronously: a server in this process may have to answer it). */
export function runCheck(args: string[]): Promise<CheckResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(checker, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const line = stdout.trim().split('\n').pop() ?? '';
      let summary: Summary;
      try {
        summary = JSON.parse(line) as Summary;
      } catch {
        reject(new Error(`tlogcheck (exit ${code}) printed no JSON summary: stdout ${JSON.stringify(stdout)} stderr ${stderr}`));
        return;
      }
      resolve({ code, summary, stderr });
    });
  });
}
