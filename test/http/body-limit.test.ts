/**
 * The request body over a real socket, where it is read from node's IncomingMessage rather than
 * a web stream: the limit holds before and while the body streams in (a declared Content-Length
 * over the tenant's limit is refused before any of it is read; a chunked body over it is refused
 * with 413 long before it is all sent, so a client cannot make the server buffer an unbounded
 * body); a body in many chunks arrives whole; an upload cut off midway ends its request without
 * appending anything or hurting the server; and node-server never builds the web Request.
 */
import { serve } from '@hono/node-server';
import type { Server } from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { makeEnv, type AppEnv } from './helpers.js';

let env: AppEnv;
let server: Server;
let port: number;
/** The Request objects node-server handed the app, newest last. */
const requests: Request[] = [];

beforeAll(async () => {
  env = await makeEnv([{ name: 'lim', limits: { maxBodyBytes: 1000 } }]);
  const fetch = (req: Request, bindings: unknown) => {
    requests.push(req);
    return env.app.fetch(req, bindings);
  };
  server = await new Promise<Server>((resolve) => {
    const s = serve({ fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(s as Server));
  });
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  await env.close();
});

/** Streams up to `total` bytes in chunks; returns the status and how much was sent when the answer came. */
function streamChunked(path: string, total: number): Promise<{ status: number; sentWhenAnswered: number }> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let sent = 0;
    let answer = '';
    let answeredAt = -1;
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    const finish = () => {
      const m = /^HTTP\/1\.1 ([0-9]{3})/.exec(answer);
      resolve({ status: m ? Number(m[1]) : 0, sentWhenAnswered: answeredAt });
      sock.destroy();
    };
    sock.on('data', (d) => {
      answer += d.toString('latin1');
      if (answeredAt < 0) answeredAt = sent;
      if (/\r\n\r\n/.test(answer)) finish();
    });
    sock.on('error', () => finish());
    sock.on('close', () => finish());
    sock.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n`);
    const pump = () => {
      while (sent < total && answeredAt < 0) {
        sent += chunk.length;
        const ok = sock.write(Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]));
        if (!ok) return void sock.once('drain', pump);
      }
      if (sent >= total && answeredAt < 0) sock.write('0\r\n\r\n');
    };
    pump();
  });
}

/**
 * Regression: readBody() used to buffer a chunked body whole before comparing it with the limit.
 * It now stops at the limit. "Sent" counts what the client handed to its socket, which loopback
 * socket buffers (several MiB) absorb before the server has read any of it, so the bound is
 * 8 MiB of a 64 MiB body: the answer comes long before the body ends.
 */
it('a chunked body over the limit is refused long before it is all sent', async () => {
  const r = await streamChunked('/lim/append', 64 << 20);
  expect(r.status).toBe(413);
  expect(r.sentWhenAnswered).toBeGreaterThan(0);
  expect(r.sentWhenAnswered).toBeLessThan(8 << 20);
});

it('a chunked body over the limit gets 413 in the end, and nothing is appended', async () => {
  const r = await streamChunked('/lim/append', 4 << 20);
  expect(r.status).toBe(413);
  expect(env.registry.get('lim')!.log.treeSize).toBe(0);
});

/** Sends raw bytes on a fresh connection; resolves with everything the server sent until it closed or `ms` passed. */
function exchange(bytes: string | Buffer, o: { ms?: number; destroyAfterMs?: number } = {}): Promise<string> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let answer = '';
    const done = () => {
      clearTimeout(timer);
      sock.destroy();
      resolve(answer);
    };
    const timer = setTimeout(done, o.ms ?? 2000);
    sock.on('data', (d) => (answer += d.toString('latin1')));
    sock.on('error', done);
    sock.on('close', done);
    sock.write(bytes);
    if (o.destroyAfterMs !== undefined) setTimeout(() => sock.destroy(), o.destroyAfterMs);
  });
}

const statusOf = (answer: string) => Number(/^HTTP\/1\.1 ([0-9]{3})/.exec(answer)?.[1] ?? 0);
const bodyOf = (answer: string) => answer.slice(answer.indexOf('\r\n\r\n') + 4);
const chunked = (parts: Buffer[]) =>
  Buffer.concat([...parts.flatMap((p) => [Buffer.from(`${p.length.toString(16)}\r\n`), p, Buffer.from('\r\n')]), Buffer.from('0\r\n\r\n')]);

/** The lightweight Request of @hono/node-server built its undici Request (with body stream) or its AbortController. */
function builtWebRequest(req: Request): boolean {
  const built = new Set(['requestCache', 'abortControllerKey']);
  return Object.getOwnPropertySymbols(req).some((s) => built.has(s.description!) && (req as unknown as Record<symbol, unknown>)[s] !== undefined);
}

it('a declared Content-Length over the limit is refused before the body is sent', async () => {
  const before = env.registry.get('lim')!.log.treeSize;
  // Headers only: the answer must come without the server waiting for the 5000 bytes.
  const answer = await exchange('POST /lim/append HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 5000\r\n\r\n', { ms: 1000 });
  expect(statusOf(answer)).toBe(413);
  expect(JSON.parse(bodyOf(answer))).toEqual({ error: "body is 5000 bytes, over this tenant's limit of 1000 bytes", code: 'too_large' });
  expect(env.registry.get('lim')!.log.treeSize).toBe(before);
});

it('a chunked body over the limit is refused with Connection: close, and the connection is closed', async () => {
  const answer = await exchange(
    Buffer.concat([
      Buffer.from('POST /lim/append HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n'),
      chunked([Buffer.alloc(600, 1), Buffer.alloc(600, 2)]),
    ]),
  );
  expect(statusOf(answer)).toBe(413);
  expect(answer).toMatch(/\r\nconnection: close\r\n/i);
  expect(JSON.parse(bodyOf(answer))).toEqual({ error: "body is over this tenant's limit of 1000 bytes", code: 'too_large' });
});

it('a body in many chunks, up to the limit, is read whole from the node request without building the web Request', async () => {
  const parts = Array.from({ length: 10 }, (_, i) => Buffer.alloc(100, 0x41 + i));
  const answer = await exchange(
    Buffer.concat([Buffer.from('POST /lim/append HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n'), chunked(parts)]),
  );
  expect(statusOf(answer)).toBe(200);
  const { index } = JSON.parse(bodyOf(answer)) as { index: number };
  const [stored] = (await env.registry.get('lim')!.log.readEntries(index, 1)).entries;
  expect(Buffer.from(stored!)).toEqual(Buffer.concat(parts));
  // The point of reading from the IncomingMessage: no undici Request, web stream or AbortSignal per append.
  expect(builtWebRequest(requests.at(-1)!)).toBe(false);
});

it('an upload cut off midway ends its request, appends nothing, and the server goes on serving', async () => {
  const log = env.registry.get('lim')!.log;
  const before = log.treeSize;
  const lines = env.logLines.length;
  const answer = await exchange(`POST /lim/append HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n${'q'.repeat(100)}`, { destroyAfterMs: 50 });
  expect(answer).toBe('');
  // The request's log line says it ended (no promise left waiting for the rest of the body).
  for (let i = 0; i < 100 && !env.logLines.slice(lines).some((l) => l.path === '/lim/append'); i++) await new Promise((r) => setTimeout(r, 20));
  const line = env.logLines.slice(lines).find((l) => l.path === '/lim/append');
  // The client's fault: a 4xx, never a 500 (no client input may produce one).
  expect(line?.status).toBe(400);
  expect(log.treeSize).toBe(before);
  const next = await exchange('POST /lim/append HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 5\r\n\r\nafter');
  expect(statusOf(next)).toBe(200);
  expect(log.treeSize).toBe(before + 1);
});
