/**
 * Fuzz: many thousands of random and malformed requests (paths with binary and percent garbage,
 * traversal fragments, random methods, headers, content types, bodies, truncated bundles, lying
 * Content-Length) through app.request() and over a raw socket. No answer may be a 5xx, the
 * process must not crash, every acknowledged entry must be where its answer said, and every
 * tenant's log must still pass a full audit afterwards.
 *
 *   FUZZ_N=50000 FUZZ_SEED=123 npx vitest run test/http/fuzz.test.ts
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditLog } from '../../src/client/audit.js';
import { signHttpRequest } from '../../src/client/signed-request.js';
import { dirSource } from '../../src/client/source.js';
import { leafHash } from '../../src/merkle/hash.js';
import { prng, randBytes, randInt } from '../prng.mjs';
import { clientKey, listen, makeEnv, parseRaw, SENTINEL, tokenAuth, type AppEnv, type Listening } from './helpers.js';

const N = Number(process.env.FUZZ_N ?? 5000);
const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const RAW_N = Math.max(200, Math.floor(N / 10));
const rand = prng(SEED);
const key = clientKey(7);

let env: AppEnv;
let srv: Listening;
let port: number;

beforeAll(async () => {
  console.log(`fuzz: seed ${SEED} (FUZZ_SEED=${SEED} to replay), ${N} app requests, ${RAW_N} raw socket requests`);
  env = await makeEnv([
    { name: 'fz' },
    {
      name: 'fs',
      auth: tokenAuth({ tokens: ['fs-token'], clients: [['fc', key.publicKey]] }),
      limits: { maxBodyBytes: 70_000, ratePerSecond: 50, burst: 500 },
    },
    { name: 'fr', auth: tokenAuth({ tokens: ['fr-token'], readTokens: ['fr-read'] }), limits: { maxPending: 64 } },
  ]);
  // The server `tlog serve` runs: its own answers to what node's parser refuses are fuzzed too.
  srv = await listen(env.app);
  port = srv.port;
});
afterAll(async () => {
  await srv.close();
  await env.close();
});

// ---- generators ----

const pick = <T>(xs: readonly T[]): T => xs[randInt(rand, 0, xs.length)]!;
const chance = (p: number) => rand() < p;

const TENANTS = ['fz', 'fs', 'fr', 'nobody', 'FZ', '', '..', '%2e%2e', 'fz%2F..', 'a'.repeat(70), 'f z', 'fz\u0000', 'ƒz'];
const ROUTES = [
  'checkpoint',
  'append',
  'append-batch',
  'read_since',
  'proof/inclusion',
  'proof/consistency',
  'proof/by-hash/',
  'tile/',
  'tile/entries/',
  'healthz',
  'metrics',
  'admin/reload',
];
const FRAGMENTS = [
  '..',
  '.',
  '%2e%2e',
  '%2E.',
  '%2f',
  '%2F',
  '%5c',
  '\\',
  '//',
  '%00',
  '%',
  '%zz',
  '%ff',
  '%c0%ae',
  'x000',
  '000',
  '001',
  'x001',
  '.p',
  '.p/1',
  '.p/0',
  '.p/256',
  '255',
  'entries',
  'data',
  '0',
  '63',
  '64',
  '-1',
  'SECRET',
  '~',
  ';',
  '?',
  '#',
  '&',
  '=',
  ' ',
  '\t',
  'é',
  '\u202e',
];

function randNumber(): string {
  return pick([
    () => String(randInt(rand, 0, 600)),
    () => String(randInt(rand, 0, 2 ** 31)),
    () => '0' + String(randInt(rand, 0, 100)),
    () => '-' + String(randInt(rand, 0, 100)),
    () => '9'.repeat(randInt(rand, 15, 40)),
    () => pick(['', ' ', '1e3', '0x10', 'NaN', 'Infinity', '1.5', '+3', '٣', '%31', '1,2', '[]', 'null']),
    () => String(2 ** 53),
  ])();
}

function randTilePath(): string {
  const level = pick(['0', '1', '2', 'entries', '63', '64', '00', '-1', 'x', randNumber()]);
  const segs: string[] = [];
  for (let i = randInt(rand, 0, 4); i > 0; i--)
    segs.push(pick(['x000', 'x001', 'x999', `x${randInt(rand, 0, 1000).toString().padStart(3, '0')}`, '001', '0001', '..', 'x']));
  segs.push(pick(['000', '001', '002', '0001', '1', String(randInt(rand, 0, 1000)).padStart(3, '0'), '..', '']));
  let p = `tile/${level}/${segs.join('/')}`;
  if (chance(0.3)) p += `.p/${pick(['1', '44', '255', '256', '0', '01', randNumber()])}`;
  if (chance(0.1)) p += pick(['/', '//', '/..', '%2F..']);
  return p;
}

function percentGarbage(): string {
  let s = '';
  for (let i = randInt(rand, 0, 30); i > 0; i--) {
    s += pick([
      () => '%' + randInt(rand, 0, 256).toString(16).padStart(2, '0'),
      () => pick(FRAGMENTS),
      () => String.fromCharCode(randInt(rand, 0x21, 0x7f)),
      () => '/',
      () => String.fromCharCode(randInt(rand, 0x80, 0x3000)),
    ])();
  }
  return s;
}

function randTenant(): string {
  return chance(0.75) ? pick(['fz', 'fz', 'fs', 'fr']) : pick(TENANTS);
}

function randPath(): string {
  const t = randTenant();
  return pick([
    () => `/${t}/${pick(ROUTES)}`,
    () => `/${t}/read_since?index=${randNumber()}&limit=${randNumber()}`,
    () => `/${t}/proof/inclusion?index=${randNumber()}${chance(0.7) ? `&tree_size=${randNumber()}` : ''}`,
    () => `/${t}/proof/consistency?old=${randNumber()}${chance(0.7) ? `&new=${randNumber()}` : ''}`,
    () => `/${t}/proof/by-hash/${pick([Buffer.from(randBytes(rand, 32)).toString('hex'), percentGarbage(), '0'.repeat(64), 'A'.repeat(64)])}`,
    () => `/${t}/${randTilePath()}`,
    () => `/${t}/append${pick(['', '?proofs=1', '?proofs=', '-batch?proofs=1', '-batch?proofs=yes', '-batch'])}`,
    () => `/${pick(['read_since', 'append', 'append-batch', 'proof/inclusion', 'checkpoint', 'tile/0/000'])}?index=${randNumber()}`,
    () => `/${percentGarbage()}`,
    () => `/${t}/${percentGarbage()}`,
    () => `/${t}/tile/${percentGarbage()}`,
    () => pick(['/', '/healthz', '/metrics', '/admin/reload', '//', '/?', '/%', '/..', '/fz/', '/fz//checkpoint']),
  ])();
}

const CONTENT_TYPES = [
  'application/octet-stream',
  'application/json',
  'application/json; charset=utf-8',
  'APPLICATION/JSON',
  'application/octet-stream; foo=bar',
  'text/plain',
  'multipart/form-data; boundary=xyz',
  'application/x-www-form-urlencoded',
  '',
  ';',
  'application/json;;;',
  'application/\u00ff',
];

function randHeaders(): Record<string, string> {
  const h: Record<string, string> = {};
  if (chance(0.7)) h['content-type'] = pick(CONTENT_TYPES);
  if (chance(0.3)) h['x-module-id'] = pick([...TENANTS.filter((x) => /^[\x20-\x7e]*$/.test(x)), 'fz', 'fz', 'fs', 'fr']);
  if (chance(0.3))
    h.authorization = pick([
      'Bearer fs-token',
      'Bearer fr-token',
      'Bearer fr-read',
      'Bearer nope',
      'Bearer ',
      'Basic Zm9v',
      'Bearer ' + 'x'.repeat(1000),
      'Bearer\tfs-token',
      'bearer fs-token',
    ]);
  if (chance(0.2)) h.accept = pick(['application/octet-stream', 'application/json', '*/*', 'text/html', '']);
  if (chance(0.2)) h['accept-encoding'] = pick(['gzip', 'br', 'identity', 'gzip;q=0', '*', 'deflate, gzip']);
  if (chance(0.1)) h['if-none-match'] = pick(['"tile/0/000"', '*', '"', 'W/"x"', '"cp-0-0000000000000000"']);
  if (chance(0.1)) h.traceparent = pick(['00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', '00-zz-00-01', 'x'.repeat(300), '']);
  if (chance(0.1)) h['x-request-id'] = pick(['ok-id', 'bad id', 'x'.repeat(200), '../../etc']);
  if (chance(0.15)) {
    h['x-tlog-client'] = pick(['fc', 'nobody', '', 'x'.repeat(100)]);
    h['x-tlog-counter'] = randNumber().replace(/[^\x20-\x7e]/g, '');
    h['x-tlog-nonce'] = pick(['00'.repeat(16), 'zz', '', 'AB'.repeat(16), '0'.repeat(200)]);
    h['x-tlog-signature'] = pick([Buffer.from(randBytes(rand, 64)).toString('base64'), '', '!!!', 'AAAA']);
  }
  if (chance(0.15)) {
    h['signature-input'] = pick([
      'tlog=("@method" "@path" "@query" "content-digest" "tlog-counter");created=1;keyid="fc";nonce="0123456789abcdef";tag="tlog-worm/example.com/fs"',
      'sig1=(',
      '',
      'a=("@status");tag="tlog-worm/x"',
      'b=();tag="tlog-worm/example.com/fs";keyid="fc";created=99999999999;nonce="n"',
      'c=("@method" "@method")',
    ]);
    h.signature = pick([`tlog=:${Buffer.from(randBytes(rand, 64)).toString('base64')}:`, '', 'tlog=1', 'tlog=:AAAA:']);
    if (chance(0.5)) h['content-digest'] = pick(['sha-256=:AAAA:', '', 'sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:', 'md5=?1']);
    if (chance(0.5)) h['tlog-counter'] = randNumber().replace(/[^\x20-\x7e]/g, '');
  }
  if (chance(0.05)) h['content-length'] = pick(['0', '1', '99999999999', '-1', 'abc', '16777217']);
  return h;
}

