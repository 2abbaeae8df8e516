/**
 * bench/partials: disk amplification of a log's served files. For each scenario it prints the
 * bytes under tiles/<tenant> (file sizes, the checkpoint file excluded), the entry bytes plus
 * the hashes of the tree (32 bytes per hash, every level), their ratio, and the partial tiles
 * and bundles left on disk.
 *
 *   npm run build && node dist/bench/partials.js [--dir /path] [--big 61440] [--soak 20000]
 *
 * Scenarios: 256 entries of --big bytes appended one at a time (each answered before the next
 * is sent: one batch, one checkpoint per entry, the worst case for partial bundles); the same
 * with 1 KiB entries; a soak of --soak entries of mixed sizes (4 B to 64 KiB) in waves of
 * concurrent appends and lone ones. Each prints the ratio at the end (after a flush) and the worst
 * one seen along the way (after every append one by one; after a flush every few waves in the soak).
 */
import { mkdtempSync, promises as fsp, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Log } from '../src/log/log.js';
import { logPaths } from '../src/tile-store/paths.js';
import { TILE_WIDTH, hashesAtLevel } from '../src/tiles/layout.js';
import { prng } from './lib/synthetic.js';

const { values } = parseArgs({
  options: {
    dir: { type: 'string', default: os.tmpdir() },
    big: { type: 'string', default: '61440' },
    soak: { type: 'string', default: '20000' },
    seed: { type: 'string', default: '1' },
  },
});

/** Bytes of every hash the tree of `size` holds, at every level (full and partial tiles). */
function hashBytes(size: number): number {
  let n = 0;
  for (let level = 0; hashesAtLevel(level, size) > 0; level++) n += hashesAtLevel(level, size);
  return n * 32;
}

async function du(dir: string): Promise<{ bytes: number; partialFiles: number; partialBytes: number }> {
  let bytes = 0;
  let partialFiles = 0;
  let partialBytes = 0;
  for (const name of await fsp.readdir(dir, { recursive: true })) {
    const p = path.join(dir, name);
    // The log may delete a collected partial between the listing and this.
    const st = await fsp.stat(p).catch(() => null);
    if (!st?.isFile() || name === 'checkpoint') continue;
    bytes += st.size;
    if (path.basename(path.dirname(p)).endsWith('.p')) {
      partialFiles++;
      partialBytes += st.size;
    }
  }
  return { bytes, partialFiles, partialBytes };
}

/** Entry i of `size` bytes (at least 4): distinct for every i, so none is answered as a duplicate. */
function entry(i: number, size: number): Uint8Array {
  const b = Buffer.alloc(size, 0x61 + (i % 26));
  b.writeUInt32BE(i, 0);
  return b;
}

interface Sample {
  entries: number;
  entryBytes: number;
  tiles: number;
  partialFiles: number;
  partialBytes: number;
}

function ratio(s: Sample): number {
  return s.tiles / (s.entryBytes + hashBytes(s.entries));
}

function mb(n: number): string {
  return `${(n / 1e6).toFixed(n < 1e7 ? 2 : 1)} MB`;
}

function line(name: string, s: Sample, worst?: number, worstAnswered?: number): string {
  return (
    `${name.padEnd(26)} ${String(s.entries).padStart(6)} entries  entries+hashes ${mb(s.entryBytes + hashBytes(s.entries)).padStart(9)}  ` +
    `tiles/ ${mb(s.tiles).padStart(9)}  ratio ${ratio(s).toFixed(3)}x  partials ${s.partialFiles} (${mb(s.partialBytes)})` +
    (worst !== undefined ? `  worst seen ${worst.toFixed(3)}x` : '') +
    (worstAnswered !== undefined ? ` (${worstAnswered.toFixed(3)}x right after an answer, before its collected partials are deleted)` : '')
  );
}

async function fresh(): Promise<{ log: Log; dir: string; tiles: string }> {
  const dir = mkdtempSync(path.join(values.dir!, 'tlog-partials-'));
  const paths = logPaths({ tilesRoot: path.join(dir, 'tiles'), checkpointsRoot: path.join(dir, 'cp'), stateRoot: path.join(dir, 'state') }, 'bench');
  return { log: await Log.init(paths, 'bench.example/log'), dir, tiles: paths.tilesDir };
}

async function sample(log: Log, tiles: string, entryBytes: number): Promise<Sample> {
  // As the log leaves it after its next flush (every second): the replay anchor moved on.
  await log.flush();
  await log.settled();
  const d = await du(tiles);
  return { entries: log.treeSize, entryBytes, tiles: d.bytes, partialFiles: d.partialFiles, partialBytes: d.partialBytes };
}

/**
 * 256 entries of `size` bytes, each appended once the previous one was answered. Worst ratios
 * seen: right after an answer, and once the partials the commit collected are deleted.
 */
async function oneAtATime(size: number): Promise<{ last: Sample; worst: number; worstAnswered: number }> {
  const { log, dir, tiles } = await fresh();
  let worst = 0;
  let worstAnswered = 0;
  const at = async (n: number) => {
    const d = await du(tiles);
    return ratio({ entries: n, entryBytes: n * size, tiles: d.bytes, partialFiles: d.partialFiles, partialBytes: d.partialBytes });
  };
  try {
    for (let i = 0; i < TILE_WIDTH; i++) {
      await log.append(entry(i, size));
      worstAnswered = Math.max(worstAnswered, await at(i + 1));
      await log.settled();
      worst = Math.max(worst, await at(i + 1));
    }
    const last = await sample(log, tiles, TILE_WIDTH * size);
    return { last, worst: Math.max(worst, ratio(last)), worstAnswered };
  } finally {
    await log.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function soak(total: number): Promise<{ last: Sample; worst: number }> {
  const { log, dir, tiles } = await fresh();
  const rand = prng(Number(values.seed));
  const size = () => {
    const r = rand();
    // Mostly small, some large: 4 B .. 64 KiB.
    return r < 0.6 ? 4 + Math.floor(rand() * 252) : r < 0.9 ? 1024 + Math.floor(rand() * 4096) : 32768 + Math.floor(rand() * 32767);
  };
  let entryBytes = 0;
  let worst = 0;
  let i = 0;
  try {
    while (i < total) {
      const wave = rand() < 0.5 ? 1 + Math.floor(rand() * 8) : 1 + Math.floor(rand() * 200);
      const lone = rand() < 0.5;
      const batch: Uint8Array[] = [];
      for (let k = 0; k < wave && i < total; k++, i++) batch.push(entry(i, size()));
      entryBytes += batch.reduce((a, e) => a + e.length, 0);
      if (lone) for (const e of batch) await log.append(e);
      else await Promise.all(batch.map((e) => log.append(e)));
      if (rand() < 0.1 || i >= total) {
        const s = await sample(log, tiles, entryBytes);
        worst = Math.max(worst, ratio(s));
      }
    }
    const last = await sample(log, tiles, entryBytes);
    return { last, worst: Math.max(worst, ratio(last)) };
  } finally {
    await log.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const big = Number(values.big);
const a = await oneAtATime(big);
console.log(line(`256 x ${big} B one by one`, a.last, a.worst, a.worstAnswered));
const b = await oneAtATime(1024);
console.log(line('256 x 1 KiB one by one', b.last, b.worst, b.worstAnswered));
const s = await soak(Number(values.soak));
console.log(line(`soak, mixed sizes`, s.last, s.worst));
