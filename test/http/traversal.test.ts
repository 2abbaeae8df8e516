/**
 * Paths that try to step outside a tenant or name a tile non-canonically. Sentinel files sit at
 * every place on disk such a path would reach if it were resolved (beside the tenant, at the
 * roots, in the private state, and at the non-canonical tile paths themselves); no answer may
 * ever carry them, and every answer is a 4xx. Checked through app.request() and over a raw socket
 * (so no client normalizes the path first).
 */
import { serve } from '@hono/node-server';
import { mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleBody, get, makeEnv, post, SENTINEL, type AppEnv } from './helpers.js';

let env: AppEnv;
let server: Server;
let port: number;

/** Non-canonical or out-of-tree tile paths of tenant a, each planted on disk with the sentinel. */
const PLANTED = [
  'tile/0/0001',
  'tile/0/x000/001',
  'tile/0/x000/000',
  'tile/0/00',
  'tile/0/1',
  'tile/00/000',
  'tile/01/000',
  'tile/64/000',
  'tile/-1/000',
  'tile/0/000.p/0',
  'tile/0/000.p/00',
  'tile/0/000.p/01',
  'tile/0/000.p/256',
  'tile/0/001.p/044',
  'tile/0/001.p/300',
  'tile/0/x001/000',
  'tile/1/000',
  'tile/entries/0001',
  'tile/entries/x000/000',
  'tile/entries/000.p/0',
  'tile/data/000',
  'tile/Entries/000',
  'tile/0/000.P/1',
  'tile/0/000/',
  'tile/0/000.p/1/',
  'tile/SECRET',
  'tile/0/SECRET',
  'SECRET',
];

beforeAll(async () => {
  env = await makeEnv([{ name: 'a' }, { name: 'b' }]);
  expect((await post(env.app, '/a/append-batch', bundleBody(Array.from({ length: 300 }, (_, i) => Buffer.from(`a ${i}`))))).status).toBe(200);
  expect((await post(env.app, '/b/append', 'b 0')).status).toBe(200);
  const aDir = env.registry.get('a')!.log.paths.tilesDir;
  for (const rel of PLANTED) {
    if (rel.endsWith('/')) continue;
    const p = path.join(aDir, rel);
    mkdirSync(path.dirname(p), { recursive: true });
    writeFileSync(p, SENTINEL);
  }
  server = await new Promise<Server>((resolve) => {
    const s = serve({ fetch: env.app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(s as Server));
  });
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  await env.close();
});

/** Sends one raw request line (the path exactly as given) and returns the status and whole response. */
function raw(requestTarget: string, method = 'GET', extra = ''): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    sock.on('data', (d) => chunks.push(d));
    sock.on('error', reject);
    sock.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const m = /^HTTP\/1\.1 ([0-9]{3})/.exec(text);
      resolve({ status: m ? Number(m[1]) : 0, text });
    });
    sock.write(`${method} ${requestTarget} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n${extra}\r\n`);
  });
}

const ATTEMPTS = [
  ...PLANTED.map((p) => `/a/${p}`),
  '/a/tile/../SECRET',
  '/a/tile/../../SECRET',
  '/a/tile/../../../SECRET',
  '/a/tile/entries/../../SECRET',
  '/a/tile/entries/../../../SECRET',
  '/a/tile/entries/../../../../state/SECRET',
  '/a/tile/%2e%2e/%2e%2e/SECRET',
  '/a/tile/%2E%2E/%2E%2E/%2E%2E/SECRET',
  '/a/tile/.%2e/.%2e/SECRET',
  '/a/tile/%2e%2e%2f%2e%2e%2fSECRET',
  '/a/tile/..%2F..%2FSECRET',
  '/a/tile/..%2f..%2f..%2fstate%2fSECRET',
  '/a/tile/0%2F000',
  '/a/tile%2F0%2F000',
  '/a%2Ftile/0/000',
  '/a/tile//0/000',
  '/a//tile/0/000',
  '//a/tile/0/000',
  '/a/tile/0//000',
  '/a/tile/0/000%00',
  '/a/tile/0/000%2500',
  '/a/tile/entries/%2e%2e/%2e%2e/SECRET',
  '/a/tile/entries/..%5c..%5cSECRET',
  '/a/tile/entries\\..\\..\\SECRET',
  '/a/tile/0/000;/../../SECRET',
  '/../SECRET',
  '/%2e%2e/SECRET',
  '/..%2fSECRET',
  '/../tiles/SECRET',
  '/a/../b/checkpoint%2F..%2F..%2FSECRET',
  '/a/checkpoint/../SECRET',
  '/a/checkpoint%2F..%2FSECRET',
  '/SECRET',
  '/tiles/SECRET',
  '/state/SECRET',
  '/a/SECRET',
  '/a/tile/0/000.p/1%2F..%2F..%2F..%2FSECRET',
  '/%2e/SECRET',
  '/.a/tile/0/000',
  '/a%2e%2e/tile/0/000',
  '/..a/tile/0/000',
  '/a/tile/%ff%fe/000',
  '/a/tile/%c0%ae%c0%ae/SECRET',
  '/a/tile/0/%',
  '/a/tile/0/%zz',
  '/a/proof/by-hash/..%2F..%2FSECRET',
  '/a/proof/by-hash/../../SECRET',
];

