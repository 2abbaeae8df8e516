/**
 * Where a verifier reads a tlog-tiles log from: a directory (what `tiles/<tenant>` holds) or an
 * HTTP prefix. Paths are the c2sp.org/tlog-tiles URL paths relative to the prefix.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { errorChain, ioError, isTlogError, TlogError, ErrorCode } from '../errors.js';
import { TILE_WIDTH, formatTilePath, parseTilePath } from '../tiles/layout.js';
import { prefixOf, widerWidths } from '../tiles/prefix.js';

export interface TlogSource {
  /** A short description for messages: the directory or URL prefix. */
  readonly where: string;
  /** The bytes at `rel` (e.g. "checkpoint", "tile/0/000"), or null when it does not exist. */
  get(rel: string): Promise<Uint8Array | null>;
}

async function readOrNull(p: string): Promise<Uint8Array | null> {
  try {
    return await fsp.readFile(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw ioError('read', p, e);
  }
}

export interface DirSourceOptions {
  /**
   * Answer a partial tile or bundle that is not on disk from the prefix of the narrowest wider
   * one, else of the full one, as `tlog serve` does for the partials this engine collects
   * (c2sp.org/tlog-tiles: a partial is the prefix of every wider one). For a local log of ours.
   */
  readonly derivePartials?: boolean;
}

export function dirSource(dir: string, opts: DirSourceOptions = {}): TlogSource {
  return {
    where: dir,
    async get(rel) {
      const data = await readOrNull(path.join(dir, ...rel.split('/')));
      if (data || !opts.derivePartials) return data;
      const t = parseTilePath(rel);
      if (!t || t.width === TILE_WIDTH) return null;
      const base = path.join(dir, ...formatTilePath({ ...t, width: TILE_WIDTH }).split('/'));
      const names = await fsp.readdir(`${base}.p`).catch(() => [] as string[]);
      for (const w of widerWidths(names, t.width)) {
        const p = w === TILE_WIDTH ? base : path.join(`${base}.p`, String(w));
        const wider = await readOrNull(p);
        if (wider) return prefixOf(p, t.level, wider, w, t.width);
      }
      return null;
    },
  };
}

/** HTTP statuses that say "not now" rather than "no": 408, 425, 429 and 5xx. */
function isPassingStatus(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500;
}

/**
 * Whether a source error may pass by itself (the network, a timeout, an overloaded or failing
 * server): the monitor retries those. Fetch failures carry their reason as `cause`.
 */
export function isTransientSourceError(e: unknown): boolean {
  return isTlogError(e, ErrorCode.unavailable);
}

const fetchOnce = (url: string, timeoutMs: number, headers: Record<string, string>) => fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs) });

/** A fetch failure from a reused connection the server had closed (reset or closed socket). */
function isStaleConnection(e: unknown): boolean {
  const code = ((e as Error)?.cause as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ECONNRESET' || code === 'EPIPE' || code === 'UND_ERR_SOCKET';
}

/**
 * An HTTP(S) prefix. fetch() undoes Content-Encoding: gzip, which the spec allows on bundles.
 * `readToken`: a bearer token sent with every GET, for a log whose reads need one (a private
 * tenant of tlog-worm); a public log needs none, and tlog-tiles itself defines no credentials.
 */
export function urlSource(prefix: string, opts: { timeoutMs?: number; readToken?: string } = {}): TlogSource {
  const base = prefix.endsWith('/') ? prefix : `${prefix}/`;
  const headers: Record<string, string> = opts.readToken ? { authorization: `Bearer ${opts.readToken}` } : {};
  return {
    where: prefix,
    async get(rel) {
      const url = base + rel;
      const timeoutMs = opts.timeoutMs ?? 30_000;
      let res: Response;
      try {
        res = await fetchOnce(url, timeoutMs, headers).catch((e: unknown) => {
          // A kept-alive connection the server closed just as this request went out fails with a
          // reset before the server read anything; a GET is idempotent, so one new try is safe.
          if (!isStaleConnection(e)) throw e;
          return fetchOnce(url, timeoutMs, headers);
        });
      } catch (e) {
        // fetch() says "fetch failed" and keeps the reason (refused, reset, DNS, TLS) in its
        // cause: say it, and keep the cause.
        const name = (e as Error)?.name;
        const why = name === 'TimeoutError' || name === 'AbortError' ? `no answer within ${timeoutMs} ms` : errorChain(e);
        throw new TlogError(ErrorCode.unavailable, `GET ${url}: ${why}`, { cause: e });
      }
      if (res.status === 404) {
        await res.body?.cancel().catch(() => {});
        return null;
      }
      if (!res.ok) {
        await res.body?.cancel().catch(() => {});
        // Overload and server trouble may pass; anything else (401, 403, 410...) is an answer.
        const why = res.status === 401 ? (opts.readToken ? ' (the read token was refused)' : ' (reads of this log need a read token)') : '';
        throw new TlogError(isPassingStatus(res.status) ? ErrorCode.unavailable : ErrorCode.io, `GET ${url}: HTTP ${res.status}${why}`);
      }
      try {
        return new Uint8Array(await res.arrayBuffer());
      } catch (e) {
        throw new TlogError(ErrorCode.unavailable, `GET ${url}: the body was cut: ${(e as Error).message}`, { cause: e });
      }
    },
  };
}
