/**
 * The HTTP face of the log, on hono: per-tenant tlog-tiles static routes and the write/read API.
 * Every route lives under /<tenant>/...; the API routes also accept the tenant in X-Module-ID.
 */
import { Hono, type Context } from 'hono';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { TlogError, ErrorCode } from '../errors.js';
import type { Log } from '../log/log.js';
import { encodeBase64 } from '../note/note.js';
import { MAX_ENTRY_SIZE } from '../tiles/bundle.js';
import { formatTilePath, parseTilePath } from '../tiles/layout.js';
import type { TenantRegistry } from '../tenants/registry.js';
import { errorResponse, jsonError } from './errors.js';

export interface AppOptions {
  /** Largest request body accepted, in bytes. */
  readonly maxBodyBytes?: number;
}

const TENANT = /^[a-z0-9][a-z0-9_-]{0,62}$/;

function parseIndexParam(v: string | undefined, name: string): number {
  if (v === undefined || !/^(0|[1-9][0-9]{0,15})$/.test(v)) throw new TlogError(ErrorCode.badInput, `${name} must be a canonical non-negative integer`);
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new TlogError(ErrorCode.badInput, `${name} is too large`);
  return n;
}

export function createApp(tenants: TenantRegistry, opts: AppOptions = {}): Hono {
  const maxBody = opts.maxBodyBytes ?? 8 << 20;
  const app = new Hono();

  const tenantOf = (c: Context): Log => {
    const name = c.req.param('tenant') ?? c.req.header('x-module-id') ?? '';
    const log = TENANT.test(name) ? tenants.get(name) : undefined;
    if (!log) throw new TlogError(ErrorCode.notFound, `unknown tenant ${JSON.stringify(name.slice(0, 64))}`);
    return log;
  };

  app.onError((e, c) => errorResponse(c, e));
  app.notFound((c) => jsonError(c, 404, 'not_found', 'no such route'));

  // c2sp.org/tlog-tiles: the checkpoint is mutable; caching beyond a few seconds is blocked.
  app.get('/:tenant/checkpoint', (c) => {
    const log = tenantOf(c);
    c.header('Content-Type', 'text/plain; charset=utf-8');
    c.header('Cache-Control', 'no-store');
    c.header('Access-Control-Allow-Origin', '*');
    return c.body(log.checkpoint.note);
  });

  // c2sp.org/tlog-tiles: tiles and bundles are immutable, long-lived caching.
  app.get('/:tenant/tile/*', async (c) => {
    const log = tenantOf(c);
    const rel = c.req.path.slice(c.req.param('tenant').length + 2);
    const coord = parseTilePath(rel);
    // Only canonical paths the committed tree implies are served: nothing else touches the disk.
    if (!coord || formatTilePath(coord) !== rel || !log.servesTile(coord)) return jsonError(c, 404, 'not_found', 'no such tile');
    let data: Buffer;
    try {
      data = await fsp.readFile(path.join(log.paths.tilesDir, rel));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return jsonError(c, 404, 'not_found', 'no such tile');
      throw e;
    }
    c.header('Content-Type', 'application/octet-stream');
    c.header('Cache-Control', 'public, max-age=604800, immutable');
    c.header('Access-Control-Allow-Origin', '*');
    return c.body(new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength));
  });

  const append = async (c: Context) => {
    const log = tenantOf(c);
    const body = new Uint8Array(await c.req.arrayBuffer());
    if (body.length > Math.min(maxBody, MAX_ENTRY_SIZE)) throw new TlogError(ErrorCode.tooLarge, `entry is ${body.length} bytes: entries are 1 to 65535 bytes`);
    const r = await log.append(body);
    return c.json({
      index: r.index,
      leafHash: encodeBase64(r.leafHash),
      treeSize: r.treeSize,
      checkpoint: r.checkpoint,
      inclusionProof: r.proof.map(encodeBase64),
    });
  };
  app.post('/:tenant/append', append);
  app.post('/append', append);

  const readSince = async (c: Context) => {
    const log = tenantOf(c);
    const index = parseIndexParam(c.req.query('index') ?? '0', 'index');
    const limit = Math.min(parseIndexParam(c.req.query('limit') ?? '256', 'limit'), 4096);
    if (limit === 0) throw new TlogError(ErrorCode.badInput, 'limit must be at least 1');
    const { entries, next } = await log.readEntries(index, limit);
    return c.json({ index, next, treeSize: log.treeSize, entries: entries.map(encodeBase64) });
  };
  app.get('/:tenant/read_since', readSince);
  app.get('/read_since', readSince);

  const inclusion = async (c: Context) => {
    const log = tenantOf(c);
    const index = parseIndexParam(c.req.query('index'), 'index');
    const treeSize = c.req.query('tree_size') === undefined ? log.treeSize : parseIndexParam(c.req.query('tree_size'), 'tree_size');
    const proof = await log.inclusionProof(index, treeSize);
    return c.json({ index, treeSize, leafHash: encodeBase64(await log.leafHashAt(index)), inclusionProof: proof.map(encodeBase64) });
  };
  app.get('/:tenant/proof/inclusion', inclusion);
  app.get('/proof/inclusion', inclusion);

  const consistency = async (c: Context) => {
    const log = tenantOf(c);
    const oldSize = parseIndexParam(c.req.query('old'), 'old');
    const newSize = c.req.query('new') === undefined ? log.treeSize : parseIndexParam(c.req.query('new'), 'new');
    const proof = await log.consistencyProof(oldSize, newSize);
    return c.json({ old: oldSize, new: newSize, consistencyProof: proof.map(encodeBase64) });
  };
  app.get('/:tenant/proof/consistency', consistency);
  app.get('/proof/consistency', consistency);

  app.get('/healthz', (c) =>
    c.json({
      ok: true,
      tenants: Object.fromEntries(tenants.names().map((n) => [n, { treeSize: tenants.get(n)!.treeSize, pending: tenants.get(n)!.pendingCount }])),
    }),
  );

  return app;
}
