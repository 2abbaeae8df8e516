/**
 * The floor of bench/http-layer: a bare node:http server that reads each request's body and
 * answers a fixed decimal index, with the headers an append answer carries (an id, CORS, a
 * type and a length), and nothing else: no route, credential, limit, metric or log. What a
 * request costs here is node's HTTP server and the socket, which no log written on it can go
 * below; the difference to `tlog serve`'s HTTP layer is ours.
 *
 *   node dist/bench/lib/bare-http-server.js    (prints "PORT <n>" once listening)
 */
import http from 'node:http';

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const answer = String(body.length);
    res.writeHead(200, {
      'X-Request-Id': 'bare-http-server-fixed-id',
      'Access-Control-Allow-Origin': '*',
      'Content-Type': 'text/plain; charset=UTF-8',
      'Content-Length': answer.length,
    });
    res.end(answer);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => console.log(`PORT ${(server.address() as { port: number }).port}`));
process.on('SIGTERM', () => process.exit(0));
