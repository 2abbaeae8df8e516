/**
 * The Go reference check (golang.org/x/mod/sumdb/tlog and note, through go/tlogcheck) pointed
 * at the RUNNING service over HTTP: `tlog serve` with a configuration of two tenants, one with a
 * few entries appended one by one over /append, one with 70,000 entries appended through
 * /append-batch in the bundle encoding (so level-2 tiles exist: 0/273.p/112, 1/001.p/17,
 * 2/000.p/1). The checker verifies the checkpoint, the root from the tiles, every tile and
 * bundle, inclusion and consistency proofs, and the cache headers of every response: checkpoint
 * text/plain; charset=utf-8 with no-store, tiles and bundles application/octet-stream with
 * immutable caching; bundles gzip when asked, identity when not.
 *
 * Needs Go >= 1.26 on PATH (CI installs it); the first build downloads golang.org/x/mod.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashToken } from '../../src/http/auth.js';
import { ensureDist } from '../helpers/dist.js';
import { spawnServe, writeConfig, type ServeProc } from '../helpers/tlog-cli.js';
import { buildChecker, runCheck, WANT_CONTENT_TYPES } from './tlogcheck.js';
import { makeTempDir, removeDir } from '../helpers/temp-dirs.js';

/** Entries with the bundle format's edges: 1 byte, 65535 bytes, a length prefix of 0x1f8b (gzip magic). */
function entryFor(tenant: string, i: number): Uint8Array {
  if (i === 2) return Uint8Array.of(0x2a);
  if (i === 3) return new Uint8Array(65535).fill(0x41);
  if (i === 4) return new Uint8Array(0x1f8b).fill(0x62);
  return Buffer.from(`${tenant} http entry ${i}${i % 97 === 0 ? '.'.repeat(300) : ''}`);
}

function bundleOf(entries: Uint8Array[]): Buffer {
  return Buffer.concat(entries.flatMap((e) => [Buffer.from([e.length >> 8, e.length & 0xff]), Buffer.from(e)]));
}

let dir: string;
let srv: ServeProc;
const olds: Record<string, string[]> = { few: [], big: [] };

const WANTS = [
  ...WANT_CONTENT_TYPES,
  '-want-cache-control',
  'checkpoint=no-store',
  '-want-cache-control',
  'tile=public, max-age=604800, immutable',
  '-want-cache-control',
  'entries=public, max-age=604800, immutable',
];

beforeAll(async () => {
  ensureDist();
  buildChecker();
  dir = makeTempDir('tlog-xmod-http-');
  const cfg = path.join(dir, 'tlog.json');
  writeConfig(cfg, {
    tenants: ['few', 'big'].map((name) => ({ name, origin: `example.com/http/${name}`, credentials: { tokens: [hashToken(`${name}-token`)] } })),
  });
  srv = await spawnServe(['--config', cfg], { cwd: dir, env: { TLOG_LOG_LEVEL: 'warn' } });
  const keepCheckpoint = async (tenant: string) => {
    const file = path.join(dir, `old-${tenant}-${olds[tenant]!.length}`);
    fs.writeFileSync(file, await (await fetch(`${srv.url}/${tenant}/checkpoint`)).text());
    olds[tenant]!.push(file);
  };
  const auth = (t: string) => ({ authorization: `Bearer ${t}-token`, 'content-type': 'application/octet-stream' });

  await keepCheckpoint('few');
  for (let i = 0; i < 7; i++) {
    const r = await fetch(`${srv.url}/few/append`, { method: 'POST', body: new Uint8Array(entryFor('few', i)), headers: auth('few') });
    expect(r.status, await r.clone().text()).toBe(200);
    expect(((await r.json()) as { index: number }).index).toBe(i);
    if (i === 3) await keepCheckpoint('few');
  }

  // 70000 entries in steps of 1000, 64536 and 4464 (each at most 65536 per request).
  let next = 0;
  await keepCheckpoint('big');
  for (const n of [1000, 64536, 4464]) {
    const body = bundleOf(Array.from({ length: n }, (_, j) => entryFor('big', next + j)));
    const r = await fetch(`${srv.url}/big/append-batch`, { method: 'POST', body: new Uint8Array(body), headers: auth('big') });
    expect(r.status).toBe(200);
    const res = (await r.json()) as { treeSize: number; results: { index: number }[] };
    expect(res.results.length).toBe(n);
    expect(res.results[0]!.index).toBe(next);
    next += n;
    if (next < 70000) await keepCheckpoint('big');
  }
}, 180_000);

