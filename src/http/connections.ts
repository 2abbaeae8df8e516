/**
 * The node HTTP server under the app, and what it does with connections around it: time limits,
 * so a client that stalls while sending its headers or its body, or does not read its answer,
 * is cut off; and the JSON error `{"error","code"}` for requests node's parser refuses (a bad
 * Content-Length, Content-Length with Transfer-Encoding, a bad chunk size, headers over the
 * size limit, NUL in a header, a garbage request line), which node answers with an empty body.
 */
import { getRequestListener, RequestError } from '@hono/node-server';
import { createServer, maxHeaderSize, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { DEFAULT_HTTP_LIMITS, type HttpLimits } from '../config/config.js';
import { ErrorCode } from '../errors.js';
import type { FastRoute } from './fast-append.js';

export interface ConnectionLimits {
  /** A request's headers must all have come this many ms after it began (node's headersTimeout), else 408. */
  readonly headersTimeoutMs: number;
  /** The whole request, body included, within this many ms (node's requestTimeout), else 408. */
  readonly requestTimeoutMs: number;
  /**
   * A connection on which nothing moves for this many ms is closed when the client is the one
   * holding it up: a body that stopped coming (answered 408 first) or an answer not read. A
   * request being worked on by the server is left alone.
   */
  readonly idleTimeoutMs: number;
  /** An idle kept-alive connection is closed after this many ms. */
  readonly keepAliveTimeoutMs: number;
}

/** The configuration's `http` figures in ms. */
export function connectionLimits(h: HttpLimits): ConnectionLimits {
  return {
    headersTimeoutMs: h.headersTimeoutSeconds * 1000,
    requestTimeoutMs: h.requestTimeoutSeconds * 1000,
    idleTimeoutMs: h.idleTimeoutSeconds * 1000,
    keepAliveTimeoutMs: h.keepAliveTimeoutSeconds * 1000,
  };
}

/** 20 s, 120 s, 30 s and 5 s (node's own defaults are 60 s, 300 s, none and 5 s). */
export const DEFAULT_CONNECTION_LIMITS = connectionLimits(DEFAULT_HTTP_LIMITS);

type Fetch = Parameters<typeof getRequestListener>[0];

/**
 * A node HTTP server for `fetch` (an app's), not listening yet, with the limits above and JSON
 * answers to malformed requests. `fast` (app.ts fastRouteOf) is offered each request first.
 */
export function createHttpServer(fetch: Fetch, limits: Partial<ConnectionLimits> = {}, fast?: FastRoute): Server {
  const l = { ...DEFAULT_CONNECTION_LIMITS, ...limits };
  // No draining of unread bodies by node-server (500 ms, then the socket goes): the app
  // decides what happens to a body it refused (node-io.ts closeAfterAnswer).
  const viaApp = getRequestListener(fetch, { errorHandler: onRequestError, autoCleanupIncoming: false });
  const listener = fast ? (req: IncomingMessage, res: ServerResponse) => void (fast(req, res) || viaApp(req, res)) : viaApp;
  const server = createServer(
    {
      headersTimeout: l.headersTimeoutMs,
      requestTimeout: l.requestTimeoutMs,
      keepAliveTimeout: l.keepAliveTimeoutMs,
      // Node checks the two request timeouts this often (default 30 s, coarser than they are).
      connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(l.headersTimeoutMs / 4))),
      // Node would answer a missing Host with an empty 400; node-server refuses it (a
      // RequestError, below) with the JSON error. RFC 9112 section 3.2: 400 either way.
      requireHostHeader: false,
    },
    listener,
  );
  // With a 'timeout' listener node leaves the timed-out socket to it (see onIdle).
  server.setTimeout(l.idleTimeoutMs);
  server.on('timeout', onIdle);
  server.on('clientError', onClientError);
  server.on('checkExpectation', onExpectation);
  return server;
}

