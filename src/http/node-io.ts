/**
 * The node request and response under @hono/node-server, used directly on hot routes.
 *
 * node-server hands hono a lightweight Request that builds the real (undici) Request, its
 * AbortSignal and a web ReadableStream over the body only when `c.req.raw.body`, `.signal` and
 * the like are touched; building them cost more CPU per append than the rest of the HTTP layer.
 * Reading the body from the IncomingMessage, and setting fixed headers on the ServerResponse
 * (so hono builds no web Headers object), keeps every request on that light path.
 * Under `app.request()` (tests) and other runtimes there is no node request: callers fall back
 * to the web objects, with the same behaviour.
 */
import type { HttpBindings } from '@hono/node-server';
import type { Context } from 'hono';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { TlogError, ErrorCode } from '../errors.js';

/** The node request, when served by @hono/node-server. */
export function incomingOf(c: Context): IncomingMessage | undefined {
  return (c.env as Partial<HttpBindings> | undefined)?.incoming;
}

function outgoingOf(c: Context): ServerResponse | undefined {
  return (c.env as Partial<HttpBindings> | undefined)?.outgoing;
}

/**
 * Sets a header of whatever answer this request gets, like `c.header()` before the handler
 * builds its Response. On node it goes straight onto the ServerResponse, which merges it with
 * the Response's own headers (those win on a clash, as with `c.header()`), so hono does not
 * build a web Headers object for it.
 */
export function presetHeader(c: Context, name: string, value: string): void {
  const out = outgoingOf(c);
  if (out && !out.headersSent) out.setHeader(name, value);
  else c.header(name, value);
}

/**
 * True when the body can be read from the node request: nothing has read it yet (no web body
 * stream was built over it). Contract for the routes: read the body with readBody(), never
 * through `c.req.raw` first.
 */
export function bodyUnread(incoming: IncomingMessage): boolean {
  return !incoming.readableDidRead && incoming.listenerCount('data') === 0;
}

/** True when the request declares a body that has not all arrived yet. */
export function bodyPending(c: Context): boolean {
  const incoming = incomingOf(c);
  return incoming !== undefined && bodyPendingOn(incoming);
}

/** bodyPending on the node request. */
export function bodyPendingOn(incoming: IncomingMessage): boolean {
  if (incoming.complete) return false;
  const h = incoming.headers;
  return h['transfer-encoding'] !== undefined || (h['content-length'] !== undefined && h['content-length'] !== '0');
}

/**
 * After an answer that refused a body, how long and how much of the rest is read and dropped
 * before the connection closes: enough for a client that writes its whole body before it reads
 * the answer (fetch() does) to send one at the default tenant limit.
 */
export const LINGER_MS = 5000;
export const LINGER_BYTES = 16 << 20;
const lingering = new WeakSet<IncomingMessage>();

/**
 * Ends the connection after this request's answer, which refuses a body the client may still be
 * sending (refused before it was read, or part way). Node would otherwise go on receiving the
 * body to keep the connection (reading, then dropping, all of it). Closing as soon as the answer
 * is out is no better: closing a socket with bytes unread resets the connection (TCP RST), and a
 * client still writing then sees EPIPE, not the answer. So, as RFC 9112 section 9.6 asks, the
 * answer says `Connection: close`, our side half-closes once it is out, and what still comes is
 * read and dropped (until the body or the client's side ends, for LINGER_MS and LINGER_BYTES at
 * most) so the client gets to read the answer; then the connection closes. Dropped bytes are
 * not held: the memory a refused body costs is a socket buffer.
 */
export function closeAfterAnswer(c: Context): void {
  presetHeader(c, 'Connection', 'close');
  const incoming = incomingOf(c);
  const outgoing = outgoingOf(c);
  if (incoming && outgoing) lingerAfterAnswer(incoming, outgoing);
}

/** closeAfterAnswer on the node request and response (the caller sets `Connection: close`). */
export function lingerAfterAnswer(incoming: IncomingMessage, outgoing: ServerResponse): void {
  if (lingering.has(incoming)) return;
  lingering.add(incoming);
  const socket = incoming.socket;
  let dropped = 0;
  let timer: NodeJS.Timeout | undefined;
  const close = () => {
    clearTimeout(timer);
    incoming.off('data', drop);
    socket.destroy();
  };
  const drop = (chunk: Buffer) => {
    dropped += chunk.length;
    if (dropped > LINGER_BYTES) close();
  };
  // Dropped from now on, and counted (node leaves a body being read alone when the answer is out).
  incoming.on('data', drop);
  incoming.resume();
  outgoing.once('finish', () => {
    if (socket.destroyed) return;
    // Node has just half-closed it (destroySoon: end(), then destroy() once our FIN is out):
    // keep the destroy for the end of the linger.
    socket.removeListener('finish', socket.destroy);
    if (incoming.readableEnded) return close();
    timer = setTimeout(close, LINGER_MS);
    incoming.once('end', close);
    socket.once('end', close);
    socket.once('close', () => clearTimeout(timer));
  });
}

/**
 * Reads the whole body of a node request, asking `admit` as each chunk comes whether the body
 * may grow to the bytes read so far (the size limit, the in-flight budget). Resolves with the
 * body, or null as soon as `admit` says no (reading stops and the request is paused; the caller
 * answers with `Connection: close`). Rejects with the request's error when the client goes away
 * mid-body (node's "aborted", ECONNRESET).
 */
export function readIncoming(incoming: IncomingMessage, admit: (total: number) => boolean): Promise<Buffer | null> {
  if (incoming.destroyed) return Promise.reject(new TlogError(ErrorCode.badInput, 'request body cut off (connection closed)', { cause: incoming.errored }));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const stop = () => {
      incoming.off('data', onData);
      incoming.off('end', onEnd);
      incoming.off('error', onError);
      incoming.off('close', onClose);
    };
    const onData = (chunk: Buffer) => {
      total += chunk.length;
      if (!admit(total)) {
        stop();
        incoming.pause();
        resolve(null);
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      stop();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total));
    };
    // The client went away mid-body: its fault, so a 4xx in the logs and metrics (nobody is
    // left to read the answer), never a 500.
    const cutOff = (e: Error | null | undefined) =>
      new TlogError(ErrorCode.badInput, `request body cut off after ${total} bytes (${e?.message ?? 'connection closed'})`, { cause: e });
    const onError = (e: Error) => {
      stop();
      reject(cutOff(e));
    };
    // 'close' without 'end' or 'error': destroyed with no error given.
    const onClose = () => {
      stop();
      reject(cutOff(incoming.errored));
    };
    incoming.on('data', onData);
    incoming.on('end', onEnd);
    incoming.on('error', onError);
    incoming.on('close', onClose);
  });
}
