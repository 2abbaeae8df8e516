/**
 * The node HTTP server under the app, and what it does with connections around it: time limits,
 * so a client that stalls while sending its headers or its body, or does not read its answer,
 * is cut off; and the JSON error `{"error","code"}` for requests node's parser refuses (a bad
 * Content-Length, Content-Length with Transfer-Encoding, a bad chunk size, headers over the
 * size limit, NUL in a header, a garbage request line), which node answers with an empty body.
 */
import { createAdaptorServer } from '@hono/node-server';
import { maxHeaderSize, STATUS_CODES, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { DEFAULT_HTTP_LIMITS, type HttpLimits } from '../config/config.js';
import { ErrorCode } from '../errors.js';

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

type Fetch = Parameters<typeof createAdaptorServer>[0]['fetch'];

/** A node HTTP server for `fetch` (an app's), not listening yet, with the limits above and JSON answers to malformed requests. */
export function createHttpServer(fetch: Fetch, limits: Partial<ConnectionLimits> = {}): Server {
  const l = { ...DEFAULT_CONNECTION_LIMITS, ...limits };
  const server = createAdaptorServer({
    fetch,
    serverOptions: {
      headersTimeout: l.headersTimeoutMs,
      requestTimeout: l.requestTimeoutMs,
      keepAliveTimeout: l.keepAliveTimeoutMs,
      // Node checks the two request timeouts this often (default 30 s, coarser than they are).
      connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(l.headersTimeoutMs / 4))),
    },
  }) as Server;
  // With a 'timeout' listener node leaves the timed-out socket to it (see onIdle).
  server.setTimeout(l.idleTimeoutMs);
  server.on('timeout', onIdle);
  server.on('clientError', onClientError);
  return server;
}

/** The answer node's parser has in progress on a socket (an internal of node's http server, which its own error path reads too). */
function inFlight(socket: Duplex): ServerResponse | null {
  return (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage ?? null;
}

/** What the raw answer to a refused request says: status, code, message. */
type Refusal = readonly [number, string, string];

const MALFORMED = (what: string): Refusal => [400, ErrorCode.badInput, `malformed HTTP request: ${what}`];

/** Node's parse errors (llhttp's codes) and request timeouts, as answers. */
const REFUSALS: Record<string, Refusal> = {
  HPE_HEADER_OVERFLOW: [431, ErrorCode.tooLarge, `request headers over ${maxHeaderSize} bytes`],
  HPE_CHUNK_EXTENSIONS_OVERFLOW: [413, ErrorCode.tooLarge, 'chunk extensions too large'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, ErrorCode.timeout, 'request not received in time'],
  HPE_INVALID_CONTENT_LENGTH: MALFORMED('bad Content-Length'),
  HPE_UNEXPECTED_CONTENT_LENGTH: MALFORMED('Content-Length together with Transfer-Encoding'),
  HPE_INVALID_TRANSFER_ENCODING: MALFORMED('bad Transfer-Encoding'),
  HPE_INVALID_CHUNK_SIZE: MALFORMED('bad chunk size'),
  HPE_INVALID_HEADER_TOKEN: MALFORMED('forbidden character in a header'),
  HPE_INVALID_METHOD: MALFORMED('bad request line (method)'),
  HPE_INVALID_URL: MALFORMED('bad request line (target)'),
  HPE_INVALID_VERSION: MALFORMED('bad request line (version)'),
  HPE_INVALID_CONSTANT: MALFORMED('bad request line'),
  HPE_CR_EXPECTED: MALFORMED('bad line ending'),
  HPE_LF_EXPECTED: MALFORMED('bad line ending'),
};

/** Writes a JSON error answer straight to the socket and closes the connection once it is sent. */
function answerAndClose(socket: Duplex, [status, code, error]: Refusal): void {
  const body = JSON.stringify({ error, code });
  const head = `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n`;
  socket.end(head + body, () => socket.destroy());
}

/**
 * A request node's parser refused, or one that timed out (headersTimeout, requestTimeout): the
 * JSON error when nothing of an answer has been written on the connection yet (as node's own
 * handler does; anything else would corrupt the answer in progress), then the connection closes.
 */
function onClientError(err: Error & { code?: string }, socket: Duplex): void {
  const res = inFlight(socket);
  if (!socket.writable || (res && res.headersSent) || err.code === 'ECONNRESET' || err.code === 'EPIPE') {
    socket.destroy();
    return;
  }
  answerAndClose(socket, REFUSALS[err.code ?? ''] ?? MALFORMED(/^HPE_[A-Z_]+$/.test(err.code ?? '') ? err.code! : 'unparseable'));
}

/** Nothing moved on the connection for idleTimeoutMs. */
function onIdle(socket: Socket): void {
  const res = inFlight(socket);
  // The request is all in and the app is working out the answer: the wait is the server's.
  if (res && !res.headersSent && res.req.complete) return;
  // The client stopped sending its body: say so before closing.
  if (res && !res.headersSent && socket.writable) return answerAndClose(socket, [408, ErrorCode.timeout, 'request body stalled']);
  // Between requests, or an answer the client does not read.
  socket.destroy();
}