let entrySeq = 0;
const entry = () => Buffer.from(`fuzz ${SEED} ${entrySeq++} ${'~'.repeat(randInt(rand, 0, 40))}`);

function bundle(entries: Uint8Array[]): Buffer {
  return Buffer.concat(entries.flatMap((e) => [Buffer.from([e.length >> 8, e.length & 0xff]), Buffer.from(e)]));
}

function randBody(): Uint8Array | string | undefined {
  return pick([
    () => undefined,
    () => entry(),
    () => new Uint8Array(0),
    () => randBytes(rand, randInt(rand, 1, 300)),
    () => bundle(Array.from({ length: randInt(rand, 1, 20) }, entry)),
    () => bundle(Array.from({ length: randInt(rand, 1, 20) }, entry)).subarray(0, -randInt(rand, 1, 10)), // truncated
    () => Buffer.concat([bundle([entry()]), Uint8Array.of(0)]),
    () => Uint8Array.of(0, 0),
    () => Uint8Array.of(0xff, 0xff, 1, 2, 3),
    () => new Uint8Array(65536).fill(0x41),
    () => new Uint8Array(65535).fill(randInt(rand, 0, 256)),
    () => JSON.stringify(Array.from({ length: randInt(rand, 0, 10) }, () => entry().toString('base64'))),
    () => JSON.stringify({ entries: Array.from({ length: randInt(rand, 0, 10) }, () => entry().toString('base64')) }),
    () =>
      JSON.stringify(pick([null, 1, 'x', [1, 2], { entries: 'x' }, { entries: [null] }, [''], ['YQ'], ['YQ=='], [{}], { __proto__: { entries: ['YQ=='] } }])),
    () => '{"entries":[' + '"YQ==",'.repeat(randInt(rand, 0, 50)),
    () => '['.repeat(randInt(rand, 1, 5000)),
    () => Buffer.from(percentGarbage()),
  ])();
}

