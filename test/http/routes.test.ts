/**
 * Every route of the service through app.request(): tlog-tiles reads with their headers, the
 * write and read API, proofs, health, metrics and CORS. Answers are checked against the engine
 * and the Merkle proofs verified.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { leafHash } from '../../src/merkle/hash.js';
import { verifyConsistency, verifyInclusion } from '../../src/merkle/proof.js';
import { openNote } from '../../src/note/note.js';
import { parseCheckpoint } from '../../src/note/checkpoint.js';
import { parseEntryBundle } from '../../src/tiles/bundle.js';
import { naiveMTH } from '../merkle/naive.js';
import { bundleBody, get, json, makeEnv, post, type AppEnv } from './helpers.js';
import { toB64 } from '../vectors.js';

let env: AppEnv;
const unb64 = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));
const entry = (i: number) => Buffer.from(`route entry ${i}`);

beforeAll(async () => {
  env = await makeEnv([{ name: 'alpha' }]);
});
afterAll(() => env.close());

function rootOf(note: string): { treeSize: number; rootHash: Uint8Array } {
  const cp = parseCheckpoint(openNote(note, env.registry.get('alpha')!.log.verifiers).note.text);
  return { treeSize: cp.treeSize, rootHash: cp.rootHash };
}

describe('tlog-tiles reads', () => {
  it('checkpoint: text/plain; charset=utf-8, no-store, CORS, ETag and 304', async () => {
    const r = await get(env.app, '/alpha/checkpoint');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(r.headers.get('cache-control')).toBe('no-store');
    expect(r.headers.get('access-control-allow-origin')).toBe('*');
    const text = await r.text();
    expect(text).toBe(env.registry.get('alpha')!.log.committed.note);
    expect(text.split('\n')[0]).toBe('example.com/alpha');
    const etag = r.headers.get('etag')!;
    expect(etag).toMatch(/^"cp-0-[0-9a-f]{16}"$/);
    const again = await get(env.app, '/alpha/checkpoint', { 'if-none-match': etag });
    expect(again.status).toBe(304);
    expect(await again.text()).toBe('');
    const stale = await get(env.app, '/alpha/checkpoint', { 'if-none-match': '"cp-9-0000000000000000"' });
    expect(stale.status).toBe(200);
  });

  it('append answers with index, leaf hash, the signed checkpoint and a verifying inclusion proof', async () => {
    const r = await post(env.app, '/alpha/append', entry(0));
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^application\/json/);
    const body = await json<{ index: number; leafHash: string; duplicate: boolean; treeSize: number; checkpoint: string; inclusionProof: string[] }>(r);
    expect(body.index).toBe(0);
    expect(body.duplicate).toBe(false);
    expect(unb64(body.leafHash)).toEqual(Uint8Array.from(leafHash(entry(0))));
    const cp = rootOf(body.checkpoint);
    expect(cp.treeSize).toBe(body.treeSize);
    expect(verifyInclusion(0, cp.treeSize, leafHash(entry(0)), body.inclusionProof.map(unb64), cp.rootHash)).toBe(true);
    // A duplicate answers with the original index.
    const dup = await json<{ index: number; duplicate: boolean }>(await post(env.app, '/alpha/append', entry(0)));
    expect(dup).toMatchObject({ index: 0, duplicate: true });
  });

  it('append-batch: bundle encoding, JSON array and {"entries"}, proofs with ?proofs=1', async () => {
    const a = await post(env.app, '/alpha/append-batch', bundleBody([entry(1), entry(2), entry(1)]));
    expect(a.status).toBe(200);
    expect(a.headers.get('content-type')).toBe('application/json');
    const text = await a.text();
    const ab = JSON.parse(text) as {
      treeSize: number;
      checkpoint: string;
      results: { index: number; leafHash: string; duplicate: boolean; inclusionProof?: string[] }[];
    };
    expect(ab.results.map((x) => x.index)).toEqual([1, 2, 1]);
    expect(ab.results.map((x) => x.duplicate)).toEqual([false, false, true]);
    expect(ab.results[0]!.inclusionProof).toBeUndefined();
    // The exact bytes: these keys in this order, no spaces, the checkpoint's newlines escaped.
    const results = [1, 2, 1].map((n, i) => ({ index: n, leafHash: toB64(leafHash(entry(n))), duplicate: i === 2 }));
    expect(text).toBe(JSON.stringify({ treeSize: 3, checkpoint: ab.checkpoint, results }));
    expect(ab.checkpoint).toContain('\n');
    expect(rootOf(ab.checkpoint).treeSize).toBe(3);

    const j = await post(env.app, '/alpha/append-batch', JSON.stringify([toB64(entry(3)), toB64(entry(4))]), { 'content-type': 'application/json' });
    expect(j.status).toBe(200);
    expect((await json<{ results: { index: number }[] }>(j)).results.map((x) => x.index)).toEqual([3, 4]);

    const o = await post(env.app, '/alpha/append-batch?proofs=1', JSON.stringify({ entries: [toB64(entry(5)), toB64(entry(0))] }), {
      'content-type': 'application/json; charset=utf-8',
    });
    expect(o.status).toBe(200);
    const ob = await json<{ treeSize: number; checkpoint: string; results: { index: number; leafHash: string; inclusionProof: string[] }[] }>(o);
    const cp = rootOf(ob.checkpoint);
    expect(cp.treeSize).toBe(ob.treeSize);
    for (const res of ob.results) {
      expect(verifyInclusion(res.index, cp.treeSize, unb64(res.leafHash), res.inclusionProof.map(unb64), cp.rootHash)).toBe(true);
    }
    expect(ob.results[1]!.index).toBe(0);
  });

  it('tiles and bundles: octet-stream, immutable caching, ETag/304, CORS; gzip bundles on request', async () => {
    // Fill 300 entries so a full tile, a full bundle and partials exist.
    const more = Array.from({ length: 300 - 6 }, (_, i) => entry(6 + i));
    expect((await post(env.app, '/alpha/append-batch', bundleBody(more))).status).toBe(200);
    const log = env.registry.get('alpha')!.log;
    expect(log.treeSize).toBe(300);

    for (const rel of ['tile/0/000', 'tile/0/001.p/44', 'tile/1/000.p/1', 'tile/entries/000', 'tile/entries/001.p/44']) {
      const r = await get(env.app, `/alpha/${rel}`);
      expect(r.status, rel).toBe(200);
      expect(r.headers.get('content-type')).toBe('application/octet-stream');
      expect(r.headers.get('cache-control')).toBe('public, max-age=604800, immutable');
      expect(r.headers.get('access-control-allow-origin')).toBe('*');
      expect(r.headers.get('etag')).toBe(`"${rel}"`);
      expect(r.headers.get('content-encoding')).toBeNull();
      const data = new Uint8Array(await r.arrayBuffer());
      if (rel === 'tile/0/000') expect(data.length).toBe(8192);
      if (rel === 'tile/0/001.p/44') expect(data.length).toBe(44 * 32);
      const nm = await get(env.app, `/alpha/${rel}`, { 'if-none-match': `"${rel}"` });
      expect(nm.status).toBe(304);
      expect(nm.headers.get('cache-control')).toBe('public, max-age=604800, immutable');
    }
    // Level-0 hash i is the leaf hash of entry i.
    const t0 = new Uint8Array(await (await get(env.app, '/alpha/tile/0/000')).arrayBuffer());
    expect(t0.subarray(32 * 7, 32 * 8)).toEqual(Uint8Array.from(leafHash(entry(7))));

    const plain = new Uint8Array(await (await get(env.app, '/alpha/tile/entries/000')).arrayBuffer());
    const gz = await get(env.app, '/alpha/tile/entries/000', { 'accept-encoding': 'br, gzip;q=0.8' });
    expect(gz.headers.get('content-encoding')).toBe('gzip');
    expect(gz.headers.get('vary')).toMatch(/accept-encoding/i);
    const unzipped = new Uint8Array(gunzipSync(new Uint8Array(await gz.arrayBuffer())));
    expect(unzipped).toEqual(plain);
    expect(parseEntryBundle(plain, 256)[0]).toEqual(new Uint8Array(entry(0)));
    // Hashes are never gzipped.
    const tileGz = await get(env.app, '/alpha/tile/0/000', { 'accept-encoding': 'gzip' });
    expect(tileGz.headers.get('content-encoding')).toBeNull();
  });

  it('404 for tiles that do not exist (yet) or beyond the tree, no Cache-Control; a narrower partial served from a wider one', async () => {
    for (const rel of [
      'tile/0/002',
      'tile/0/001',
      'tile/0/001.p/45',
      'tile/1/000',
      'tile/2/000.p/1',
      'tile/entries/001',
      'tile/entries/005.p/3',
      'tile/0/x001/000',
    ]) {
      const r = await get(env.app, `/alpha/${rel}`);
      expect(r.status, rel).toBe(404);
      expect(r.headers.get('cache-control'), rel).toBeNull();
      expect(await r.json()).toMatchObject({ code: 'not_found' });
    }
    // A narrower partial tile is served too (c2sp.org/tlog-tiles: the partials of every
    // checkpoint stay served until the full tile exists), from the prefix of the wider one when
    // it is not on disk: 0/001.p/10 was never written (or was collected), 0/001.p/44 is there.
    const log = env.registry.get('alpha')!.log;
    await log.settled();
    for (const [rel, wider, bytes] of [
      ['tile/0/001.p/10', 'tile/0/001.p/44', 10 * 32],
      ['tile/entries/001.p/10', 'tile/entries/001.p/44', Buffer.concat(Array.from({ length: 10 }, (_, i) => Buffer.from(entry(256 + i)))).length + 20],
    ] as const) {
      expect(existsSync(path.join(log.paths.tilesDir, rel)), rel).toBe(false);
      const narrower = await get(env.app, `/alpha/${rel}`);
      expect(narrower.status, rel).toBe(200);
      expect(narrower.headers.get('etag')).toBe(`"${rel}"`);
      const full = new Uint8Array(await (await get(env.app, `/alpha/${wider}`)).arrayBuffer());
      expect(new Uint8Array(await narrower.arrayBuffer())).toEqual(full.subarray(0, bytes));
    }
  });

  it('read_since: JSON pages with a cursor, and the bundle encoding on Accept: application/octet-stream', async () => {
    const r = await get(env.app, '/alpha/read_since?index=250&limit=10');
    expect(r.status).toBe(200);
    expect(r.headers.get('cache-control')).toBe('no-store');
    const page = await json<{ index: number; next: number; treeSize: number; entries: string[] }>(r);
    expect(page).toMatchObject({ index: 250, next: 260, treeSize: 300 });
    expect(page.entries.map((e) => Buffer.from(e, 'base64').toString())).toEqual(Array.from({ length: 10 }, (_, i) => `route entry ${250 + i}`));

    const tail = await json<{ next: number; entries: string[] }>(await get(env.app, '/alpha/read_since?index=295'));
    expect(tail.next).toBe(300);
    expect(tail.entries).toHaveLength(5);
    const end = await json<{ next: number; entries: string[] }>(await get(env.app, '/alpha/read_since?index=300'));
    expect(end).toMatchObject({ next: 300, entries: [] });

    const bin = await get(env.app, '/alpha/read_since?index=0&limit=300', { accept: 'application/octet-stream' });
    expect(bin.status).toBe(200);
    expect(bin.headers.get('content-type')).toBe('application/octet-stream');
    expect(bin.headers.get('x-tlog-next')).toBe('300');
    expect(bin.headers.get('x-tlog-tree-size')).toBe('300');
    const data = new Uint8Array(await bin.arrayBuffer());
    // The page is an entry sequence, like the append-batch body.
    let off = 0;
    let n = 0;
    while (off < data.length) {
      const len = (data[off]! << 8) | data[off + 1]!;
      expect(Buffer.from(data.subarray(off + 2, off + 2 + len)).toString()).toBe(`route entry ${n}`);
      off += 2 + len;
      n++;
    }
    expect(n).toBe(300);
    const empty = await get(env.app, '/alpha/read_since?index=300', { accept: 'application/octet-stream' });
    expect(empty.headers.get('x-tlog-next')).toBe('300');
    expect((await empty.arrayBuffer()).byteLength).toBe(0);
  });

  it('proofs: inclusion by index, by hash, and consistency verify against the checkpoints', async () => {
    const log = env.registry.get('alpha')!.log;
    const cp = log.committed;
    const inc = await json<{ index: number; treeSize: number; leafHash: string; inclusionProof: string[] }>(
      await get(env.app, '/alpha/proof/inclusion?index=257&tree_size=300'),
    );
    expect(inc).toMatchObject({ index: 257, treeSize: 300 });
    expect(unb64(inc.leafHash)).toEqual(Uint8Array.from(leafHash(entry(257))));
    expect(verifyInclusion(257, 300, leafHash(entry(257)), inc.inclusionProof.map(unb64), cp.rootHash)).toBe(true);
    // tree_size defaults to the current size; an older size verifies against that root.
    const dflt = await json<{ treeSize: number }>(await get(env.app, '/alpha/proof/inclusion?index=3'));
    expect(dflt.treeSize).toBe(300);

    const hex = Buffer.from(leafHash(entry(123))).toString('hex');
    const byHash = await get(env.app, `/alpha/proof/by-hash/${hex}`);
    expect(byHash.status).toBe(200);
    const bh = await json<{ index: number; treeSize: number; checkpoint: string; inclusionProof: string[] }>(byHash);
    expect(bh.index).toBe(123);
    const bcp = rootOf(bh.checkpoint);
    expect(verifyInclusion(123, bcp.treeSize, leafHash(entry(123)), bh.inclusionProof.map(unb64), bcp.rootHash)).toBe(true);
    const missing = await get(env.app, `/alpha/proof/by-hash/${'0'.repeat(64)}`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ code: 'not_found' });

    // Consistency from the size-6 checkpoint (from its inclusion-proof answer) to now.
    const small = await json<{ inclusionProof: string[]; leafHash: string }>(await get(env.app, '/alpha/proof/inclusion?index=0&tree_size=6'));
    expect(small.inclusionProof.length).toBeGreaterThan(0);
    const cons = await json<{ old: number; new: number; consistencyProof: string[] }>(await get(env.app, '/alpha/proof/consistency?old=6&new=300'));
    expect(cons).toMatchObject({ old: 6, new: 300 });
    // Root of the first 6 entries, recomputed from the leaves.
    const oldRoot = naiveMTH(Array.from({ length: 6 }, (_, i) => leafHash(entry(i))));
    expect(verifyConsistency(6, 300, oldRoot, cp.rootHash, cons.consistencyProof.map(unb64))).toBe(true);
    const dfltNew = await json<{ new: number }>(await get(env.app, '/alpha/proof/consistency?old=0'));
    expect(dfltNew.new).toBe(300);
  });

  it('the API answers un-prefixed with X-Module-ID', async () => {
    const r = await post(env.app, '/append', Buffer.from('via module id'), { 'x-module-id': 'alpha' });
    expect(r.status).toBe(200);
    const { index } = await json<{ index: number }>(r);
    expect(index).toBe(300);
    const rs = await json<{ entries: string[] }>(await get(env.app, '/read_since?index=300', { 'x-module-id': 'alpha' }));
    expect(Buffer.from(rs.entries[0]!, 'base64').toString()).toBe('via module id');
    expect((await get(env.app, '/proof/inclusion?index=300', { 'x-module-id': 'alpha' })).status).toBe(200);
    expect((await get(env.app, '/proof/consistency?old=1', { 'x-module-id': 'alpha' })).status).toBe(200);
    expect(
      (await get(env.app, `/proof/by-hash/${Buffer.from(leafHash(Buffer.from('via module id'))).toString('hex')}`, { 'x-module-id': 'alpha' })).status,
    ).toBe(200);
    const batch = await post(env.app, '/append-batch', bundleBody([Buffer.from('via module id 2')]), { 'x-module-id': 'alpha' });
    expect(batch.status).toBe(200);
    // Without the header, or with an unknown tenant: 404 with a JSON error.
    const none = await post(env.app, '/append', Buffer.from('x'));
    expect(none.status).toBe(404);
    expect(await none.json()).toMatchObject({ code: 'not_found' });
    expect((await post(env.app, '/append', Buffer.from('x'), { 'x-module-id': 'nobody' })).status).toBe(404);
  });

  it('healthz, metrics and CORS preflight', async () => {
    const before = Date.now();
    const h = await get(env.app, '/healthz');
    const after = Date.now();
    expect(h.status).toBe(200);
    expect(h.headers.get('cache-control')).toBe('no-store');
    const hb = await json<{ status: string; tenants: Record<string, { treeSize: number; pending: number; lastIntegrationAgeSeconds: number }> }>(h);
    expect(hb.status).toBe('ok');
    expect(hb.tenants.alpha!.treeSize).toBe(env.registry.get('alpha')!.log.treeSize);
    expect(hb.tenants.alpha!.pending).toBe(0);
    // The age of the last integration as of the moment the answer was made, between the clock
    // readings taken before and after the request.
    const integratedAt = env.registry.get('alpha')!.log.lastIntegrationAt;
    expect(hb.tenants.alpha!.lastIntegrationAgeSeconds).toBeGreaterThanOrEqual((before - integratedAt) / 1000);
    expect(hb.tenants.alpha!.lastIntegrationAgeSeconds).toBeLessThanOrEqual((after - integratedAt) / 1000);

    const m = await get(env.app, '/metrics');
    expect(m.status).toBe(200);
    expect(m.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await m.text();
    expect(text).toMatch(/^tlog_appends_total\{tenant="alpha"\} ([0-9]+)$/m);
    expect(Number(/^tlog_appends_total\{tenant="alpha"\} ([0-9]+)$/m.exec(text)![1])).toBe(env.registry.get('alpha')!.log.treeSize);
    expect(text).toMatch(/^tlog_duplicates_total\{tenant="alpha"\} [1-9]/m);
    expect(text).toMatch(/^tlog_batch_entries_bucket\{le="1"\} [0-9]+$/m);
    expect(text).toMatch(/^tlog_integration_seconds_count [1-9]/m);
    expect(text).toMatch(/^tlog_batch_write_seconds_count [1-9]/m);
    expect(text).toMatch(/^tlog_commit_seconds_count [1-9]/m);
    expect(text).toMatch(/^tlog_append_seconds_count [1-9]/m);
    expect(text).toMatch(/^tlog_http_requests_total\{route="[^"]*append",status="200"\} [1-9]/m);
    expect(text).toMatch(/^tlog_http_requests_total\{route="[^"]*",status="404"\} [1-9]/m);

    const pre = await env.app.request('/alpha/tile/0/000', {
      method: 'OPTIONS',
      headers: { origin: 'https://x.example', 'access-control-request-method': 'GET' },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('*');
    expect(pre.headers.get('access-control-allow-methods')).toMatch(/GET/);
    // Every read, successful or not, carries CORS *.
    for (const p of ['/alpha/checkpoint', '/alpha/tile/0/000', '/alpha/tile/9/000', '/alpha/read_since?index=0', '/alpha/proof/inclusion?index=0']) {
      expect((await get(env.app, p)).headers.get('access-control-allow-origin'), p).toBe('*');
    }
  });

  it('metrics counters move with requests', async () => {
    const count = async () => Number(/^tlog_appends_total\{tenant="alpha"\} ([0-9]+)$/m.exec(await (await get(env.app, '/metrics')).text())![1]);
    const req = async () => {
      const t = await (await get(env.app, '/metrics')).text();
      return Number(/^tlog_http_requests_total\{route="\/:tenant\/checkpoint",status="200"\} ([0-9]+)$/m.exec(t)?.[1] ?? 0);
    };
    const a0 = await count();
    const r0 = await req();
    await post(env.app, '/alpha/append-batch', bundleBody([Buffer.from('m1'), Buffer.from('m2'), Buffer.from('m3')]));
    await get(env.app, '/alpha/checkpoint');
    await get(env.app, '/alpha/checkpoint');
    expect(await count()).toBe(a0 + 3);
    expect(await req()).toBe(r0 + 2);
  });
});
