/**
 * Tiles and bundles served from memory (src/http/static.ts): a tile read once from disk is
 * served again without the disk, byte for byte; the cache keeps at most its byte budget,
 * least recently used out first.
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { TileCache } from '../../src/http/static.js';
import { makeEnv, type AppEnv } from './helpers.js';

let env: AppEnv;
beforeAll(async () => {
  env = await makeEnv([{ name: 'tc' }]);
  const log = env.registry.get('tc')!.log;
  for (let i = 0; i < 3; i++) await Promise.all(log.appendMany(Array.from({ length: 256 }, (_, k) => Buffer.from(`entry ${i * 256 + k}`))));
  // A restart empties the log's own memory of the newest files: reads now go to the disk.
  await env.restart();
});
afterAll(() => env.close());

it('a tile read from disk once is served from memory after, with the same bytes', async () => {
  const first = await env.app.request('/tc/tile/entries/000');
  expect(first.status).toBe(200);
  const bytes = Buffer.from(await first.arrayBuffer());
  expect(bytes.length).toBeGreaterThan(256 * 2);
  // Gone from the disk (never done by the log: tiles are immutable); memory still has it.
  rmSync(path.join(env.roots.tilesRoot, 'tc', 'tile', 'entries', '000'));
  const again = await env.app.request('/tc/tile/entries/000');
  expect(again.status).toBe(200);
  expect(Buffer.from(await again.arrayBuffer()).equals(bytes)).toBe(true);
  // A tile never read is still looked up on disk.
  rmSync(path.join(env.roots.tilesRoot, 'tc', 'tile', 'entries', '001'));
  expect((await env.app.request('/tc/tile/entries/001')).status).toBe(404);
});

it('keeps at most its byte budget, least recently used out first', () => {
  const c = new TileCache(100);
  c.put('a', new Uint8Array(40));
  c.put('b', new Uint8Array(40));
  expect(c.get('a')?.length).toBe(40); // a is now the most recent
  c.put('c', new Uint8Array(40)); // 120 > 100: b, the least recently used, goes
  expect(c.get('b')).toBeUndefined();
  expect(c.get('a')).toBeDefined();
  expect(c.get('c')).toBeDefined();
  c.put('huge', new Uint8Array(101)); // bigger than the whole budget: not kept
  expect(c.get('huge')).toBeUndefined();
  expect(c.get('a')).toBeDefined();
});
