/**
 * witness/ uses only the pure modules (note, merkle, the canonical-decimal parser), durable
 * files (storage), the error type and native/, never the log engine (src/log), tenants or the
 * HTTP app. One leaf of src/log is shared: the choice of ML-DSA-44 implementation
 * (mldsa-backend.ts, which imports nothing of the engine), so the witness signs as fast as the log.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, test } from 'vitest';
import { repoRoot } from '../helpers/dist.js';

const ALLOWED = [
  /^\.\/[a-z-]+\.js$/,
  /^\.\.\/src\/(note|merkle|storage)\/[a-z-]+\.js$/,
  /^\.\.\/src\/(errors|decimal)\.js$/,
  /^\.\.\/native\/index\.js$/,
  /^\.\.\/src\/log\/mldsa-backend\.js$/,
];
const PACKAGES = new Set(['hono', 'hono/body-limit', '@hono/node-server', 'commander']);

test('witness/ imports only pure modules, durable files, native/ and its packages', () => {
  const dir = path.join(repoRoot, 'witness');
  const seen: string[] = [];
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.ts'))) {
    const src = readFileSync(path.join(dir, f), 'utf8');
    for (const m of src.matchAll(/^import\s[^;]*?from\s+'([^']+)'/gms)) {
      const spec = m[1]!;
      seen.push(spec);
      const ok = spec.startsWith('node:') || PACKAGES.has(spec) || ALLOWED.some((r) => r.test(spec));
      expect(ok, `${f} imports ${spec}`).toBe(true);
    }
  }
  expect(seen).toContain('../src/note/note.js');
});
