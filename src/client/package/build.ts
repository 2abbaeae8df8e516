/**
 * Builds the `tlog-worm-client` package: the verifying client without the server's dependencies,
 * for a user who only verifies (npm install tlog-worm-client pulls @noble/* and nothing else).
 *
 * Why a built package and not an npm workspace: the client shares the pure floor (merkle, tiles,
 * note, errors) with the log engine, file for file. A workspace package must hold its files in
 * its own folder, so it would take either moving the pure floor under src/client (and the engine
 * importing from the client, against the layering) or a second copy. Instead this takes the
 * compiled output (dist/) of the client's entry points and follows their imports: the package
 * holds exactly the modules they reach, whatever those are named, with the layout under dist/src
 * kept (client/index.js still imports ../merkle/hash.js). Its dependencies are the bare imports
 * found on the way, at the exact versions of the root package.json, so the package can neither
 * miss one nor carry one it does not use.
 *
 * Entry points (the package's `exports`):
 *   "."                 client/index.js            (verifying; needs @noble/* only)
 *   "./signed-request"  client/signed-request.js   (signing writes; also http-message-signatures)
 * A package that only the signer needs is an optional peer dependency: a verifier never
 * installs it, a writer installs it beside the client. See src/client/package/README.md.
 *
 *   npm run build:client     # = node dist/src/client/package/build.js dist/client-package
 *   npm pack ./dist/client-package   (or npm publish ./dist/client-package)
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

export const CLIENT_PACKAGE_NAME = 'tlog-worm-client';

/** Subpath -> the compiled module it exports, relative to dist/src (without extension). */
export const CLIENT_ENTRY_POINTS: Readonly<Record<string, string>> = {
  '.': 'client/index',
  './signed-request': 'client/signed-request',
};

/** The entry point whose bare imports are the package's dependencies; the others' are optional peers. */
const MAIN_ENTRY = '.';

export interface ClientPackage {
  readonly dir: string;
  /** Files written, relative to dir, sorted. */
  readonly files: readonly string[];
  readonly dependencies: Readonly<Record<string, string>>;
  readonly peerDependencies: Readonly<Record<string, string>>;
}

/** Module specifiers of a compiled .js or .d.ts file: static and dynamic imports, re-exports. */
export function moduleSpecifiers(text: string): string[] {
  const out: string[] = [];
  const patterns = [
    /^\s*(?:import|export)\s[^'";]*?\sfrom\s*['"]([^'"]+)['"]/gm,
    /^\s*import\s*['"]([^'"]+)['"]/gm,
    /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
    /^\/\/\/\s*<reference\s+path=['"]([^'"]+)['"]/gm,
  ];
  for (const re of patterns) for (const m of text.matchAll(re)) out.push(m[1]!);
  return out;
}

/** The npm package a bare specifier names: `@noble/curves/ed25519.js` -> `@noble/curves`. */
export function packageOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

interface Closure {
  /** Modules reached, relative to dist/src, without extension. */
  readonly modules: Set<string>;
  /** npm packages imported by them. */
  readonly packages: Set<string>;
}

/**
 * Follows the imports of `ext` files (.js for what runs, .d.ts for what a type checker reads)
 * from the entry modules, within distSrc.
 */
function closure(distSrc: string, entries: readonly string[], ext: '.js' | '.d.ts'): Closure {
  const modules = new Set<string>();
  const packages = new Set<string>();
  const queue = [...entries];
  while (queue.length > 0) {
    const mod = queue.pop()!;
    if (modules.has(mod)) continue;
    const file = path.join(distSrc, mod + ext);
    if (!existsSync(file)) throw new Error(`${file} is missing: run \`npx tsc -p tsconfig.json\` first`);
    modules.add(mod);
    for (const spec of moduleSpecifiers(readFileSync(file, 'utf8'))) {
      if (spec.startsWith('.')) {
        const target = path.relative(distSrc, path.resolve(path.dirname(file), spec)).replace(/\.(d\.ts|js)$/, '');
        if (target.startsWith('..') || path.isAbsolute(target)) throw new Error(`${file} imports ${spec}, outside dist/src: the client package cannot hold it`);
        queue.push(target.split(path.sep).join('/'));
      } else if (!isBuiltin(spec)) {
        packages.add(packageOf(spec));
      }
    }
  }
  return { modules, packages };
}

/** The text of a compiled file as shipped: without the source map comment (no maps are shipped). */
function shippedText(file: string): string {
  return readFileSync(file, 'utf8').replace(/^\/\/# sourceMappingURL=.*\n?/m, '');
}

/** Empties `dir` when it is absent, empty, or an earlier build of this package; refuses anything else. */
function prepareOutDir(dir: string): void {
  if (existsSync(dir) && readdirSync(dir).length > 0) {
    let name: unknown;
    try {
      name = (JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: unknown }).name;
    } catch {
      name = undefined;
    }
    if (name !== CLIENT_PACKAGE_NAME) throw new Error(`${dir} is not empty and not an earlier ${CLIENT_PACKAGE_NAME} build: refusing to replace it`);
    rmSync(dir, { recursive: true });
  }
  mkdirSync(dir, { recursive: true });
}

