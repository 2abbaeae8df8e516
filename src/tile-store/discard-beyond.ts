/**
 * Recovery of a log's tiles to its commit point. A crash, or a batch that failed, can leave tiles
 * and bundles that a batch wrote but never committed: nobody was told about them, and the next
 * batch will build different ones at the same paths, so they are deleted before the log goes on.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { ioError } from '../errors.js';
import { ENTRIES_LEVEL, MAX_LEVEL, TILE_WIDTH, formatTilePath, hashesAtLevel } from '../tiles/layout.js';
import { syncDir } from '../storage/durable.js';

const TEMP_FILE = /^\..+\.tmp$/;

async function listDir(dir: string): Promise<string[]> {
  try {
    return await fsp.readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw ioError('readdir', dir, e);
  }
}

async function removeFile(p: string, removed: string[], dirs: Set<string>): Promise<void> {
  try {
    await fsp.unlink(p);
    removed.push(p);
    dirs.add(path.dirname(p));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError('unlink', p, e);
  }
}

/**
 * Deletes every tile and bundle (full or partial) that extends beyond `treeSize` and that
 * batches of at most `span` entries beyond it (the engine's recovery span) can have written,
 * and stale temp files next to them. Returns the paths removed. Partial tiles of smaller widths
 * stay: they belong to earlier published checkpoints.
 */
export async function discardBeyond(tilesDir: string, treeSize: number, span: number): Promise<string[]> {
  if (!(Number.isSafeInteger(span) && span >= 1)) throw new RangeError(`bad recovery span ${span}`);
  const removed: string[] = [];
  const touched = new Set<string>();
  // Each directory that may hold such tiles is listed once, and only the names found there are
  // touched: after a clean stop there are none, and trying every possible name (an unlink and a
  // readdir per tile of the span, ~800 failing calls with the default settings) was most of the
  // time a log took to open.
  const listings = new Map<string, Promise<Set<string>>>();
  const namesIn = (dir: string): Promise<Set<string>> => {
    let names = listings.get(dir);
    if (!names) {
      names = listDir(dir).then((n) => new Set(n));
      listings.set(dir, names);
    }
    return names;
  };
  const end = treeSize + span;
  for (let level = ENTRIES_LEVEL; level <= MAX_LEVEL; level++) {
    const l = Math.max(level, 0);
    // Nothing at this level could have been written by batches ending at or before `end`.
    const upTo = hashesAtLevel(l, end);
    if (upTo === 0) break;
    const count = hashesAtLevel(l, treeSize);
    // From the tile holding the first hash beyond the commit point to the one holding the last
    // hash such batches can have written.
    const first = Math.floor(count / TILE_WIDTH);
    const last = Math.floor((upTo - 1) / TILE_WIDTH);
    for (let index = first; index <= last; index++) {
      const full = path.join(tilesDir, formatTilePath({ level, index, width: TILE_WIDTH }));
      const dir = path.dirname(full);
      const name = path.basename(full);
      const names = await namesIn(dir);
      if (names.has(name)) await removeFile(full, removed, touched);
      if (!names.has(`${name}.p`)) continue;
      const partialDir = `${full}.p`;
      for (const p of await listDir(partialDir)) {
        const w = Number(p);
        const stale = TEMP_FILE.test(p) || !(Number.isInteger(w) && index * TILE_WIDTH + w <= count);
        if (stale) await removeFile(path.join(partialDir, p), removed, touched);
      }
    }
  }
  // Stale temp files beside those tiles, and the published checkpoint's own in the log's root directory.
  await namesIn(tilesDir);
  for (const [dir, listing] of listings) {
    for (const name of await listing) {
      if (TEMP_FILE.test(name)) await removeFile(path.join(dir, name), removed, touched);
    }
  }
  // Make the deletions durable, so a second crash cannot bring the files back.
  await Promise.all([...touched].map(syncDir));
  return removed;
}
