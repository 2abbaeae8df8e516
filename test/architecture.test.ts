/**
 * The dependency direction of docs/design.md (Layers), README's "Layout of the code" and each src/ folder's README.md, checked from import lines: low to
 * high, native -> errors, decimals and the logger interface -> merkle -> the other pure spec modules (tiles, note,
 * signed-write) -> durable files, object stores and index -> tile store -> log engine -> leases
 * and logs over an object store (cluster) -> witness client, anchoring, verifying client, witness service ->
 * tenants -> HTTP -> CLI. Nothing imports upward, and folders of one rank do not import each
 * other: what two of them share sits lower (a witness policy is parsed in note/, not in
 * witness-client/, because the verifying client needs it too). witness/ uses only the pure
 * modules, durable files and native/ (and the engine's choice of ML-DSA-44 implementation).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { repoRoot } from './helpers/dist.js';

/** Layer of a repository-relative source path. */
function layerOf(rel: string): [string, number] {
  const table: [RegExp, string, number][] = [
    [/^native\//, 'native', 0],
    [/^src\/errors\.ts$/, 'errors', 1],
    [/^src\/logger\.ts$/, 'logger', 1],
    [/^src\/decimal\.ts$/, 'decimal', 1],
    [/^src\/merkle\//, 'merkle', 2],
    [/^src\/tiles\//, 'tiles', 3],
    [/^src\/note\//, 'note', 3],
    [/^src\/signed-write\//, 'signed-write', 3],
    [/^src\/storage\//, 'storage', 4],
    [/^src\/hot-index\//, 'hot-index', 4],
    // Leases over an object store, and the log whose truth is the store (store-log.ts): above the
    // engine (it opens logs through it), below what runs tenants.
    [/^src\/cluster\//, 'cluster', 5.5],
    // The engine's files (tiles, bundles, checkpoints) over durable files: what a storage driver replaces.
    [/^src\/tile-store\//, 'tile-store', 4.6],
    [/^src\/log\//, 'log', 5],
    [/^src\/config\//, 'config', 6],
    [/^src\/client\//, 'client', 6],
    [/^src\/witness-client\//, 'witness-client', 6],
    [/^src\/anchor\//, 'anchor', 6],
    [/^witness\//, 'witness', 6],
    [/^src\/tenants\//, 'tenants', 7],
    [/^src\/http\//, 'http', 8],
    [/^src\/cli\//, 'cli', 9],
    [/^src\/index\.ts$/, 'package', 9],
  ];
  for (const [re, name, rank] of table) if (re.test(rel)) return [name, rank];
  throw new Error(`no layer for ${rel}`);
}

function sources(dir: string): string[] {
  return readdirSync(path.join(repoRoot, dir), { recursive: true })
    .map((n) => path.join(dir, String(n)))
    .filter((p) => p.endsWith('.ts') && !p.endsWith('.d.ts') && statSync(path.join(repoRoot, p)).isFile());
}

/** The pure spec modules: no I/O. */
const PURE = ['decimal', 'merkle', 'tiles', 'note', 'signed-write'];

/**
 * The CLI may import the witness service, but only its command (witness/main.ts): `tlog witness
 * serve` is the same program as the witness's own bin, mounted as a subcommand so one install
 * gives both. Nothing else of src/ reaches into witness/ (its keys, state, evidence), so the
 * witness stays a service of its own that shares only the pure floor, durable files and native/
 * with the log, and could ship alone.
 */
const WITNESS_ENTRY = 'witness/main.ts';

/**
 * The one file of the engine's folder the witness uses: which ML-DSA-44 implementation the
 * process signs with (it imports nothing but errors), so the witness cosigns as fast as the log.
 */
const SHARED_SIGNER_CHOICE = 'src/log/mldsa-backend.ts';

it('no module imports a higher layer or a folder of its own rank, and witness/ and src/client stay off the engine', () => {
  const problems: string[] = [];
  for (const file of [...sources('native'), ...sources('src'), ...sources('witness')]) {
    const [layer, rank] = layerOf(file);
    const text = readFileSync(path.join(repoRoot, file), 'utf8');
    const specifiers = [
      ...text.matchAll(/^(?:import|export)[^'"]*?from\s+['"](\.[^'"]+)['"]/gm),
      ...text.matchAll(/^import\s+['"](\.[^'"]+)['"]/gm),
      ...text.matchAll(/\bimport\(\s*['"](\.[^'"]+)['"]\s*\)/g),
    ];
    for (const m of specifiers) {
      const target = path.relative(repoRoot, path.resolve(path.dirname(path.join(repoRoot, file)), m[1]!)).replace(/\.js$/, '.ts');
      const [tLayer, tRank] = layerOf(target);
      if (tRank > rank) problems.push(`${file} (${layer}) imports ${target} (${tLayer})`);
      if (tRank === rank && tLayer !== layer) problems.push(`${file} (${layer}) imports ${target} (${tLayer}), a folder of its own rank`);
      if (tLayer === 'witness' && layer !== 'witness' && !(layer === 'cli' && target === WITNESS_ENTRY))
        problems.push(`${file}: only the CLI imports witness/, and only ${WITNESS_ENTRY} (${target})`);
      if (layer === 'witness' && target !== SHARED_SIGNER_CHOICE && !['note', 'merkle', 'decimal', 'storage', 'errors', 'native', 'witness'].includes(tLayer))
        problems.push(`${file}: witness/ imports ${target}`);
      if (layer === 'client' && ['log', 'hot-index', 'tile-store'].includes(tLayer))
        problems.push(`${file}: the verifying client imports the engine (${target})`);
      // What the service and a client share (the signed-write profile, notes, policies) is on the
      // pure floor; the service never runs client code.
      if (['tenants', 'http'].includes(layer) && tLayer === 'client') problems.push(`${file}: the service imports the verifying client (${target})`);
      if (PURE.includes(layer) && ['storage', 'hot-index', 'native'].includes(tLayer)) problems.push(`${file}: a pure module imports I/O (${target})`);
    }
    if (PURE.includes(layer) && /from ['"]node:fs/.test(text)) problems.push(`${file}: a pure module uses node:fs`);
  }
  expect(problems).toEqual([]);
});

/** The layers a folder's README.md says it may import ("May import: a, b, c."), or null for any. */
function mayImport(folder: string): Set<string> | null {
  const text = readFileSync(path.join(repoRoot, 'src', folder, 'README.md'), 'utf8');
  const m = /^May import: ([^\n]+(?:\n[^\n]+)*)/m.exec(text);
  if (!m) throw new Error(`src/${folder}/README.md has no "May import:" line`);
  if (/^any layer/.test(m[1]!)) return null;
  return new Set(
    m[1]!
      .replace(/\([^)]*\)/g, '')
      .split(',')
      .map((s) => s.trim().replace(/\.$/, '').replace(/\/$/, ''))
      .filter((s) => s !== ''),
  );
}

it('every folder of src/ says in its README.md what it owns and what it may import, and imports only that', () => {
  const problems: string[] = [];
  const folders = readdirSync(path.join(repoRoot, 'src'), { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name);
  expect(folders.length).toBeGreaterThan(10);
  for (const folder of folders) {
    if (!existsSync(path.join(repoRoot, 'src', folder, 'README.md'))) {
      problems.push(`src/${folder} has no README.md`);
      continue;
    }
    if (!/^Owns: /m.test(readFileSync(path.join(repoRoot, 'src', folder, 'README.md'), 'utf8')))
      problems.push(`src/${folder}/README.md does not say what it owns ("Owns: ...")`);
    const allowed = mayImport(folder);
    const [own, rank] = layerOf(`src/${folder}/x.ts`);
    for (const name of allowed ?? []) {
      const known = layerNames().get(name);
      if (known === undefined) problems.push(`src/${folder}/README.md names an unknown layer "${name}"`);
      else if (known > rank) problems.push(`src/${folder}/README.md allows the higher layer ${name}`);
    }
    if (!allowed) continue;
    for (const file of sources(`src/${folder}`)) {
      const text = readFileSync(path.join(repoRoot, file), 'utf8');
      for (const m of text.matchAll(/^(?:import|export)[^'"]*?from\s+['"](\.[^'"]+)['"]/gm)) {
        const target = path.relative(repoRoot, path.resolve(path.dirname(path.join(repoRoot, file)), m[1]!)).replace(/\.js$/, '.ts');
        const [layer] = layerOf(target);
        if (layer !== own && !allowed.has(layer)) problems.push(`${file} imports ${target} (${layer}), which src/${folder}/README.md does not allow`);
      }
    }
  }
  expect(problems).toEqual([]);
});

/** Every layer's name and rank, from layerOf's table. */
function layerNames(): Map<string, number> {
  const probes = ['native/x.ts', 'src/errors.ts', 'src/logger.ts', 'src/decimal.ts', 'witness/x.ts', 'src/index.ts'];
  for (const d of readdirSync(path.join(repoRoot, 'src'), { withFileTypes: true })) if (d.isDirectory()) probes.push(`src/${d.name}/x.ts`);
  return new Map(probes.map((p) => layerOf(p)));
}

it('canonical decimals are parsed in one place, src/decimal.ts', () => {
  const written = [...sources('native'), ...sources('src'), ...sources('witness'), ...sources('bench')]
    .filter((f) => f !== path.join('src', 'decimal.ts'))
    .filter((f) => /\[1-9\](\[0-9\]|\\d)/.test(readFileSync(path.join(repoRoot, f), 'utf8')));
  expect(written).toEqual([]);
});

/** Files reached from `entries` by relative imports (values and types), and the packages they import. */
function importClosure(entries: string[]): { files: Set<string>; packages: Map<string, string> } {
  const files = new Set<string>();
  const packages = new Map<string, string>();
  const queue = [...entries];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (files.has(file)) continue;
    files.add(file);
    const text = readFileSync(path.join(repoRoot, file), 'utf8');
    const specifiers = [
      ...text.matchAll(/^(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]/gm),
      ...text.matchAll(/^import\s+['"]([^'"]+)['"]/gm),
      ...text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g),
    ];
    for (const m of specifiers) {
      const spec = m[1]!;
      if (spec.startsWith('.')) queue.push(path.relative(repoRoot, path.resolve(path.dirname(path.join(repoRoot, file)), spec)).replace(/\.js$/, '.ts'));
      else packages.set(spec, file);
    }
  }
  return { files, packages };
}

it('the verifying client reaches only the pure floor, node:* and @noble/* (what the tlog-worm-client package installs)', () => {
  // The package's entry points (src/client/package/build.ts): the verifier, and the writer's signer.
  const verifier = importClosure(['src/client/index.ts']);
  const signer = importClosure(['src/client/signed-request.ts']);
  // Beside the pure floor and errors: the Monitor writes its state file with writeFileDurably
  // (node:fs only; file-worker.ts is only a type there).
  const allowed = new Set(['src/storage/durable.ts', 'src/storage/file-worker.ts']);
  const problems: string[] = [];
  for (const file of new Set([...verifier.files, ...signer.files])) {
    const [layer] = layerOf(file);
    if (layer === 'client' || layer === 'errors' || PURE.includes(layer) || allowed.has(file)) continue;
    problems.push(`the client reaches ${file} (${layer})`);
  }
  for (const [spec, file] of verifier.packages) {
    if (!spec.startsWith('node:') && !spec.startsWith('@noble/')) problems.push(`${file} imports ${spec}: a verifier would install it`);
  }
  for (const [spec, file] of signer.packages) {
    if (!spec.startsWith('node:') && !spec.startsWith('@noble/') && spec !== 'http-message-signatures')
      problems.push(`${file} imports ${spec}: a writer would install it`);
  }
  expect(problems).toEqual([]);
  // The signer's RFC 9421 library stays out of the verifier.
  expect([...verifier.packages.keys()]).not.toContain('http-message-signatures');
});
