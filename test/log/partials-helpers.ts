/**
 * Shared by the partial-tile tests (partials.test.ts, and the long soak in
 * partials-soak.test.ts): entries, the bytes under tiles/, the ratio to entry bytes plus
 * hashes, an audit with the whole history, and the soak itself.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { Log } from '../../src/log/log.js';
import type { LogPaths } from '../../src/tile-store/paths.js';
import { parseCheckpoint } from '../../src/note/checkpoint.js';
import { parseNote } from '../../src/note/note.js';
import { treeHashBytes } from '../../src/tiles/layout.js';
import { auditLogFiles } from './helpers.js';

export const ORIGIN = 'example.com/partials';

/** Entry i of `size` bytes (at least 4), distinct for every i. */
export function entryOf(i: number, size: number): Buffer {
  const b = Buffer.alloc(size, 0x61 + (i % 26));
  b.writeUInt32BE(i, 0);
  return b;
}

/** Bytes of the files under tiles/<tenant> but the checkpoint, and the partial files. */
export function du(tilesDir: string): { bytes: number; partials: string[] } {
  let bytes = 0;
  const partials: string[] = [];
  for (const name of readdirSync(tilesDir, { recursive: true }) as string[]) {
    const st = statSync(path.join(tilesDir, name));
    if (!st.isFile() || name === 'checkpoint') continue;
    bytes += st.size;
    if (/\.p\/\d+$/.test(name)) partials.push(name.split(path.sep).join('/'));
  }
  return { bytes, partials: partials.sort() };
}

/** Bytes under tiles/ over (entry bytes + the tree's hashes, 32 bytes each at every level). */
export function ratio(tilesDir: string, entryBytes: number, size: number): number {
  return du(tilesDir).bytes / (entryBytes + treeHashBytes(size));
}

export function publishedSize(p: LogPaths): number {
  return parseCheckpoint(parseNote(readFileSync(path.join(p.tilesDir, 'checkpoint'), 'utf8')).text).treeSize;
}

/** A full audit of the log's files with every checkpoint of its history. */
export function audit(p: LogPaths, log: Log, collectedPartials = true) {
  return auditLogFiles(log, p, ORIGIN, collectedPartials);
}

/**
 * `waves` rounds of appends to a new log at `p`: of mixed sizes (mostly small, some of 1-3 KiB,
 * some of 16-32 KiB), either concurrent or one at a time, with a flush now and then. Returns
 * the entries, the worst ratio after any round (once its collected partials are deleted), the
 * ratio after a reopen, and the size a full audit reached.
 */
export async function soak(p: LogPaths, waves: number, seed: number): Promise<{ entries: number; worst: number; reopened: number; audited: number }> {
  const log = await Log.init(p, ORIGIN, { flushIntervalMs: 1e9 });
  let s = seed >>> 0;
  const rand = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const sizeOf = () => {
    const r = rand();
    return r < 0.6 ? 4 + Math.floor(rand() * 100) : r < 0.9 ? 1024 + Math.floor(rand() * 2048) : 16384 + Math.floor(rand() * 16384);
  };
  let entryBytes = 0;
  let n = 0;
  let worst = 0;
  try {
    for (let wave = 0; wave < waves; wave++) {
      const count = rand() < 0.5 ? 1 + Math.floor(rand() * 6) : 1 + Math.floor(rand() * 120);
      const batch = Array.from({ length: count }, () => entryOf(n++, sizeOf()));
      entryBytes += batch.reduce((a, e) => a + e.length, 0);
      if (rand() < 0.5) for (const e of batch) await log.append(e);
      else await Promise.all(batch.map((e) => log.append(e)));
      if (rand() < 0.3) await log.flush();
      await log.settled();
      worst = Math.max(worst, ratio(p.tilesDir, entryBytes, log.treeSize));
    }
    if (log.treeSize !== n) throw new Error(`the log holds ${log.treeSize} entries, ${n} were appended`);
  } finally {
    await log.close();
  }
  const reopened = await Log.open(p);
  try {
    return { entries: n, worst, reopened: ratio(p.tilesDir, entryBytes, n), audited: (await audit(p, reopened)).treeSize };
  } finally {
    await reopened.close();
  }
}
