/**
 * The witness's HTTP face (hono): c2sp.org/tlog-witness add-checkpoint on the submission
 * prefix and the monitoring endpoint, both at the root (mount the app with app.route() to put
 * them under a prefix). Bodies are plain text, as the spec's clients expect.
 */
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { MAX_NOTE_BYTES } from '../src/note/note.js';
import { TEXT_CONTENT_TYPE, type Witness } from './witness.js';

/** Largest add-checkpoint body: a checkpoint note (≤ 1 MiB) plus 63 proof lines and "old". */
export const MAX_BODY_BYTES = MAX_NOTE_BYTES + 64 * 64;

const ORIGIN_HASH = /^[0-9a-f]{64}$/;

export interface WitnessAppOptions {
  readonly maxBodyBytes?: number;
  /** Called with internal errors (500s); their details never reach the client. */
  readonly onError?: (e: unknown) => void;
}

export function createWitnessApp(w: Witness, opts: WitnessAppOptions = {}): Hono {
  const app = new Hono();
  const text = (body: string, status: 400 | 404 | 413 | 500) => new Response(body, { status, headers: { 'Content-Type': TEXT_CONTENT_TYPE } });

  app.onError((e) => {
    opts.onError?.(e);
    return text('internal error\n', 500);
  });
  app.notFound(() => text('not found\n', 404));

  app.post('/add-checkpoint', bodyLimit({ maxSize: opts.maxBodyBytes ?? MAX_BODY_BYTES, onError: () => text('request body too large\n', 413) }), async (c) => {
    const bytes = new Uint8Array(await c.req.arrayBuffer());
    let body: string;
    try {
      body = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
    } catch {
      return text('malformed request: body is not valid UTF-8\n', 400);
    }
    const r = await w.addCheckpoint(body);
    return new Response(r.body, { status: r.status, headers: { 'Content-Type': r.contentType } });
  });

  // c2sp.org/tlog-witness: GET <monitoring prefix>/<lowercase hex sha256(origin)>/checkpoint.
  app.get('/:hash/checkpoint', (c) => {
    const hash = c.req.param('hash');
    const note = ORIGIN_HASH.test(hash) ? w.latestCheckpoint(hash) : null;
    if (note === null) return text('no cosigned checkpoint for this log\n', 404);
    return new Response(note, { status: 200, headers: { 'Content-Type': TEXT_CONTENT_TYPE, 'Cache-Control': 'no-store' } });
  });

  return app;
}
