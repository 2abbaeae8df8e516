/**
 * The tlog-worm-client package as a user gets it: built from dist/ (src/client/package/build.ts),
 * packed with `npm pack`, and installed from the tarball into an empty project.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildClientPackage, CLIENT_PACKAGE_NAME } from '../../src/client/package/build.js';
import { repoRoot } from '../helpers/dist.js';

export interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs npm (the one running this test when there is one, else the one on PATH). */
export function npm(args: string[], cwd: string, timeoutMs = 120_000): Run {
  const cli = process.env.npm_execpath;
  const [cmd, pre] = cli && cli.endsWith('.js') ? [process.execPath, [cli]] : ['npm', []];
  const r = spawnSync(cmd, [...pre, ...args, '--no-audit', '--no-fund', '--no-update-notifier'], { cwd, encoding: 'utf8', timeout: timeoutMs });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function node(args: string[], cwd: string, env: Record<string, string> = {}): Promise<Run> {
  // Asynchronous: the log being read is served by this process.
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd, env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

export interface PackedClient {
  readonly tarball: string;
  readonly manifest: {
    name: string;
    version: string;
    dependencies: Record<string, string>;
    peerDependencies?: Record<string, string>;
    peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  };
  readonly files: readonly string[];
}

/** Builds the package into dir/package and packs it into dir; the tarball's path. */
export function packClient(dir: string): PackedClient {
  const built = buildClientPackage(repoRoot, path.join(dir, 'package'));
  const r = npm(['pack', built.dir, '--pack-destination', dir, '--json'], dir);
  if (r.status !== 0) throw new Error(`npm pack failed: ${r.stderr}`);
  const [info] = JSON.parse(r.stdout) as { filename: string; files: { path: string }[] }[];
  return {
    tarball: path.join(dir, info!.filename),
    manifest: JSON.parse(readFileSync(path.join(built.dir, 'package.json'), 'utf8')) as PackedClient['manifest'],
    files: info!.files.map((f) => f.path).sort(),
  };
}

interface LockEntry {
  version: string;
  resolved?: string;
  integrity?: string;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  [k: string]: unknown;
}

/**
 * An empty project that depends on the tarball (and `extra`, by name and version), installed
 * with `npm ci --offline`: every registry package comes from the npm cache, which `npm ci` of
 * this repository filled. (`npm install <tarball> --offline` cannot do it: it wants the full
 * registry documents of the dependencies, which `npm ci` does not keep.) Its lockfile is what
 * `npm install` would write, taken from this repository's lockfile for the registry packages:
 * the same versions and integrity hashes, so what is installed is exactly what the client's
 * manifest asks for (npm ci refuses a lockfile that does not satisfy it).
 */
export function offlineProject(dir: string, client: PackedClient, extra: Record<string, string> = {}): Run {
  mkdirSync(dir, { recursive: true });
  const rootLock = JSON.parse(readFileSync(path.join(repoRoot, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
  const tarballSpec = `file:${path.relative(dir, client.tarball)}`;
  const dependencies = { [CLIENT_PACKAGE_NAME]: tarballSpec, ...extra };
  const m = client.manifest;
  const deps = m.dependencies;
  const packages: Record<string, LockEntry> = {
    [`node_modules/${CLIENT_PACKAGE_NAME}`]: {
      version: m.version,
      resolved: tarballSpec,
      dependencies: deps,
      peerDependencies: m.peerDependencies,
      peerDependenciesMeta: m.peerDependenciesMeta,
    },
  };
  const queue = [...Object.keys(deps), ...Object.keys(extra)];
  while (queue.length > 0) {
    const name = queue.shift()!;
    const key = `node_modules/${name}`;
    if (packages[key]) continue;
    const from = rootLock.packages[key];
    if (!from) throw new Error(`${name} is not in package-lock.json`);
    // As a dependency of this project: not the repository's dev, optional or peer package.
    const entry: LockEntry = { ...from };
    for (const flag of ['dev', 'devOptional', 'optional', 'peer']) delete entry[flag];
    packages[key] = entry;
    queue.push(...Object.keys(entry.dependencies ?? {}));
    for (const [peer] of Object.entries(entry.peerDependencies ?? {})) if (!entry.peerDependenciesMeta?.[peer]?.optional) queue.push(peer);
  }
  const project = { name: path.basename(dir), version: '0.0.0', private: true, type: 'module', dependencies };
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify(project, null, 2) + '\n');
  const lock = {
    name: project.name,
    version: '0.0.0',
    lockfileVersion: 3,
    requires: true,
    packages: { '': { name: project.name, version: '0.0.0', dependencies }, ...packages },
  };
  writeFileSync(path.join(dir, 'package-lock.json'), JSON.stringify(lock, null, 2) + '\n');
  return npm(['ci', '--offline', '--ignore-scripts'], dir);
}

/** `name@version` of every package installed under dir, as `npm ls --all --parseable` lists them. */
export function installedPackages(dir: string): string[] {
  const r = npm(['ls', '--all', '--parseable'], dir);
  if (r.status !== 0) throw new Error(`npm ls failed: ${r.stderr}`);
  return r.stdout
    .split('\n')
    .filter((p) => p !== '' && path.resolve(p) !== path.resolve(dir))
    .map((p) => {
      const m = JSON.parse(readFileSync(path.join(p, 'package.json'), 'utf8')) as { name: string; version: string };
      return `${m.name}@${m.version}`;
    })
    .sort();
}

/** Bytes of every file under dir (apparent sizes, as `du -sb`). */
export function treeBytes(dir: string): number {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) total += treeBytes(p);
    else if (e.isFile()) total += statSync(p).size;
  }
  return total;
}

/** The ```js blocks of a Markdown file that import `module`. */
export function jsBlocksImporting(markdown: string, module: string): string[] {
  return [...markdown.matchAll(/^```js\n([\s\S]*?)^```$/gm)].map((m) => m[1]!).filter((code) => new RegExp(`from '${module}'`).test(code));
}
