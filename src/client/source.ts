/**
 * Where a verifier reads a tlog-tiles log from: a directory (what `tiles/<tenant>` holds) or an
 * HTTP prefix. Paths are the c2sp.org/tlog-tiles URL paths relative to the prefix.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { ioError, TlogError, ErrorCode } from '../errors.js';

export interface TlogSource {
  /** A short description for messages: the directory or URL prefix. */
  readonly where: string;
  /** The bytes at `rel` (e.g. "checkpoint", "tile/0/000"), or null when it does not exist. */
  get(rel: string): Promise<Uint8Array | null>;
}

export function dirSource(dir: string): TlogSource {
  return {
    where: dir,
    async get(rel) {
      const p = path.join(dir, ...rel.split('/'));
      try {
        return await fsp.readFile(p);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw ioError('read', p, e);
      }
    },
  };
}

/** An HTTP(S) prefix. fetch() undoes Content-Encoding: gzip, which the spec allows on bundles. */
export function urlSource(prefix: string, opts: { timeoutMs?: number } = {}): TlogSource {
  const base = prefix.endsWith('/') ? prefix : `${prefix}/`;
  return {
    where: prefix,
    async get(rel) {
      const url = base + rel;
      let res: Response;
      try {
        res = await fetch(url, { signal: AbortSignal.timeout(opts.timeoutMs ?? 30_000) });
      } catch (e) {
        throw new TlogError(ErrorCode.io, `GET ${url}: ${(e as Error).message}`);
      }
      if (res.status === 404) return null;
      if (!res.ok) throw new TlogError(ErrorCode.io, `GET ${url}: HTTP ${res.status}`);
      return new Uint8Array(await res.arrayBuffer());
    },
  };
}
