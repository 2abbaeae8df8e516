/**
 * HTTP: GET /<tenant>/anchors lists a tenant's Rekor receipts as JSON, each with the attested
 * time this service verified for it (listReceipts says when a receipt is refused); the receipts, the
 * anchored checkpoints and the anchoring public key are served as static files under
 * /<tenant>/anchors/... (read from checkpoints/<tenant>/anchors/, which any static server can
 * serve just as well). Mount with `app.route('/', anchorRoutes(getLog))`.
 */
import { Hono, type Context } from 'hono';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { LogPaths } from '../tile-store/paths.js';
import { ANCHOR_PUBLIC_KEY_FILE, ANCHORS_DIR, CHECKPOINT_SUFFIX, RECEIPT_SUFFIX } from './outbox.js';
import { listReceipts, treeSizeOfReceipt } from './receipt.js';

/** What a receipt-area path may look like: an N path plus a known suffix, or the key file. */
function servable(rel: string): string | null {
  if (rel === ANCHOR_PUBLIC_KEY_FILE) return 'application/x-pem-file';
  if (rel.endsWith(RECEIPT_SUFFIX) && treeSizeOfReceipt(`${ANCHORS_DIR}/${rel}`) !== null) return 'application/json';
  if (rel.endsWith(CHECKPOINT_SUFFIX) && treeSizeOfReceipt(`${ANCHORS_DIR}/${rel.slice(0, -CHECKPOINT_SUFFIX.length)}${RECEIPT_SUFFIX}`) !== null) {
    return 'text/plain; charset=utf-8';
  }
  return null;
}

/** What the routes need of a tenant's log (a Log fits). */
export interface AnchoredLog {
  readonly origin: string;
  /** historyDir holds the receipts; stateDir the anchoring jobs that say which ones verified. */
  readonly paths: Pick<LogPaths, 'historyDir' | 'stateDir'>;
}

/**
 * `getLog` gives the tenant's log, undefined for an unknown tenant (404); it may throw to refuse
 * the request (a private tenant without its read token), and the app answers with that error.
 */
export function anchorRoutes(getLog: (tenant: string, c: Context) => AnchoredLog | undefined): Hono {
  const app = new Hono();
  const notFound = (c: { json: (o: unknown, s: 404) => Response }, why: string) => c.json({ error: why, code: 'not_found' }, 404);

  app.get('/:tenant/anchors', async (c) => {
    const tenant = c.req.param('tenant');
    const log = getLog(tenant, c);
    if (!log) return notFound(c, `unknown tenant ${JSON.stringify(tenant.slice(0, 64))}`);
    const receipts = await listReceipts(log.paths.historyDir, log.paths.stateDir);
    c.header('Cache-Control', 'no-store');
    c.header('Access-Control-Allow-Origin', '*');
    return c.json({
      tenant,
      origin: log.origin,
      publicKey: `/${tenant}/${ANCHORS_DIR}/${ANCHOR_PUBLIC_KEY_FILE}`,
      receipts: receipts.map((r) => ({ ...r, receipt: `/${tenant}/${r.receipt}`, checkpoint: `/${tenant}/${r.checkpoint}` })),
    });
  });

  app.get('/:tenant/anchors/*', async (c) => {
    const tenant = c.req.param('tenant');
    const log = getLog(tenant, c);
    if (!log) return notFound(c, `unknown tenant ${JSON.stringify(tenant.slice(0, 64))}`);
    const rel = c.req.path.slice(tenant.length + ANCHORS_DIR.length + 3);
    // Only the canonical names this module writes: no "..", no hidden temp files, nothing else.
    const type = servable(rel);
    if (!type) return notFound(c, 'no such receipt');
    let data: Buffer;
    try {
      data = await fsp.readFile(path.join(log.paths.historyDir, ANCHORS_DIR, rel));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return notFound(c, 'no such receipt');
      throw e;
    }
    c.header('Content-Type', type);
    // A receipt can be replaced once (a stored one that failed verification); the rest never change.
    c.header('Cache-Control', rel.endsWith(RECEIPT_SUFFIX) ? 'public, max-age=300' : 'public, max-age=604800, immutable');
    c.header('Access-Control-Allow-Origin', '*');
    return c.body(new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength));
  });

  return app;
}
