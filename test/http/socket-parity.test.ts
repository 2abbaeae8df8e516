/**
 * Over a real socket (createHttpServer, as `tlog serve` runs it) the HTTP layer takes node fast
 * paths (single appends served before hono: fast-append.ts; body from the IncomingMessage, fixed
 * headers set on the ServerResponse, the append answer as bytes); through app.request() it takes
 * the web objects. Both must answer the same: status, headers and body, for every kind of route,
 * error and not-found answer.
 */
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { listen, makeEnv, tokenAuth, type AppEnv, type Listening } from './helpers.js';

let env: AppEnv;
let server: Listening;
let base: string;

beforeAll(async () => {
  env = await makeEnv([
    { name: 'pub' },
    { name: 'tok', auth: tokenAuth({ tokens: ['w'], readTokens: ['r'] }) },
    { name: 'small', limits: { maxBodyBytes: 100 } },
  ]);
  // The server `tlog serve` runs, with its fast route for single appends (fast-append.ts).
  server = await listen(env.app);
  base = `http://127.0.0.1:${server.port}`;
  // Something to read and prove.
  for (const e of ['one', 'two', 'three']) await env.app.request('/pub/append', { method: 'POST', body: e });
  await env.app.request('/tok/append', { method: 'POST', body: 'one', headers: { authorization: 'Bearer w' } });
});
afterAll(async () => {
  await server.close();
  await env.close();
});

/** Headers a socket adds by itself, and the per-request id. */
const TRANSPORT = new Set(['date', 'connection', 'keep-alive', 'content-length', 'transfer-encoding', 'x-request-id']);

/** fetch() undoes Content-Encoding and app.request() does not; healthz's ages move. */
async function answer(r: Response, o: { gunzip?: boolean } = {}) {
  const headers = Object.fromEntries([...r.headers].filter(([k]) => !TRANSPORT.has(k)));
  let bytes = Buffer.from(await r.arrayBuffer());
  if (o.gunzip && r.headers.get('content-encoding') === 'gzip') bytes = gunzipSync(bytes);
  const body = bytes.toString('latin1').replace(/"lastIntegrationAgeSeconds":[0-9.e-]+/g, '"lastIntegrationAgeSeconds":0');
  return { status: r.status, headers, body, requestId: r.headers.get('x-request-id') };
}

const cases: [string, string, RequestInit?][] = [
  ['checkpoint', '/pub/checkpoint'],
  ['HEAD checkpoint', '/pub/checkpoint', { method: 'HEAD' }],
  ['a tile that is not there', '/pub/tile/0/000'],
  ['a partial tile', '/pub/tile/0/000.p/3'],
  ['a partial bundle, gzip', '/pub/tile/entries/000.p/3', { headers: { 'accept-encoding': 'gzip' } }],
  ['no such route', '/a/b/c/d'],
  ['unknown tenant', '/nope/append', { method: 'POST', body: 'x' }],
  ['preflight', '/pub/checkpoint', { method: 'OPTIONS' }],
  ['healthz', '/healthz'],
  ['read_since', '/pub/read_since?index=0&limit=2'],
  ['read_since, bundle encoding', '/pub/read_since?index=0', { headers: { accept: 'application/octet-stream' } }],
  ['read_since, bad index', '/pub/read_since?index=01'],
  ['inclusion proof', '/pub/proof/inclusion?index=0&tree_size=3'],
  ['append of an entry already there', '/pub/append', { method: 'POST', body: 'two' }],
  ['append, empty body', '/pub/append', { method: 'POST', body: '' }],
  // fetch() declares the length; app.request() does not unless told.
  ['append over the body limit', '/small/append', { method: 'POST', body: 'x'.repeat(101), headers: { 'content-length': '101' } }],
  ['append without credentials', '/tok/append', { method: 'POST', body: 'x' }],
  ['append with a token not accepted', '/tok/append', { method: 'POST', body: 'x', headers: { authorization: 'Bearer nope' } }],
  ['append with a token, of an entry already there', '/tok/append', { method: 'POST', body: 'one', headers: { authorization: 'Bearer w' } }],
  ['add of an entry already there', '/pub/add', { method: 'POST', body: 'two' }],
  ['add with a query', '/pub/add?x=1', { method: 'POST', body: 'two' }],
  ['append naming its tenant twice', '/pub/append', { method: 'POST', body: 'two', headers: { 'x-module-id': 'pub' } }],
  ['append naming two tenants', '/pub/append', { method: 'POST', body: 'two', headers: { 'x-module-id': 'tok' } }],
  ['append with a request id', '/pub/append', { method: 'POST', body: 'two', headers: { 'x-request-id': 'given-42' } }],
  ['append to an unknown tenant', '/nope/append', { method: 'POST', body: 'two' }],
  ['read without credentials', '/tok/checkpoint'],
  ['a given request id', '/pub/checkpoint', { headers: { 'x-request-id': 'given-42' } }],
];

for (const [name, path, init] of cases) {
  it(name, async () => {
    const viaApp = await answer(await env.app.request(path, init), { gunzip: true });
    const viaSocket = await answer(await fetch(base + path, init));
    expect(viaSocket.status).toBe(viaApp.status);
    expect(viaSocket.headers).toEqual(viaApp.headers);
    expect(viaSocket.body).toBe(viaApp.body);
    expect(viaSocket.requestId).toMatch(/^([0-9a-f]{16}|given-42)$/);
    expect(viaApp.requestId).toMatch(/^([0-9a-f]{16}|given-42)$/);
  });
}

it('a new entry: same headers, and the same answer but for the entry', async () => {
  const viaApp = await answer(await env.app.request('/pub/append', { method: 'POST', body: 'four' }));
  const viaSocket = await answer(await fetch(base + '/pub/append', { method: 'POST', body: 'five' }));
  expect(viaSocket.status).toBe(200);
  expect(viaSocket.headers).toEqual(viaApp.headers);
  const a = JSON.parse(viaApp.body) as Record<string, unknown>;
  const s = JSON.parse(viaSocket.body) as Record<string, unknown>;
  expect(Object.keys(s)).toEqual(Object.keys(a));
  expect(s.index).toBe((a.index as number) + 1);
});