/** A request shaped like a real one (right method for the route), with random parameters and bodies. */
function structured(): { method: string; path: string } {
  const t = chance(0.9) ? pick(['fz', 'fs', 'fr']) : randTenant();
  return pick([
    () => ({
      method: 'GET',
      path: `/${t}/read_since?index=${chance(0.6) ? randInt(rand, 0, 80) : randNumber()}${chance(0.5) ? `&limit=${chance(0.6) ? randInt(rand, 1, 50) : randNumber()}` : ''}`,
    }),
    () => ({ method: 'GET', path: `/${t}/proof/inclusion?index=${randInt(rand, 0, 80)}&tree_size=${randInt(rand, 0, 100)}` }),
    () => ({ method: 'GET', path: `/${t}/proof/consistency?old=${randInt(rand, 0, 80)}&new=${randInt(rand, 0, 100)}` }),
    () => ({ method: 'GET', path: `/${t}/checkpoint` }),
    () => ({ method: 'GET', path: `/${t}/tile/${pick(['0', 'entries', '1'])}/000${chance(0.8) ? `.p/${randInt(rand, 1, 100)}` : ''}` }),
    () => ({ method: 'POST', path: `/${t}/append` }),
    () => ({ method: 'POST', path: `/${t}/append-batch${chance(0.3) ? '?proofs=1' : ''}` }),
  ])();
}

