/**
 * The dependency direction of docs/design.md, checked from import lines: low to high,
 * native -> pure spec modules (merkle, tiles, note) -> durable files, object stores and index ->
 * leases over an object store (cluster) -> tile store -> log engine ->
 * witness client, anchoring, verifying client -> tenants -> HTTP -> CLI. Nothing imports upward;
 * witness/ uses only the pure modules, durable files and native/.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';

const repo = path.resolve(__dirname, '..');

/** Layer of a repository-relative source path. */
function layerOf(rel: string): [string, number] {
  const table: [RegExp, string, number][] = [
    [/^native\//, 'native', 0],
    [/^src\/errors\.ts$/, 'errors', 1],
    [/^src\/logger\.ts$/, 'logger', 1],
    [/^src\/merkle\//, 'merkle', 2],
    [/^src\/tiles\//, 'tiles', 3],
    [/^src\/note\//, 'note', 3],
    [/^src\/storage\//, 'storage', 4],
    [/^src\/hot-index\//, 'hot-index', 4],
    // Leases are kept in an object store (storage) and taken by the engine (log): between the two.
    [/^src\/cluster\//, 'cluster', 4.5],
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
  return readdirSync(path.join(repo, dir), { recursive: true })
    .map((n) => path.join(dir, String(n)))
    .filter((p) => p.endsWith('.ts') && !p.endsWith('.d.ts') && statSync(path.join(repo, p)).isFile());
}

it('no module imports a higher layer, and witness/ and src/client stay off the engine', () => {
  const problems: string[] = [];
  for (const file of [...sources('native'), ...sources('src'), ...sources('witness')]) {
    const [layer, rank] = layerOf(file);
    const text = readFileSync(path.join(repo, file), 'utf8');
    const specifiers = [
      ...text.matchAll(/^(?:import|export)[^'"]*?from\s+['"](\.[^'"]+)['"]/gm),
      ...text.matchAll(/^import\s+['"](\.[^'"]+)['"]/gm),
      ...text.matchAll(/\bimport\(\s*['"](\.[^'"]+)['"]\s*\)/g),
    ];
    for (const m of specifiers) {
      const target = path.relative(repo, path.resolve(path.dirname(path.join(repo, file)), m[1]!)).replace(/\.js$/, '.ts');
      const [tLayer, tRank] = layerOf(target);
      if (tRank > rank) problems.push(`${file} (${layer}) imports ${target} (${tLayer})`);
      if (layer === 'witness' && !['note', 'merkle', 'storage', 'errors', 'native', 'witness'].includes(tLayer)) problems.push(`${file}: witness/ imports ${target}`);
      if (layer === 'client' && ['log', 'hot-index', 'tile-store'].includes(tLayer)) problems.push(`${file}: the verifying client imports the engine (${target})`);
      if (['merkle', 'tiles', 'note'].includes(layer) && ['storage', 'hot-index', 'native'].includes(tLayer)) problems.push(`${file}: a pure module imports I/O (${target})`);
    }
    if (['merkle', 'tiles', 'note'].includes(layer) && /from ['"]node:fs/.test(text)) problems.push(`${file}: a pure module uses node:fs`);
  }
  expect(problems).toEqual([]);
});

/** The layers a folder's README.md says it may import ("May import: a, b, c."), or null for any. */
function mayImport(folder: string): Set<string> | null {
  const text = readFileSync(path.join(repo, 'src', folder, 'README.md'), 'utf8');
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

it("every folder of src/ says in its README.md what it owns and what it may import, and imports only that", () => {
  const problems: string[] = [];
  const folders = readdirSync(path.join(repo, 'src'), { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
  expect(folders.length).toBeGreaterThan(10);
  for (const folder of folders) {
    if (!existsSync(path.join(repo, 'src', folder, 'README.md'))) {
      problems.push(`src/${folder} has no README.md`);
      continue;
    }
    if (!/^Owns: /m.test(readFileSync(path.join(repo, 'src', folder, 'README.md'), 'utf8'))) problems.push(`src/${folder}/README.md does not say what it owns ("Owns: ...")`);
    const allowed = mayImport(folder);
    const [own, rank] = layerOf(`src/${folder}/x.ts`);
    for (const name of allowed ?? []) {
      const known = layerNames().get(name);
      if (known === undefined) problems.push(`src/${folder}/README.md names an unknown layer "${name}"`);
      else if (known > rank) problems.push(`src/${folder}/README.md allows the higher layer ${name}`);
    }
    if (!allowed) continue;
    for (const file of sources(`src/${folder}`)) {
      const text = readFileSync(path.join(repo, file), 'utf8');
      for (const m of text.matchAll(/^(?:import|export)[^'"]*?from\s+['"](\.[^'"]+)['"]/gm)) {
        const target = path.relative(repo, path.resolve(path.dirname(path.join(repo, file)), m[1]!)).replace(/\.js$/, '.ts');
        const [layer] = layerOf(target);
        if (layer !== own && !allowed.has(layer)) problems.push(`${file} imports ${target} (${layer}), which src/${folder}/README.md does not allow`);
      }
    }
  }
  expect(problems).toEqual([]);
});

/** Every layer's name and rank, from layerOf's table. */
function layerNames(): Map<string, number> {
  const probes = ['native/x.ts', 'src/errors.ts', 'src/logger.ts', 'witness/x.ts', 'src/index.ts'];
  for (const d of readdirSync(path.join(repo, 'src'), { withFileTypes: true })) if (d.isDirectory()) probes.push(`src/${d.name}/x.ts`);
  return new Map(probes.map((p) => layerOf(p)));
}
