/**
 * What the node server under the app does with requests its parser refuses and with clients
 * that stall, over raw sockets: each malformed request gets the JSON error `{"error","code"}`
 * (node's own answer has an empty body) with `Connection: close`, and the connection closes;
 * headers that stop coming and a body that stops coming get a 408 JSON error and the connection
 * closes; a request the server is still working on is not cut off by the idle timeout.
 */
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_HTTP_LIMITS } from '../../src/config/config.js';
import { createHttpServer } from '../../src/http/connections.js';
import { listen, makeEnv, rawExchange, type AppEnv, type Listening, type RawAnswer } from './helpers.js';

let env: AppEnv;
let srv: Listening;

beforeAll(async () => {
  env = await makeEnv([{ name: 'm' }]);
  srv = await listen(env.app);
});
afterAll(async () => {
  await srv.close();
  await env.close();
});

function expectJsonError(a: RawAnswer & { closed: boolean }, status: number, code: string): { error: string; code: string } {
  expect(a.status, a.text.slice(0, 300)).toBe(status);
  expect(a.headers['content-type']).toBe('application/json');
  expect(a.headers.connection).toBe('close');
  expect(Number(a.headers['content-length'])).toBe(Buffer.byteLength(a.body));
  const j = JSON.parse(a.body) as { error: string; code: string };
  expect(j).toEqual({ error: expect.any(String), code });
  expect(a.closed).toBe(true);
  return j;
}

describe('malformed requests get the JSON error', () => {
  const cases: [string, string | Buffer, number, string, RegExp][] = [
    [
      'a bad Content-Length',
      'POST /m/append HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n\r\nhello',
      400,
      'bad_input',
      /^malformed HTTP request: .*Content-Length/,
    ],
    [
      'two different Content-Lengths',
      'POST /m/append HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab',
      400,
      'bad_input',
      /^malformed HTTP request: Duplicate Content-Length$/,
    ],
    [
      'Content-Length with Transfer-Encoding',
      'POST /m/append HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
      400,
      'bad_input',
      /^malformed HTTP request: Transfer-Encoding can't be present with Content-Length$/,
    ],
    [
      'a bad chunk size',
      'POST /m/append HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n',
      400,
      'bad_input',
      /^malformed HTTP request: .*chunk size/,
    ],
    [
      'headers over the size limit',
      `GET /m/checkpoint HTTP/1.1\r\nHost: x\r\nX-Long: ${'a'.repeat(20_000)}\r\n\r\n`,
      431,
      'too_large',
      /request headers over 16384 bytes/,
    ],
    [
      'NUL in a header',
      'GET /m/checkpoint HTTP/1.1\r\nHost: x\r\nX-Bad: a\u0000b\r\n\r\n',
      400,
      'bad_input',
      /^malformed HTTP request: Invalid header value char$/,
    ],
    ['NUL in a header name', 'GET /m/checkpoint HTTP/1.1\r\nHost: x\r\nX-Bad\u0000Name: 1\r\n\r\n', 400, 'bad_input', /^malformed HTTP request: .*header/i],
    ['a garbage request line', 'GARBAGE\r\n\r\n', 400, 'bad_input', /^malformed HTTP request: Invalid method encountered$/],
    ['a NUL in the method', 'G\u0000T /m/checkpoint HTTP/1.1\r\nHost: x\r\n\r\n', 400, 'bad_input', /^malformed HTTP request: Invalid method encountered$/],
    ['a bad version', 'GET /m/checkpoint HTTX/1.1\r\nHost: x\r\n\r\n', 400, 'bad_input', /^malformed HTTP request: Expected HTTP\//],
    // Past node's parser, what node-server cannot make a web Request of, and what node answers itself.
    ['no Host header', 'GET /m/checkpoint HTTP/1.1\r\n\r\n', 400, 'bad_input', /^malformed HTTP request: Missing host header$/],
    ['a target that is no path', 'GET * HTTP/1.1\r\nHost: x\r\n\r\n', 400, 'bad_input', /^malformed HTTP request: Invalid URL$/],
    [
      'an Expect other than 100-continue',
      'POST /m/append HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\nContent-Length: 1\r\n\r\nx',
      417,
      'bad_input',
      /unsupported Expect/,
    ],
  ];
  for (const [name, bytes, status, code, why] of cases) {
    it(name, async () => {
      const j = expectJsonError(await rawExchange(srv.port, bytes), status, code);
      expect(j.error).toMatch(why);
    });
  }

  it('a malformed request after a good one on the same connection: the good answer, then the JSON error', async () => {
    const a = await rawExchange(srv.port, 'GET /m/checkpoint HTTP/1.1\r\nHost: x\r\n\r\nPOST /m/append HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n');
    expect(a.status).toBe(200);
    const second = a.text.slice(a.text.indexOf('HTTP/1.1', 1));
    expect(second).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(JSON.parse(second.slice(second.indexOf('\r\n\r\n') + 4))).toMatchObject({ code: 'bad_input' });
    expect(a.closed).toBe(true);
    expect(env.registry.get('m')!.log.treeSize).toBe(0);
  });
});

it("the server's limits default to the README's figures", () => {
  const s = createHttpServer(env.app.fetch);
  expect([s.headersTimeout, s.requestTimeout, s.timeout, s.keepAliveTimeout]).toEqual([20_000, 120_000, 30_000, 5_000]);
  expect(DEFAULT_HTTP_LIMITS.maxBodyBytesInFlight).toBe(128 << 20);
});

describe('stalled clients', () => {
  // One short timeout per server, so a busy machine cannot make another fire first.
  let hasty: Listening;
  let slow: Listening;
  let working: Listening;
  beforeAll(async () => {
    hasty = await listen(env.app, { headersTimeoutMs: 300, requestTimeoutMs: 60_000, idleTimeoutMs: 60_000 });
    slow = await listen(env.app, { headersTimeoutMs: 20_000, requestTimeoutMs: 60_000, idleTimeoutMs: 1000 });
    // An app that takes a while (longer than the idle timeout) to answer a request it has whole.
    const busy = new Hono().get('/busy', async (c) => {
      await new Promise((r) => setTimeout(r, 900));
      return c.json({ done: true });
    });
    working = await listen(busy, { headersTimeoutMs: 20_000, requestTimeoutMs: 60_000, idleTimeoutMs: 300 });
  });
  afterAll(async () => {
    await hasty.close();
    await slow.close();
    await working.close();
  });

  it('headers that stop coming: 408 JSON, and the connection is closed', async () => {
    const j = expectJsonError(await rawExchange(hasty.port, 'POST /m/append HTTP/1.1\r\nHost: x\r\nContent-Len'), 408, 'request_timeout');
    expect(j.error).toBe('request not received in time');
  });

  it('a body that stops coming: 408 JSON, the connection is closed, nothing appended', async () => {
    const j = expectJsonError(
      await rawExchange(slow.port, 'POST /m/append HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nonly part of it'),
      408,
      'request_timeout',
    );
    expect(j.error).toBe('request body stalled');
    expect(env.registry.get('m')!.log.treeSize).toBe(0);
  });

  it('a connection that never sends a byte: 408 JSON once the headers timeout passes, and it is closed', async () => {
    expectJsonError(await rawExchange(hasty.port, ''), 408, 'request_timeout');
  });

  it('a request the server is still working on is not cut off by the idle timeout', async () => {
    const a = await rawExchange(working.port, 'GET /busy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(a.status).toBe(200);
    expect(JSON.parse(a.body)).toEqual({ done: true });
  });
});
