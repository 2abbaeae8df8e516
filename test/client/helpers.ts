/**
 * Test logs written by our engine, a static HTTP server over a tiles directory (what a CDN in
 * front of a log is), and the partial tiles a tree size implies.
 */
import { cpSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { Log } from '../../src/log/log.js';
import { logPaths, type DataRoots, type LogPaths } from '../../src/tile-store/paths.js';
import { ENTRIES_LEVEL, TILE_WIDTH, formatTilePath, hashesAtLevel, partialWidth } from '../../src/tiles/layout.js';
import { removeDir, tempDataRoots } from '../helpers/temp-dirs.js';

export const entryOf = (i: number, tag = '') => Buffer.from(`entry ${i}${tag}`);

/** Appends entries [from, to) ("entry <i><tag>") in one batch. */
export async function appendRange(log: Log, from: number, to: number, tag = ''): Promise<void> {
  await Promise.all(log.appendMany(Array.from({ length: to - from }, (_, k) => entryOf(from + k, tag))));
}

/** A new log with `sizes` checkpoints on the way (one batch per step); returns the notes at each size. */
export async function makeLog(
  roots: DataRoots,
  origin: string,
  sizes: readonly number[],
  tenant = 'default',
): Promise<{ log: Log; paths: LogPaths; notes: string[] }> {
  const paths = logPaths(roots, tenant);
  const log = await Log.init(paths, origin);
  const notes: string[] = [];
  let n = 0;
  for (const s of sizes) {
    if (s > n) await appendRange(log, n, s);
    n = s;
    notes.push(log.committed.note);
  }
  return { log, paths, notes };
}

/** A closed log made by makeLog in a new temporary directory, and a static server over its tiles. */
export interface ServedLog {
  readonly dir: string;
  readonly roots: DataRoots;
  readonly paths: LogPaths;
  readonly log: Log;
  /** The checkpoint notes at each of the sizes. */
  readonly notes: string[];
  readonly vkeys: string[];
  readonly server: StaticServer;
  /** Stops the server and removes the directory. */
  close(): Promise<void>;
}

/** The fixture of the verifying-client tests: a log grown through `sizes`, closed, and served. */
export async function servedLog(prefix: string, origin: string, sizes: readonly number[]): Promise<ServedLog> {
  const { dir, roots } = tempDataRoots(prefix);
  const { log, paths, notes } = await makeLog(roots, origin, sizes);
  const vkeys = log.verifierKeys();
  await log.close();
  const server = await serveDir(paths.tilesDir);
  return {
    dir,
    roots,
    paths,
    log,
    notes,
    vkeys,
    server,
    async close() {
      await server.close();
      removeDir(dir);
    },
  };
}

/** Copies a closed log (tiles, history, private state) to other roots: a second log with the same keys. */
export function copyLog(from: DataRoots, to: DataRoots, tenant = 'default'): void {
  const a = logPaths(from, tenant);
  const b = logPaths(to, tenant);
  cpSync(a.tilesDir, b.tilesDir, { recursive: true });
  cpSync(a.historyDir, b.historyDir, { recursive: true });
  cpSync(a.stateDir, b.stateDir, { recursive: true });
}

/** Paths (relative to the tiles dir) of every partial tile and bundle a tree of `size` implies. */
export function partialsOf(size: number): string[] {
  const out: string[] = [];
  for (let level = 0; hashesAtLevel(level, size) > 0; level++) {
    const w = partialWidth(level, size);
    if (w > 0) out.push(formatTilePath({ level, index: Math.floor(hashesAtLevel(level, size) / TILE_WIDTH), width: w }));
  }
  if (size % TILE_WIDTH) out.push(formatTilePath({ level: ENTRIES_LEVEL, index: Math.floor(size / TILE_WIDTH), width: size % TILE_WIDTH }));
  return out;
}

export interface StaticServer {
  readonly url: string;
  readonly requests: string[];
  /** Paths answered 404. */
  readonly misses: string[];
  close(): Promise<void>;
}

/**
 * A tiny static server over `root`: GET <url>/<rel> serves root/<rel>, 404 otherwise. Entry
 * bundles are sent gzipped without negotiation (c2sp.org/tlog-tiles allows it). `fault` may
 * drop a request's connection or answer it with a status instead.
 */
export async function serveDir(root: string, prefix = '/log', fault?: (rel: string) => 'reset' | number | null): Promise<StaticServer> {
  const requests: string[] = [];
  const misses: string[] = [];
  const { readFile } = await import('node:fs/promises');
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const rel = decodeURIComponent(url.pathname).slice(prefix.length + 1);
    requests.push(rel);
    // A log that is down (the connection dropped) or failing (an HTTP status) for this request.
    const f = fault?.(rel) ?? null;
    if (f === 'reset') return void req.socket.destroy();
    if (f !== null) return void res.writeHead(f).end();
    if (!url.pathname.startsWith(prefix + '/') || rel.split('/').includes('..')) {
      res.writeHead(404).end();
      return;
    }
    readFile(path.join(root, ...rel.split('/'))).then(
      (data) => {
        if (rel.startsWith('tile/entries/')) res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-encoding': 'gzip' }).end(gzipSync(data));
        else res.writeHead(200, { 'content-type': rel === 'checkpoint' ? 'text/plain; charset=utf-8' : 'application/octet-stream' }).end(data);
      },
      () => {
        misses.push(rel);
        res.writeHead(404).end();
      },
    );
  });
  // Idle kept-alive connections stay open as long as a CDN's would (nginx: 75 s): a test that
  // spends seconds of CPU between requests must not race the server closing the socket.
  server.keepAliveTimeout = 75_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${prefix}`,
    requests,
    misses,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