afterAll(async () => {
  if (srv && srv.child.exitCode === null) {
    srv.child.kill('SIGTERM');
    await srv.exited;
  }
  removeDir(dir);
});

const vkeyFile = (tenant: string) => path.join(dir, 'checkpoints', tenant, 'vkeys');

describe('golang.org/x/mod against the running service', () => {
  it.each(['few', 'big'])('%s: every check passes over HTTP with the cache headers asked for (gzip and identity)', async (tenant) => {
    const size = tenant === 'few' ? 7 : 70000;
    const ourCheckpoint = (await (await fetch(`${srv.url}/${tenant}/checkpoint`)).text()).split('\n');
    for (const gzip of [true, false]) {
      const oldArgs = olds[tenant]!.flatMap((f) => ['-old', f]);
      const { code, summary, stderr } = await runCheck(['-vkey-file', vkeyFile(tenant), ...WANTS, ...oldArgs, `-gzip=${gzip}`, `${srv.url}/${tenant}`]);
      expect(code, `${stderr}\n${JSON.stringify(summary)}`).toBe(0);
      expect(summary.ok).toBe(true);
      expect(summary.origin).toBe(`example.com/http/${tenant}`);
      expect(summary.treeSize).toBe(size);
      expect(summary.rootHash).toBe(ourCheckpoint[2]);
      expect(summary.entries).toBe(size);
      expect(summary.partialFallbacks).toBe(0);
      expect(summary.consistency.map((c) => c.oldSize)).toEqual(tenant === 'few' ? [0, 4] : [0, 1000, 65536]);
      const h = summary.http!;
      expect(h.checkpoint!.contentType).toEqual(['text/plain; charset=utf-8']);
      expect(h.checkpoint!.cacheControl).toEqual(['no-store']);
      expect(h.tile!.cacheControl).toEqual(['public, max-age=604800, immutable']);
      expect(h.entries!.cacheControl).toEqual(['public, max-age=604800, immutable']);
      expect(h.entries!.contentEncoding).toEqual(gzip ? ['gzip'] : ['']);
      expect(h.tile!.contentEncoding).toEqual(['']);
      if (tenant === 'big') {
        // 273 full level-0 tiles + 0/273.p/112, 1/000 + 1/001.p/17, 2/000.p/1.
        expect(summary.tiles).toBe(274 + 2 + 1);
        expect(summary.bundles).toBe(274);
        expect(summary.recordProofs).toBeGreaterThan(0);
      }
    }
  });

  it('the header checks are live: a wrong expectation fails at the http-headers stage', async () => {
    const { code, summary } = await runCheck(['-vkey-file', vkeyFile('few'), '-want-cache-control', 'checkpoint=immutable', `${srv.url}/few`]);
    expect(code).toBe(1);
    expect(summary.stage).toBe('http-headers');
    expect(summary.error).toMatch(/Cache-Control "no-store"/);
  });

  it('the level-2 tile and the partials the spec lists for 70000 are served with the right widths', async () => {
    for (const [rel, bytes] of [
      ['tile/0/273.p/112', 112 * 32],
      ['tile/1/001.p/17', 17 * 32],
      ['tile/1/000', 8192],
      ['tile/2/000.p/1', 32],
    ] as const) {
      const r = await fetch(`${srv.url}/big/${rel}`);
      expect(r.status, rel).toBe(200);
      expect((await r.arrayBuffer()).byteLength, rel).toBe(bytes);
    }
    expect((await fetch(`${srv.url}/big/tile/2/000`)).status).toBe(404);
    expect((await fetch(`${srv.url}/big/tile/3/000.p/1`)).status).toBe(404);
  });
});