/** Writes the client package into `out` from the compiled tree of the repository at `repo`. */
export function buildClientPackage(repo: string, out: string): ClientPackage {
  const root = JSON.parse(readFileSync(path.join(repo, 'package.json'), 'utf8')) as {
    version: string;
    license: string;
    engines: Record<string, string>;
    dependencies: Record<string, string>;
  };
  const distSrc = path.join(repo, 'dist', 'src');
  const pinned = (pkg: string, by: string): string => {
    const v = root.dependencies[pkg];
    if (v === undefined) throw new Error(`${by} imports ${pkg}, which is not a dependency in package.json`);
    return v;
  };

  const js = new Set<string>();
  const dts = new Set<string>();
  const dependencies: Record<string, string> = {};
  const peers: Record<string, string> = {};
  const exportsMap: Record<string, unknown> = {};
  // The main entry first, so that what it needs is a dependency and never only a peer.
  const subpaths = [MAIN_ENTRY, ...Object.keys(CLIENT_ENTRY_POINTS).filter((s) => s !== MAIN_ENTRY)];
  for (const subpath of subpaths) {
    const entry = CLIENT_ENTRY_POINTS[subpath]!;
    const run = closure(distSrc, [entry], '.js');
    const types = closure(distSrc, [entry], '.d.ts');
    run.modules.forEach((m) => js.add(m));
    types.modules.forEach((m) => dts.add(m));
    for (const pkg of [...run.packages, ...types.packages].sort()) {
      if (subpath === MAIN_ENTRY) dependencies[pkg] = pinned(pkg, entry);
      else if (!(pkg in dependencies)) peers[pkg] = pinned(pkg, entry);
    }
    exportsMap[subpath] = { types: `./${entry}.d.ts`, default: `./${entry}.js` };
  }
  exportsMap['./package.json'] = './package.json';

  prepareOutDir(out);
  const files: string[] = [];
  const put = (rel: string, text: string) => {
    mkdirSync(path.dirname(path.join(out, rel)), { recursive: true });
    writeFileSync(path.join(out, rel), text);
    files.push(rel);
  };
  for (const m of js) put(`${m}.js`, shippedText(path.join(distSrc, `${m}.js`)));
  for (const m of dts) put(`${m}.d.ts`, readFileSync(path.join(distSrc, `${m}.d.ts`), 'utf8'));
  copyFileSync(path.join(repo, 'src', 'client', 'package', 'README.md'), path.join(out, 'README.md'));
  files.push('README.md');

  // The signer's RFC 9421 library as the range npm users expect of a peer (the pinned version
  // and later compatible ones): a writer installs it beside the client, a verifier never does.
  const peerDependencies = Object.fromEntries(Object.entries(peers).map(([k, v]) => [k, `^${v}`]));
  const manifest = {
    name: CLIENT_PACKAGE_NAME,
    version: root.version,
    description:
      'Verifying client for C2SP tlog-tiles logs: signed-note checkpoints (Ed25519, ML-DSA-44), witness policies, inclusion and consistency proofs, monitoring. The client of tlog-worm without its server.',
    license: root.license,
    type: 'module',
    engines: root.engines,
    exports: exportsMap,
    dependencies,
    ...(Object.keys(peers).length > 0
      ? { peerDependencies, peerDependenciesMeta: Object.fromEntries(Object.keys(peers).map((k) => [k, { optional: true }])) }
      : {}),
  };
  put('package.json', JSON.stringify(manifest, null, 2) + '\n');
  return { dir: out, files: files.sort(), dependencies, peerDependencies };
}

// `node dist/src/client/package/build.js <out dir>`, from the repository's root.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const out = process.argv[2];
  const repo = process.cwd();
  try {
    if (!out) throw new Error('usage: node dist/src/client/package/build.js <out dir>');
    const name = (JSON.parse(readFileSync(path.join(repo, 'package.json'), 'utf8')) as { name?: string }).name;
    if (name !== 'tlog-worm') throw new Error('run it from the tlog-worm repository root');
    const pkg = buildClientPackage(repo, path.resolve(out));
    const deps = Object.entries(pkg.dependencies)
      .map(([k, v]) => `${k}@${v}`)
      .join(', ');
    const peerList = Object.entries(pkg.peerDependencies)
      .map(([k, v]) => `${k}@${v}`)
      .join(', ');
    console.log(`${CLIENT_PACKAGE_NAME}: ${pkg.files.length} files in ${out}; dependencies ${deps}${peerList ? `; optional peers ${peerList}` : ''}`);
  } catch (e) {
    console.error(`build-client: ${(e as Error).message}`);
    process.exitCode = 1;
  }
}