const METHODS = ['GET', 'GET', 'GET', 'POST', 'POST', 'POST', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'PATCH', 'FOO', 'get', 'post'];

/** What the answer promised, to check against the log afterwards. */
interface Ack {
  tenant: string;
  index: number;
  leafHash: string;
}

function collectAcks(tenant: string, path: string, body: unknown, acks: Ack[]): void {
  const b = body as { index?: number; leafHash?: string; results?: { index: number; leafHash: string }[] };
  if (/\/append$/.test(path) && typeof b.index === 'number' && b.leafHash) acks.push({ tenant, index: b.index, leafHash: b.leafHash });
  if (/\/append-batch$/.test(path) && Array.isArray(b.results)) for (const r of b.results) acks.push({ tenant, index: r.index, leafHash: r.leafHash });
}

describe('fuzz', () => {
  const acks: Ack[] = [];
  const statuses = new Map<number, number>();

  it(`${N} random requests through app.request(): no 5xx, error answers are JSON`, async () => {
    let skipped = 0;
    let counter = 0;
    const one = async (i: number) => {
      const shaped = chance(0.4) ? structured() : { method: pick(METHODS), path: randPath() };
      const method = shaped.method;
      let path = shaped.path;
      let headers = randHeaders();
      let body = method === 'GET' || method === 'HEAD' || method === 'get' ? undefined : randBody();
      // Now and then a correctly signed request for the signed tenant (so the signed path is exercised with real counters).
      if (i % 50 === 0) {
        path = pick(['/fs/append', '/fs/append-batch']);
        body = path.endsWith('batch') ? bundle([entry(), entry()]) : entry();
        const bytes = typeof body === 'string' ? Buffer.from(body) : body;
        headers = {
          'content-type': 'application/octet-stream',
          ...(await signHttpRequest({
            clientID: 'fc',
            seed: key.seed,
            origin: 'example.com/fs',
            method: 'POST',
            url: path,
            body: bytes,
            counter: Math.max(0, ++counter + (chance(0.2) ? -2 : 0)),
          })),
        };
      }
      let req: Request;
      try {
        req = new Request(`http://localhost${path}`, { method, headers, body: body as BodyInit | undefined });
      } catch {
        skipped++; // not even a valid client request (e.g. a header value no client may send)
        return;
      }
      const res = await env.app.request(req);
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      const text = method.toUpperCase() === 'HEAD' ? '' : await res.text();
      expect(res.status, `seed ${SEED} #${i}: ${method} ${path} ${JSON.stringify(headers)} -> ${res.status} ${text.slice(0, 200)}`).toBeLessThan(500);
      expect(text, `${method} ${path}`).not.toContain(SENTINEL);
      if (res.status >= 400 && text) {
        const j = JSON.parse(text) as { error: unknown; code: unknown };
        expect(typeof j.error).toBe('string');
        expect(typeof j.code).toBe('string');
      }
      if (res.status === 200 && method.toUpperCase() === 'POST') {
        const tenant = /^\/([a-z0-9_-]+)\/append/.exec(new URL(req.url).pathname)?.[1] ?? req.headers.get('x-module-id') ?? '';
        collectAcks(tenant, new URL(req.url).pathname, JSON.parse(text), acks);
      }
    };
    // Requests go in waves of 32 concurrent, so batching and back-pressure paths run too.
    for (let i = 0; i < N; i += 32) await Promise.all(Array.from({ length: Math.min(32, N - i) }, (_, j) => one(i + j)));
    console.log(
      `fuzz: statuses ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}, ${skipped} rejected by the Request constructor, ${acks.length} acknowledged entries`,
    );
    expect(statuses.get(200) ?? 0).toBeGreaterThan(0);
    expect(statuses.get(400) ?? 0).toBeGreaterThan(0);
    expect(statuses.get(404) ?? 0).toBeGreaterThan(0);
  });

  it(`${RAW_N} raw socket requests: garbage request lines, headers, lying Content-Length, truncated bodies`, async () => {
    const sendRaw = (data: Buffer, waitMs: number): Promise<string> =>
      new Promise((resolve) => {
        const sock = net.connect(port, '127.0.0.1');
        const chunks: Buffer[] = [];
        const done = () => {
          sock.destroy();
          resolve(Buffer.concat(chunks).toString('latin1'));
        };
        const timer = setTimeout(done, waitMs);
        sock.on('data', (d) => chunks.push(d));
        sock.on('error', () => undefined);
        sock.on('close', () => {
          clearTimeout(timer);
          done();
        });
        // A half-close: the server sees the end of what the client had to say.
        sock.end(data);
      });
    const codes = new Map<number, number>();
    const one = async () => {
      const shaped = chance(0.4) ? structured() : null;
      const method = shaped?.method ?? pick([...METHODS, 'G\u0000T', '', 'POST POST', 'CONNECT']);
      const target = (shaped?.path ?? pick([randPath(), percentGarbage(), '*', 'http://127.0.0.1/fz/checkpoint', '/fz/checkpoint', '/fz/append'])).replace(
        /[\r\n ]/g,
        chance(0.5) ? '%20' : '',
      );
      const lines = [`${method} ${target} ${shaped ? 'HTTP/1.1' : pick(['HTTP/1.1', 'HTTP/1.0', 'HTTP/2', 'HTTP/1.1', 'HTTX'])}`, 'Host: 127.0.0.1'];
      const body = randBody();
      const bytes = body === undefined ? Buffer.alloc(0) : Buffer.from(body as Uint8Array);
      const cl = pick(['honest', 'honest', 'huge', 'short', 'long', 'none', 'garbage', 'double', 'chunked', 'chunked-bad']);
      if (cl === 'honest') lines.push(`Content-Length: ${bytes.length}`);
      if (cl === 'huge') lines.push('Content-Length: 99999999999999');
      if (cl === 'short') lines.push(`Content-Length: ${Math.max(0, bytes.length - 3)}`);
      if (cl === 'long') lines.push(`Content-Length: ${bytes.length + 10}`);
      if (cl === 'garbage') lines.push('Content-Length: 12abc');
      if (cl === 'double') lines.push('Content-Length: 1', 'Content-Length: 2');
      if (cl.startsWith('chunked')) lines.push('Transfer-Encoding: chunked');
      for (const [k, v] of Object.entries(randHeaders())) if (k !== 'content-length') lines.push(`${k}: ${v}`);
      if (chance(0.1)) lines.push(pick(['X-Bad\u0000Header: 1', 'No colon here', `X-Long: ${'a'.repeat(20_000)}`, ': empty name']));
      lines.push('Connection: close');
      let payload: Buffer = bytes;
      if (cl === 'chunked') payload = Buffer.concat([Buffer.from(`${bytes.length.toString(16)}\r\n`), bytes, Buffer.from('\r\n0\r\n\r\n')]);
      if (cl === 'chunked-bad') payload = Buffer.concat([Buffer.from('zz\r\n'), bytes]);
      const req = Buffer.concat([Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1'), payload]);
      // Sometimes the client hangs up half-way.
      const sent = chance(0.1) ? req.subarray(0, randInt(rand, 1, req.length)) : req;
      const text = await sendRaw(sent, 1000);
      const m = /^HTTP\/1\.[01] ([0-9]{3})/.exec(text);
      const code = m ? Number(m[1]) : 0;
      codes.set(code, (codes.get(code) ?? 0) + 1);
      expect(code, `seed ${SEED}: ${JSON.stringify(sent.toString('latin1').slice(0, 300))} -> ${text.slice(0, 300)}`).toBeLessThan(500);
      expect(text).not.toContain(SENTINEL);
      // Every refusal, the parser's included, is the JSON error.
      if (code >= 400 && !sent.toString('latin1').startsWith('HEAD ')) {
        const a = parseRaw(text);
        const body = a.body.slice(0, Number(a.headers['content-length']));
        expect(JSON.parse(body), `seed ${SEED}: ${JSON.stringify(sent.toString('latin1').slice(0, 300))} -> ${text.slice(0, 300)}`).toEqual({
          error: expect.any(String),
          code: expect.any(String),
        });
      }
    };
    for (let i = 0; i < RAW_N; i += 16) await Promise.all(Array.from({ length: Math.min(16, RAW_N - i) }, one));
    console.log(`fuzz raw: statuses (0 = no answer) ${JSON.stringify(Object.fromEntries([...codes].sort((a, b) => a[0] - b[0])))}`);
    // Still alive and serving.
    const h = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(h.status).toBe(200);
  });

  it('afterwards: every acknowledged entry is where its answer said, and every log passes a full audit', async () => {
    for (const t of env.registry.all()) {
      // Let anything still integrating finish.
      while (t.log.pendingCount > 0) await new Promise((r) => setTimeout(r, 10));
    }
    for (const a of acks) {
      const log = env.registry.get(a.tenant)!.log;
      expect(Buffer.from(await log.leafHashAt(a.index)).toString('base64'), `${a.tenant} ${a.index}`).toBe(a.leafHash);
    }
    for (const t of env.registry.all()) {
      const report = await auditLog(dirSource(t.log.paths.tilesDir), { verifiers: t.log.verifiers });
      expect(report.treeSize).toBe(t.log.treeSize);
      // Every entry appears once (dedup held under the storm), and every acknowledged one is there.
      const seen = new Set<string>();
      for (let i = 0; i < t.log.treeSize; i += 4096) {
        for (const e of (await t.log.readEntries(i, 4096)).entries) seen.add(Buffer.from(leafHash(e)).toString('base64'));
      }
      expect(seen.size).toBe(t.log.treeSize);
      for (const a of acks.filter((x) => x.tenant === t.name)) expect(seen.has(a.leafHash)).toBe(true);
    }
    console.log(`fuzz: tree sizes ${JSON.stringify(Object.fromEntries(env.registry.all().map((t) => [t.name, t.log.treeSize])))}`);
  });
});
