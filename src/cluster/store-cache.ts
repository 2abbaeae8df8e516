/**
 * This node's local directories for a tenant whose truth is the store: a cache, rebuilt from the
 * store on every take-over (store-log.ts). Whatever was there (a copy from when this node held
 * the tenant before another node wrote, or journal records of a crash the store never got) is
 * removed first, so a stale cache can never win over the store: the cheapest rule that is always
 * right. The price is a download of the tree's tiles and an index rebuild per take-over (bench/
 * store-takeover.ts measures it).
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { TlogError, ErrorCode, ioError } from '../errors.js';
import { DurableWriter, writeFileDurably, type FileWrite } from '../storage/durable.js';
import type { ObjectStore } from '../storage/object-store.js';
import { createSecretFile, ensureSecretDir, readSecretFile } from '../storage/secret-file.js';
import { changedTiles, type TileCoord } from '../tiles/layout.js';
import { CHECKPOINT_FILE, historyPath, type LogPaths } from '../tile-store/paths.js';
import { TileReader } from '../tile-store/tile-reader.js';
import { writeLogConfig } from '../log/config-file.js';
import { notePath, notesDir } from '../log/commit-point.js';
import { KEY_FILES } from '../log/keys.js';
import { tileKey } from './store-layout.js';

/** Parallel GETs while downloading tiles. */
const DOWNLOADS = 32;

/** Removes the tenant's local directories and makes its private state: keys (copied, 0600 in 0700) and log.json. */
export async function resetCache(paths: LogPaths, keysDir: string, origin: string): Promise<void> {
  for (const d of [paths.tilesDir, paths.historyDir, paths.stateDir]) {
    await fsp.rm(d, { recursive: true, force: true }).catch((e: unknown) => Promise.reject(ioError('remove', d, e)));
  }
  await fsp.mkdir(path.dirname(paths.stateDir), { recursive: true, mode: 0o700 });
  await ensureSecretDir(paths.stateDir);
  await ensureSecretDir(path.join(paths.stateDir, 'keys'));
  for (const f of Object.values(KEY_FILES)) {
    await createSecretFile(path.join(paths.stateDir, 'keys', f), await readSecretFile(path.join(keysDir, f)));
  }
  await ensureSecretDir(notesDir(paths.stateDir));
  await writeLogConfig(paths.stateDir, { version: 1, origin, createdAt: new Date().toISOString() });
}

/** Downloads every tile and bundle the tree of `size` implies into the tiles directory (durable on return). */
export async function downloadTiles(store: ObjectStore, paths: LogPaths, size: number, tenant: string): Promise<number> {
  const reader = new TileReader(paths.tilesDir);
  const writer = new DurableWriter({ mode: 0o644 });
  const coords = changedTiles(0, size);
  let next = 0;
  const one = async (c: TileCoord) => {
    const obj = await store.get(tileKey(c));
    if (!obj)
      throw new TlogError(ErrorCode.corrupt, `tenant ${tenant}: ${store.where}${tileKey(c)} is missing, yet the store's checkpoint (size ${size}) implies it`);
    await writer.writeDeferred([{ path: reader.tilePath(c.level, c.index, c.width), data: obj.bytes, kind: 'replace' }]);
  };
  await Promise.all(
    Array.from({ length: Math.min(DOWNLOADS, coords.length) }, async () => {
      while (next < coords.length) await one(coords[next++]!);
    }),
  );
  await writer.flush();
  return coords.length;
}

/**
 * Writes the files that make `note` the local commit point and published checkpoint: its note
 * in the private notes (the index rebuild finds the commit point there), the served checkpoint
 * and its history copy.
 */
export async function writeCommitted(paths: LogPaths, note: string, size: number, extra: FileWrite[] = []): Promise<void> {
  const bytes = Buffer.from(note, 'utf8');
  const writer = new DurableWriter({ mode: 0o644 });
  await writer.write([
    ...extra,
    { path: historyPath(paths.historyDir, size), data: bytes, kind: 'replace' },
    { path: path.join(paths.tilesDir, CHECKPOINT_FILE), data: bytes, kind: 'replace' },
  ]);
  await writeFileDurably(notePath(paths.stateDir, size), bytes, 0o600);
}
