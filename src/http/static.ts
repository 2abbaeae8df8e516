/**
 * The c2sp.org/tlog-tiles read routes, as on disk: `checkpoint`, `tile/<L>/<N>[.p/<W>]` and
 * `tile/entries/<N>[.p/<W>]`. Only canonical paths the committed tree implies are looked up;
 * anything else is a 404 without touching the disk. The newest tiles come from memory; a partial
 * the log collected from the disk is served as the prefix of a wider file.
 */
import { Hono, type Context } from 'hono';
import { gzipSync } from 'node:zlib';
import { ENTRIES_LEVEL, formatTilePath, parseTilePath } from '../tiles/layout.js';
import { CHECKPOINT_HEADERS, TILE_HEADERS } from '../tiles/served-headers.js';
import { authorizeRead } from './auth.js';
import { jsonError } from './errors.js';
import type { TenantOf } from './app.js';

/** Deployed practice (sunlight): immutable tiles cached a week. */
const IMMUTABLE = TILE_HEADERS.cacheControl;

function acceptsGzip(c: Context): boolean {
  return /\bgzip\b/.test(c.req.header('accept-encoding') ?? '');
}

function bytes(b: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(b.buffer as ArrayBuffer, b.byteOffset, b.byteLength);
}

/**
 * Recently served tiles and bundles, least recently used out first, at most `budget` bytes. The
 * content at a tile path never changes (only paths the committed tree implies are served), so
 * nothing here is ever stale; it saves the four event-loop turns of reading a file per GET.
 */
export class TileCache {
  private readonly entries = new Map<string, Uint8Array>();
  private bytes = 0;
  constructor(private readonly budget: number) {}

  get(key: string): Uint8Array | undefined {
    const v = this.entries.get(key);
    if (v) {
      this.entries.delete(key);
      this.entries.set(key, v);
    }
    return v;
  }

  put(key: string, v: Uint8Array): void {
    if (v.length > this.budget || this.entries.has(key)) return;
    this.entries.set(key, v);
    this.bytes += v.length;
    for (const [k, old] of this.entries) {
      if (this.bytes <= this.budget) break;
      this.entries.delete(k);
      this.bytes -= old.length;
    }
  }
}

/** Bytes of tiles and bundles kept in memory for GETs (TLOG_TILE_CACHE_MB, default 64). */
function tileCacheBudget(): number {
  const mb = Number(process.env.TLOG_TILE_CACHE_MB ?? 64);
  return Number.isFinite(mb) && mb >= 0 ? mb * 1024 * 1024 : 64 << 20;
}

export function staticRoutes(tenantOf: TenantOf): Hono {
  const app = new Hono();
  const cache = new TileCache(tileCacheBudget());
  /** Gzipped bundles, by tenant and path: they are immutable, so compress each once. */
  const gz = new Map<string, Uint8Array>();
  const gzipped = (key: string, data: Uint8Array): Uint8Array => {
    let z = gz.get(key);
    if (!z) {
      z = gzipSync(data, { level: 6 });
      gz.set(key, z);
      if (gz.size > 2048) gz.delete(gz.keys().next().value!);
    }
    return z;
  };

  // c2sp.org/tlog-tiles: the checkpoint is mutable; caches must not keep it.
  app.get('/:tenant/checkpoint', (c) => {
    const t = tenantOf(c);
    authorizeRead(c, t);
    const cp = t.log.published;
    const etag = `"cp-${cp.treeSize}-${Buffer.from(cp.noteHash.subarray(0, 8)).toString('hex')}"`;
    c.header('Cache-Control', CHECKPOINT_HEADERS.cacheControl);
    c.header('ETag', etag);
    if (c.req.header('if-none-match') === etag) return c.body(null, 304);
    c.header('Content-Type', CHECKPOINT_HEADERS.contentType);
    return c.body(cp.note);
  });

  app.get('/:tenant/tile/*', async (c) => {
    const t = tenantOf(c);
    authorizeRead(c, t);
    const rel = c.req.path.slice(c.req.param('tenant').length + 2);
    const coord = parseTilePath(rel);
    if (!coord || formatTilePath(coord) !== rel || !t.log.servesTile(coord)) return jsonError(c, 404, 'not_found', 'no such tile');
    const key = `${t.name}/${rel}`;
    let data = t.log.hotFile(rel) ?? cache.get(key);
    if (!data) {
      // A partial the log collected comes from the prefix of a wider file (c2sp.org/tlog-tiles:
      // partials of every checkpoint the log signed stay served until the full tile exists).
      const got = await t.log.readTileFile(coord);
      if (!got) return jsonError(c, 404, 'not_found', 'no such tile');
      data = got;
      cache.put(key, data);
    }
    // Content at a tile path never changes, so the path itself is a strong validator.
    const etag = `"${rel}"`;
    c.header('Cache-Control', IMMUTABLE);
    c.header('ETag', etag);
    c.header('Content-Type', TILE_HEADERS.contentType);
    if (coord.level === ENTRIES_LEVEL) c.header('Vary', 'Accept-Encoding');
    if (c.req.header('if-none-match') === etag) return c.body(null, 304);
    // c2sp.org/tlog-tiles: bundles SHOULD be HTTP-compressed.
    if (coord.level === ENTRIES_LEVEL && acceptsGzip(c)) {
      c.header('Content-Encoding', 'gzip');
      return c.body(bytes(gzipped(key, data)));
    }
    return c.body(bytes(data));
  });

  return app;
}