describe('traversal and odd tile coordinates', () => {
  it('through app.request(): every attempt is a 4xx without the sentinel', async () => {
    for (const p of ATTEMPTS) {
      const r = await get(env.app, `http://localhost${p}`);
      const body = await r.text();
      expect(r.status >= 400 && r.status < 500, `${p}: ${r.status}`).toBe(true);
      expect(body, p).not.toContain(SENTINEL);
      expect(r.headers.get('cache-control'), p).toBeNull();
    }
  });

  it('over a raw socket: the path as sent, never normalized by a client', async () => {
    for (const p of ATTEMPTS) {
      const r = await raw(p);
      expect(r.status >= 400 && r.status < 500, `${p}: ${r.status}\n${r.text.slice(0, 300)}`).toBe(true);
      expect(r.text, p).not.toContain(SENTINEL);
    }
    // Absolute-form targets and odd methods too.
    for (const p of ['http://127.0.0.1/a/tile/../../SECRET', 'http://127.0.0.1/a/tile/%2e%2e/%2e%2e/SECRET', '*']) {
      const r = await raw(p);
      expect(r.status >= 400 && r.status < 500, `${p}: ${r.status}`).toBe(true);
      expect(r.text).not.toContain(SENTINEL);
    }
    for (const m of ['HEAD', 'OPTIONS', 'DELETE', 'PUT', 'TRACE', 'PATCH']) {
      const r = await raw('/a/tile/../../SECRET', m);
      expect(r.text, m).not.toContain(SENTINEL);
      expect(r.status, m).toBeLessThan(500);
    }
  });

  it('URLs equivalent to a canonical one (dot segments, percent-encoded digits) answer with its data', async () => {
    const canonical = Buffer.from(await (await get(env.app, '/a/tile/0/000')).arrayBuffer());
    for (const p of ['/a/tile/./0/000', '/a/./tile/0/000', '/a/tile/0/./000', '/a/tile/0/%30%30%30', '/a/tile/x/../0/000', '/a/tile/0/000?/../../SECRET']) {
      const viaApp = await get(env.app, `http://localhost${p}`);
      if (viaApp.status === 200) expect(Buffer.from(await viaApp.arrayBuffer()).equals(canonical), p).toBe(true);
      else expect(viaApp.status, p).toBe(404);
      const r = await raw(p);
      expect([200, 404], p).toContain(r.status);
      expect(r.text).not.toContain(SENTINEL);
    }
  });

  it('the canonical paths still work (the planting changed nothing real)', async () => {
    for (const rel of ['tile/0/000', 'tile/0/001.p/44', 'tile/1/000.p/1', 'tile/entries/000', 'tile/entries/001.p/44']) {
      const r = await raw(`/a/${rel}`);
      expect(r.status, rel).toBe(200);
      expect(r.text).not.toContain(SENTINEL);
    }
    expect((await raw('/b/tile/entries/000.p/1')).text).toContain('b 0');
    // Tenant b cannot reach a's tiles by any spelling.
    for (const p of ['/b/tile/0/000', '/b/tile/..%2F..%2Fa/tile/0/000', '/b/%2e%2e/a/tile/0/000', '/b/../a/tile/0/000']) {
      const r = await raw(p);
      if (r.status === 200) {
        // Only a URL whose dot segments normalize to /a/... (WHATWG URL treats %2e%2e as "..") may answer, with a's data.
        expect(['/b/../a/tile/0/000', '/b/%2e%2e/a/tile/0/000']).toContain(p);
      } else expect(r.status, p).toBeGreaterThanOrEqual(400);
      expect(r.text).not.toContain(SENTINEL);
    }
  });
});
