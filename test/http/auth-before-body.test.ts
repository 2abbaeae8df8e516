/**
 * Credentials are checked before a body is read. The attack this guards against: many
 * connections each sending a body near the limit to a tenant that needs a token, without one;
 * when bodies were read first, the server held every one of them (48 x 15 MiB took it from 95
 * to 819 MiB) before answering 401. Here, at small scale and over real sockets: every refused
 * request is answered while its body is still being sent, the server reads next to nothing of
 * it (counted on the server's side of each connection), and the connection is closed. The one
 * check that needs the body, a signed request's signature, runs after it is read.
 */
import net from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { signHttpRequest } from '../../src/client/signed-request.js';
import { BodyBudget } from '../../src/http/body-budget.js';
import { LINGER_BYTES } from '../../src/http/node-io.js';
import { clientKey, listen, makeEnv, parseRaw, tokenAuth, type AppEnv, type Listening } from './helpers.js';

let env: AppEnv;
let srv: Listening;
const bodies = new BodyBudget(256 << 20);
const key = clientKey(3);
/**
 * What the server may read of a refused request: its headers, what was in flight with them, and
 * what the client had handed to its socket when the answer came, which the server reads and
 * drops until the client stops (loopback socket buffers hold several MiB).
 */
const READ_BOUND = 8 << 20;

beforeAll(async () => {
  env = await makeEnv([{ name: 'locked', auth: tokenAuth({ tokens: ['w'], clients: [['c1', key.publicKey]] }) }], { bodies });
  srv = await listen(env.app);
});
afterAll(async () => {
  await srv.close();
  await env.close();
});

interface Flood {
  status: number;
  body: string;
  /** Bytes the client had handed to its socket when the answer came (-1: it never came). */
  sentWhenAnswered: number;
  /** Bytes the server read on this connection, headers included. */
  serverRead: number;
}

/**
 * Sends a request with a `size`-byte body (declared, or chunked), pumping the body as fast as
 * the socket takes it until an answer comes, then stops sending (half-closes); resolves once
 * the server closed the connection (with `keptOpen`, once the answer is whole).
 */
function flood(path: string, headers: Record<string, string>, size: number, o: { chunked?: boolean; keptOpen?: boolean } = {}): Promise<Flood> {
  return new Promise((resolve) => {
    const sock = net.connect(srv.port, '127.0.0.1');
    const chunk = Buffer.alloc(64 * 1024, 0x62);
    let sent = 0;
    let answeredAt = -1;
    let text = '';
    let finished = false;
    let localPort = -1;
    sock.on('connect', () => (localPort = sock.localPort!));
    const finish = () => {
      if (finished) return;
      finished = true;
      const a = parseRaw(text);
      // The server's side of this connection: its byte count once it is closed.
      const server = srv.sockets.get(localPort);
      resolve({ status: a.status, body: a.body, sentWhenAnswered: answeredAt, serverRead: server?.bytesRead ?? -1 });
      sock.destroy();
    };
    sock.on('data', (d) => {
      if (answeredAt < 0) {
        answeredAt = sent;
        if (!o.keptOpen) sock.end();
      }
      text += d.toString('latin1');
      const a = parseRaw(text);
      if (o.keptOpen && a.body.length >= Number(a.headers['content-length'] ?? Infinity)) finish();
    });
    sock.on('error', finish);
    sock.on('close', finish);
    const head = Object.entries({ host: 'x', 'content-type': 'application/octet-stream', ...headers }).map(([k, v]) => `${k}: ${v}\r\n`);
    const framing = o.chunked ? 'transfer-encoding: chunked\r\n' : `content-length: ${size}\r\n`;
    sock.write(`POST ${path} HTTP/1.1\r\n${head.join('')}${framing}\r\n`);
    const pump = () => {
      while (sent < size && answeredAt < 0 && !sock.destroyed) {
        const n = Math.min(chunk.length, size - sent);
        const piece = o.chunked ? Buffer.concat([Buffer.from(`${n.toString(16)}\r\n`), chunk.subarray(0, n), Buffer.from('\r\n')]) : chunk.subarray(0, n);
        sent += n;
        if (!sock.write(piece)) return void sock.once('drain', pump);
      }
      if (sent >= size && o.chunked && !sock.destroyed) sock.write('0\r\n\r\n');
    };
    pump();
  });
}

function expectRefusedUnread(r: Flood, size: number, why: RegExp): void {
  expect(r.status, r.body).toBe(401);
  const j = JSON.parse(r.body) as { error: string; code: string };
  expect(j.code).toBe('unauthorized');
  expect(j.error).toMatch(why);
  // Answered long before the body was all sent, having read little of it.
  expect(r.sentWhenAnswered).toBeGreaterThanOrEqual(0);
  expect(r.sentWhenAnswered).toBeLessThan(size);
  expect(r.serverRead).toBeGreaterThan(0);
  expect(r.serverRead).toBeLessThan(READ_BOUND);
}