/** The answer node's parser has in progress on a socket (an internal of node's http server, which its own error path reads too). */
function inFlight(socket: Duplex): ServerResponse | null {
  return (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage ?? null;
}

/** What the raw answer to a refused request says: status, code, message. */
type Refusal = readonly [number, string, string];

/**
 * The answer to a parse error (llhttp's code and its fixed reason, such as "Transfer-Encoding
 * can't be present with Content-Length"; never bytes of the request) or a request timeout.
 */
function refusalOf(err: Error & { code?: string; reason?: string }): Refusal {
  if (err.code === 'HPE_HEADER_OVERFLOW') return [431, ErrorCode.tooLarge, `request headers over ${maxHeaderSize} bytes`];
  if (err.code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW') return [413, ErrorCode.tooLarge, 'chunk extensions too large'];
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return [408, ErrorCode.timeout, 'request not received in time'];
  const reason = typeof err.reason === 'string' && /^[\x20-\x7e]{1,120}$/.test(err.reason) ? err.reason : err.code;
  return [400, ErrorCode.badInput, `malformed HTTP request: ${reason ?? 'unparseable'}`];
}

/** Writes a JSON error answer straight to the socket and closes the connection once it is sent. */
function answerAndClose(socket: Duplex, [status, code, error]: Refusal): void {
  const body = JSON.stringify({ error, code });
  const head = `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n`;
  socket.end(head + body, () => socket.destroy());
}

/** A JSON error answer built by the app's side (it goes out like any answer). */
function jsonAnswer([status, code, error]: Refusal): Response {
  return new Response(JSON.stringify({ error, code }), { status, headers: { 'Content-Type': 'application/json', Connection: 'close' } });
}

/**
 * What node-server could not turn into a web Request (no Host, a target that is no URL, such as
 * `*`) is the client's fault; anything else reaching here (the app answers its own errors) is ours.
 */
function onRequestError(err: unknown): Response {
  if (err instanceof RequestError) return jsonAnswer([400, ErrorCode.badInput, `malformed HTTP request: ${err.message}`]);
  return jsonAnswer([500, 'internal', 'internal error']);
}

/** An Expect header other than 100-continue (RFC 9110 section 10.1.1: 417). */
function onExpectation(_req: IncomingMessage, res: ServerResponse): void {
  const body = JSON.stringify({ error: 'unsupported Expect header: only 100-continue is', code: ErrorCode.badInput });
  res.writeHead(417, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), Connection: 'close' }).end(body);
}

/** Sockets whose parse error is answered: node reports one again for every later chunk of data. */
const refused = new WeakSet<Duplex>();

/**
 * A request node's parser refused, or one that timed out (headersTimeout, requestTimeout): the
 * JSON error, then the connection closes. Nothing may corrupt an answer in progress (node's own
 * handler skips its answer when one has begun): when a request before the refused one is still
 * being answered, the error follows that answer; when the refused request's own answer has
 * begun, the connection just closes.
 */
function onClientError(err: Error & { code?: string; reason?: string }, socket: Duplex): void {
  if (refused.has(socket)) return;
  refused.add(socket);
  if (!socket.writable || err.code === 'ECONNRESET' || err.code === 'EPIPE') return void socket.destroy();
  const refusal = refusalOf(err);
  const res = inFlight(socket);
  if (res?.req.complete && !res.writableFinished) {
    res.once('finish', () => (socket.writable ? answerAndClose(socket, refusal) : socket.destroy()));
    return;
  }
  if (res?.headersSent) return void socket.destroy();
  answerAndClose(socket, refusal);
}

/** Nothing moved on the connection for idleTimeoutMs. */
function onIdle(socket: Socket): void {
  const res = inFlight(socket);
  // The request is all in and the app is working out the answer: the wait is the server's.
  if (res && !res.headersSent && res.req.complete) return;
  // The client stopped sending its body: say so before closing.
  if (res && !res.headersSent && socket.writable) {
    answerAndClose(socket, [408, ErrorCode.timeout, 'request body stalled']);
    return;
  }
  // Between requests, or an answer the client does not read.
  socket.destroy();
}
