/**
 * The lean way of an S3Store's conditional PUTs and GETs (src/storage/s3-lean.ts), against a
 * scripted HTTP server: what it sends (SigV4-signed, the payload's SHA-256, Content-MD5, the
 * condition and served headers), what it retries (a 5xx, a connection reset) and how the
 * answers' S3 error codes reach the store (NoSuchKey: absent; 412: the condition failed;
 * NoSuchBucket: an io error naming it). The S3 semantics themselves are tested against
 * versitygw (object-store.test.ts, s3-guarantees.test.ts), through this same path.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { ErrorCode } from '../../src/errors.js';
import { isPreconditionFailed } from '../../src/storage/object-store.js';
import { S3Store, s3Client } from '../../src/storage/s3-store.js';
import { rejectionOf } from '../helpers/errors.js';

type Seen = { method: string; url: string; headers: IncomingMessage['headers']; body: Buffer };
let server: Server;
let port = 0;
const seen: Seen[] = [];
/** The answers to give, in order; each may also reset the connection instead. */
let script: ((req: Seen, res: ServerResponse) => void)[] = [];

const xmlError = (res: ServerResponse, status: number, code: string) => {
  res.writeHead(status, { 'content-type': 'application/xml' });
  res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${code} here</Message></Error>`);
};

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const s: Seen = { method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks) };
      seen.push(s);
      const next = script.shift();
      if (next) next(s, res);
      else xmlError(res, 500, 'Unscripted');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as { port: number }).port;
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
});

beforeEach(() => {
  seen.length = 0;
  script = [];
});

function store() {
  const client = s3Client({ endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', accessKeyId: 'AKID', secretAccessKey: 'secret' });
  return { client, store: new S3Store(client, { bucket: 'b', prefix: 'p/' }) };
}

it('a conditional PUT is signed over its payload, carries Content-MD5, its condition and served headers, and is tried again after a 503', async () => {
  const { client, store: s } = store();
  script = [
    (_, res) => xmlError(res, 503, 'SlowDown'),
    (_, res) => {
      res.writeHead(200, { etag: '"e1"' });
      res.end();
    },
  ];
  try {
    const body = Buffer.from('checkpoint bytes');
    expect(await s.putMutable('checkpoint', body, 'absent', { contentType: 'text/plain; charset=utf-8', cacheControl: 'no-store' })).toBe('"e1"');
    expect(seen.length).toBe(2);
    const put = seen[1]!;
    expect(put).toMatchObject({ method: 'PUT', url: '/b/p/checkpoint' });
    expect(put.body).toEqual(body);
    expect(put.headers).toMatchObject({
      'if-none-match': '*',
      'content-md5': createHash('md5').update(body).digest('base64'),
      'x-amz-content-sha256': createHash('sha256').update(body).digest('hex'),
      'content-type': 'text/plain; charset=utf-8',
      'cache-control': 'no-store',
    });
    expect(put.headers.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKID\/\d{8}\/us-east-1\/s3\/aws4_request, SignedHeaders=[^,]*if-none-match[^,]*, Signature=[0-9a-f]{64}$/,
    );
  } finally {
    client.destroy();
  }
});

it('a connection reset before the answer is tried again', async () => {
  const { client, store: s } = store();
  script = [
    (_, res) => res.socket!.destroy(),
    (_, res) => {
      res.writeHead(200, { etag: '"e2"' });
      res.end('stored');
    },
  ];
  try {
    expect(await s.get('tile/0/000')).toEqual({ bytes: new Uint8Array(Buffer.from('stored')), etag: '"e2"' });
    expect(seen.map((x) => x.url)).toEqual(['/b/p/tile/0/000', '/b/p/tile/0/000']);
  } finally {
    client.destroy();
  }
});

it("the answers' S3 error codes: NoSuchKey is absent, 412 a failed condition, NoSuchBucket an io error naming it; a 4xx is not tried again", async () => {
  const { client, store: s } = store();
  try {
    script = [(_, res) => xmlError(res, 404, 'NoSuchKey')];
    expect(await s.get('checkpoint')).toBeNull();
    // 412, then the object read: other bytes there, so another writer's version.
    script = [
      (_, res) => xmlError(res, 412, 'PreconditionFailed'),
      (_, res) => {
        res.writeHead(200, { etag: '"theirs"' });
        res.end('other bytes');
      },
    ];
    expect(isPreconditionFailed(await rejectionOf(s.putMutable('checkpoint', Buffer.from('mine'), { etag: '"old"' })))).toBe(true);
    expect(seen.at(-2)!.headers['if-match']).toBe('"old"');
    seen.length = 0;
    script = [(_, res) => xmlError(res, 404, 'NoSuchBucket')];
    const nb = await rejectionOf<{ code: string; message: string }>(s.get('checkpoint'));
    expect(nb.code).toBe(ErrorCode.io);
    expect(nb.message).toMatch(/NoSuchBucket \(HTTP 404\)/);
    expect(seen.length).toBe(1);
  } finally {
    client.destroy();
  }
});
