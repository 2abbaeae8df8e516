/**
 * A store that hangs instead of refusing (a silent network partition: the connection is taken,
 * no answer ever comes) fails each request after the endpoint's request timeout, as an io error
 * naming the operation, instead of holding the batch (and the tenant) forever.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ErrorCode } from '../../src/errors.js';
import { S3Store, s3Client } from '../../src/storage/s3-store.js';
import { rejectionOf } from '../helpers/errors.js';

let server: Server;
const sockets: Socket[] = [];
let port = 0;

beforeAll(async () => {
  // Accepts every connection, reads the request, never answers.
  server = createServer((s) => {
    sockets.push(s);
    s.on('data', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as { port: number }).port;
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise<void>((r) => server.close(() => r()));
});

it('a GET and a conditional PUT to a store that never answers fail with an io error once the request timeout is over', async () => {
  const client = s3Client({ endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', accessKeyId: 'k', secretAccessKey: 's', requestTimeoutMs: 200 });
  const store = new S3Store(client, { bucket: 'hangs' });
  try {
    const get = await rejectionOf<{ code: string; message: string }>(store.get('checkpoint'));
    expect(get.code).toBe(ErrorCode.io);
    expect(get.message).toMatch(/checkpoint/);
    expect(get.message).toMatch(/TimeoutError|timed? ?out/i);
    const put = await rejectionOf<{ code: string; message: string }>(store.putMutable('checkpoint', Buffer.from('x'), 'absent'));
    expect(put.code).toBe(ErrorCode.io);
    // The requests did reach the server (a taken connection, not a refused one).
    expect(sockets.length).toBeGreaterThan(0);
  } finally {
    client.destroy();
  }
}, 60_000);