it('8 connections x 15 MiB to a tenant that needs a token, without one: each 401 before its body is read', async () => {
  const size = 15 << 20;
  const rs = await Promise.all(Array.from({ length: 8 }, (_, i) => flood(i % 2 ? '/locked/append-batch' : '/locked/append', {}, size)));
  for (const r of rs) expectRefusedUnread(r, size, /needs a bearer token or a signed request/);
  // Nothing was held for them.
  expect(bodies.inFlight).toBe(0);
  expect(env.registry.get('locked')!.log.treeSize).toBe(0);
});

it('a wrong token, and a chunked body without credentials: 401 before the body is read', async () => {
  const size = 8 << 20;
  expectRefusedUnread(await flood('/locked/append-batch', { authorization: 'Bearer wrong' }, size), size, /bearer token not accepted/);
  expectRefusedUnread(await flood('/locked/append-batch', {}, size, { chunked: true }), size, /needs a bearer token/);
});

const sign = (url: string, body: Uint8Array, counter: number, o: { clientID?: string; origin?: string } = {}) =>
  signHttpRequest({ clientID: o.clientID ?? 'c1', seed: key.seed, origin: o.origin ?? 'example.com/locked', method: 'POST', url, body, counter });

it("signed requests: an unknown client, malformed headers, another tenant's tag, a bad signature and a stale counter are refused before the body is read", async () => {
  const size = 8 << 20;
  const body = Buffer.alloc(size, 0x62);
  const good = await sign('/locked/append-batch', body, 5);
  expectRefusedUnread(await flood('/locked/append-batch', await sign('/locked/append-batch', body, 5, { clientID: 'nobody' }), size), size, /unknown client/);
  expectRefusedUnread(await flood('/locked/append-batch', { ...good, 'Tlog-Counter': '05' }, size), size, /Tlog-Counter must be a canonical decimal/);
  expectRefusedUnread(
    await flood('/locked/append-batch', await sign('/locked/append-batch', body, 5, { origin: 'example.com/other' }), size),
    size,
    /made for another tenant/,
  );
  expectRefusedUnread(await flood('/locked/append-batch', { ...good, 'Tlog-Counter': '6' }, size), size, /signature does not verify/);
  // Counter 5 used up by a small signed append: the same counter on a large body is stale.
  const small = Buffer.from('signed small');
  const ok = await fetch(`http://127.0.0.1:${srv.port}/locked/append`, {
    method: 'POST',
    body: small,
    headers: { 'content-type': 'application/octet-stream', ...(await sign('/locked/append', small, 5)) },
  });
  expect(ok.status).toBe(200);
  expectRefusedUnread(await flood('/locked/append-batch', good, size), size, /replayed or stale/);
});

it('a client that goes on sending after its refusal: the server drops what comes up to its linger bound, then closes', async () => {
  const size = 40 << 20;
  const r = await new Promise<{ status: number; serverRead: number }>((resolve) => {
    // allowHalfOpen: our side stays open for writing after the server's FIN, as a deaf client's would.
    const sock = net.connect({ port: srv.port, host: '127.0.0.1', allowHalfOpen: true });
    const chunk = Buffer.alloc(64 * 1024, 0x62);
    let text = '';
    let localPort = -1;
    let sent = 0;
    sock.on('connect', () => (localPort = sock.localPort!));
    sock.on('data', (d) => (text += d.toString('latin1')));
    const done = () => resolve({ status: parseRaw(text).status, serverRead: srv.sockets.get(localPort)?.bytesRead ?? -1 });
    sock.on('error', done);
    sock.on('close', done);
    sock.write(`POST /locked/append-batch HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\n\r\n`);
    // Deaf to the answer: keeps sending until the server closes.
    const pump = () => {
      while (sent < size && !sock.destroyed) {
        sent += chunk.length;
        if (!sock.write(chunk)) return void sock.once('drain', pump);
      }
    };
    pump();
  });
  expect(r.status).toBe(401);
  expect(r.serverRead).toBeGreaterThan(LINGER_BYTES);
  expect(r.serverRead).toBeLessThan(LINGER_BYTES + (1 << 20));
});

it('what needs the body is checked after it is read: a body other than the signed digest is refused having read it', async () => {
  const size = 2 << 20;
  const other = await sign('/locked/append-batch', Buffer.from('another body'), 6);
  const r = await flood('/locked/append-batch', other, size, { keptOpen: true });
  expect(r.status).toBe(401);
  expect((JSON.parse(r.body) as { error: string }).error).toMatch(/^Content-Digest sha256 does not match the body/);
  expect(r.serverRead).toBeGreaterThan(size);
  expect(bodies.inFlight).toBe(0);
});

it('with the token, the same body is read and taken', async () => {
  const entries = Array.from({ length: 40 }, (_, i) => Buffer.alloc(50_000, i + 1));
  const bundle = Buffer.concat(entries.flatMap((e) => [Buffer.from([e.length >> 8, e.length & 0xff]), e]));
  const r = await fetch(`http://127.0.0.1:${srv.port}/locked/append-batch`, {
    method: 'POST',
    body: bundle,
    headers: { authorization: 'Bearer w', 'content-type': 'application/octet-stream' },
  });
  expect(r.status).toBe(200);
  expect(env.registry.get('locked')!.log.treeSize).toBe(41);
  expect(bodies.inFlight).toBe(0);
});
