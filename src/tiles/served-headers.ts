/**
 * The HTTP headers the tlog-tiles files are served with, by our server (src/http/static.ts) and
 * by a bucket that holds them (src/cluster/store-log.ts stores them as the objects' metadata, so
 * a CDN in front of the bucket sends the same).
 */

/** c2sp.org/tlog-tiles: the checkpoint is mutable; caches must not keep it. */
export const CHECKPOINT_HEADERS = { contentType: 'text/plain; charset=utf-8', cacheControl: 'no-store' } as const;

/** Tiles and bundles never change at their path. Deployed practice (sunlight): cached a week. */
export const TILE_HEADERS = { contentType: 'application/octet-stream', cacheControl: 'public, max-age=604800, immutable' } as const;

/** A checkpoint of the history (immutable: one per tree size). */
export const HISTORY_HEADERS = { contentType: 'text/plain; charset=utf-8', cacheControl: 'public, max-age=604800, immutable' } as const;
