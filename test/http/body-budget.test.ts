/**
 * The bounds on request bodies beyond each tenant's limit: /append takes no more than the
 * largest entry (65535 bytes), refused before the body is read; and all bodies in flight share
 * one budget: a request whose declared body does not fit what is left gets 503 + Retry-After
 * before any of it is read, a streamed body that grows past it gets 503 mid-stream (and the
 * connection is closed), and a body's share comes back when its request ends, however it ends.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BodyBudget } from '../../src/http/body-budget.js';
import { bundleBody, listen, makeEnv, rawExchange, type AppEnv, type Listening } from './helpers.js';
import { until } from '../helpers/wait.js';

const BUDGET = 100_000;
let env: AppEnv;
let srv: Listening;
const bodies = new BodyBudget(BUDGET);

beforeAll(async () => {
  env = await makeEnv([{ name: 'big' }], { bodies });
  srv = await listen(env.app);
});
afterAll(async () => {
  await srv.close();
  await env.close();
});

const post = (path: string, head: string) => `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n${head}\r\n`;

/** A request that declares `declared` bytes, sends a few and stalls: it holds its share until destroyed. */
async function holder(declared: number): Promise<net.Socket> {
  const sock = net.connect(srv.port, '127.0.0.1');
  sock.on('error', () => undefined);
  sock.write(post('/big/append-batch', `Content-Length: ${declared}\r\n`) + 'x'.repeat(100));
  await until(`the holder's ${declared} bytes`, () => bodies.inFlight === declared);
  return sock;
}

/** A bundle (u16 length + entry) of exactly `n` bytes. */
function bundleOf(n: number, fill: number): Buffer {
  return Buffer.from(bundleBody([Buffer.alloc(n - 2, fill)]));
}

describe('/append takes no more than the largest entry', () => {
  it('65535 bytes declared are taken; 65536 are refused before the body is sent', async () => {
    const over = await rawExchange(srv.port, post('/big/append', 'Content-Length: 65536\r\n'));
    expect(over.status).toBe(413);
    expect(JSON.parse(over.body)).toEqual({ error: 'body is 65536 bytes, over the largest entry, 65535 bytes', code: 'too_large' });
    expect(over.headers.connection).toBe('close');
    expect(over.closed).toBe(true);
    const ok = await rawExchange(
      srv.port,
      Buffer.concat([Buffer.from(post('/big/append', 'Content-Length: 65535\r\nConnection: close\r\n')), Buffer.alloc(65535, 7)]),
    );
    expect(ok.status, ok.body).toBe(200);
    expect(env.registry.get('big')!.log.treeSize).toBe(1);
  });

  it('a chunked body passing 65535 bytes is refused while it streams in', async () => {
    const chunk = (b: Buffer) => Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n')]);
    const r = await rawExchange(
      srv.port,
      Buffer.concat([
        Buffer.from(post('/big/append', 'Transfer-Encoding: chunked\r\n')),
        chunk(Buffer.alloc(40_000, 1)),
        chunk(Buffer.alloc(25_536, 2)),
        Buffer.from('0\r\n\r\n'),
      ]),
    );
    expect(r.status).toBe(413);
    expect(JSON.parse(r.body)).toEqual({ error: 'body is over the largest entry, 65535 bytes', code: 'too_large' });
    expect(r.closed).toBe(true);
    expect(env.registry.get('big')!.log.treeSize).toBe(1);
    expect(bodies.inFlight).toBe(0);
  });
});

describe('the in-flight budget of all bodies', () => {
  it('a declared body over what is left: 503 + Retry-After before it is sent; one that just fits is taken', async () => {
    const held = await holder(60_000);
    const over = await rawExchange(srv.port, post('/big/append-batch', 'Content-Length: 40001\r\n'));
    expect(over.status).toBe(503);
    expect(over.headers['retry-after']).toBe('1');
    expect(over.headers.connection).toBe('close');
    expect(JSON.parse(over.body)).toEqual({ error: 'too many request bodies in flight: try again shortly', code: 'unavailable' });
    expect(over.closed).toBe(true);
    const fits = await rawExchange(
      srv.port,
      Buffer.concat([Buffer.from(post('/big/append-batch', 'Content-Length: 40000\r\nConnection: close\r\n')), bundleOf(40_000, 3)]),
    );
    expect(fits.status, fits.body).toBe(200);
    expect(bodies.inFlight).toBe(60_000);
    // The holder goes away mid-body: its share comes back.
    held.destroy();
    await until('the holder released', () => bodies.inFlight === 0);
    const after = await rawExchange(
      srv.port,
      Buffer.concat([Buffer.from(post('/big/append-batch', 'Content-Length: 90000\r\nConnection: close\r\n')), bundleOf(60_000, 4), bundleOf(30_000, 5)]),
    );
    expect(after.status, after.body).toBe(200);
    expect(bodies.inFlight).toBe(0);
  });

  it('a chunked body growing past what is left: 503 while it streams in, and the connection is closed', async () => {
    const held = await holder(60_000);
    const chunk = (b: Buffer) => Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n')]);
    const r = await rawExchange(
      srv.port,
      Buffer.concat([
        Buffer.from(post('/big/append-batch', 'Transfer-Encoding: chunked\r\n')),
        chunk(bundleOf(30_000, 6)),
        chunk(Buffer.alloc(10_001, 7)),
        Buffer.from('0\r\n\r\n'),
      ]),
    );
    expect(r.status).toBe(503);
    expect(r.headers['retry-after']).toBe('1');
    expect(r.headers.connection).toBe('close');
    expect(JSON.parse(r.body)).toMatchObject({ code: 'unavailable' });
    expect(r.closed).toBe(true);
    expect(bodies.inFlight).toBe(60_000);
    held.destroy();
    await until('the holder released', () => bodies.inFlight === 0);
  });

  it('through app.request(): a streamed body holds its share while it comes; past the budget, 503', async () => {
    let ctl!: ReadableStreamDefaultController<Uint8Array>;
    const stream = new ReadableStream<Uint8Array>({ start: (c) => void (ctl = c) });
    const first = bundleOf(60_000, 8);
    ctl.enqueue(first.subarray(0, 50_000));
    const pending = env.app.request('/big/append-batch', {
      method: 'POST',
      body: stream,
      headers: { 'content-type': 'application/octet-stream' },
      duplex: 'half',
    } as RequestInit);
    await until('the streamed body read so far', () => bodies.inFlight === 50_000);
    const refused = await env.app.request('/big/append-batch', {
      method: 'POST',
      body: new Uint8Array(bundleOf(50_001, 9)),
      headers: { 'content-type': 'application/octet-stream' },
    });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    ctl.enqueue(first.subarray(50_000));
    ctl.close();
    expect((await pending).status).toBe(200);
    expect(bodies.inFlight).toBe(0);
  });
});
