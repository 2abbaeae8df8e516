/**
 * Partial tiles and bundles on disk (src/tile-store/partials.ts): every batch writes the partials of its
 * tree, each partial bundle holding every entry of its bundle so far, so without collection the
 * disk grows with the square of a tile's fill (256 entries of 60 KB one at a time: 2 GB). The
 * log keeps the files under tiles/ within 3x of the entry bytes plus the tree's hashes, keeps
 * the partials of the published checkpoint until the full tile exists, serves every partial of
 * every checkpoint it signed (collected ones as a wider file's prefix), and recovers from a
 * crash without bringing collected partials back.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { dirSource } from '../../src/client/source.js';
import { TileFetcher } from '../../src/client/tiles.js';
import { fetchCheckpoint, proveInclusion } from '../../src/client/verify.js';
import { Log } from '../../src/log/log.js';
import { removeViaPool } from '../../src/storage/durable.js';
import type { WorkerRemoval } from '../../src/storage/file-worker.js';
import { PartialTiles } from '../../src/tile-store/partials.js';
import { logPaths, type DataRoots, type LogPaths } from '../../src/tile-store/paths.js';
import { TileReader } from '../../src/tile-store/tile-reader.js';
import { formatEntryBundle } from '../../src/tiles/bundle.js';
import { ENTRIES_LEVEL, TILE_WIDTH, formatTilePath, partialTiles, treeHashBytes } from '../../src/tiles/layout.js';
import { ensureDist } from '../helpers/dist.js';
import { ORIGIN, audit, du, entryOf, publishedSize, ratio, soak } from './partials-helpers.js';
import { simulatePowerLoss } from './power-loss.js';
import { removeDir, tempDataRoots } from '../helpers/temp-dirs.js';
import { runChildUntilDone } from './helpers.js';

const TENANT = 'p';

let dir: string;
let roots: DataRoots;
let paths: LogPaths;

beforeEach(() => {
  ({ dir, roots } = tempDataRoots('tlog-partials-'));
  paths = logPaths(roots, TENANT);
});
afterEach(() => removeDir(dir));

describe('disk amplification', () => {
  // The worst case of the issue is 256 entries of 60 KB one at a time (2 GB before collection,
  // 128x); the amplification is the same for any entry size, so smaller entries keep it quick.
  it.each([4096, 1024, 16])('256 entries of %i bytes appended one at a time: within 3x at every step, 1x once the tile is full', async (size) => {
    const log = await Log.init(paths, ORIGIN, { flushIntervalMs: 1e9 });
    let worst = 0;
    for (let i = 0; i < TILE_WIDTH; i++) {
      await log.append(entryOf(i, size));
      // A flush now and then, as the timer does: the journal moves on, segments go.
      if (i % 50 === 49) await log.flush();
      await log.settled();
      worst = Math.max(worst, ratio(paths.tilesDir, (i + 1) * size, i + 1));
      // The published checkpoint's partials are always on disk (what a static server serves).
      for (const t of partialTiles(publishedSize(paths))) expect(existsSync(path.join(paths.tilesDir, formatTilePath(t))), formatTilePath(t)).toBe(true);
    }
    expect(worst).toBeLessThanOrEqual(3);
    await log.close();
    // One copy of the tree: the full tile and bundle (entries with their 2-byte lengths) and
    // the level-1 partial of width 1 a tree of 256 implies.
    expect(du(paths.tilesDir).partials).toEqual(['tile/1/000.p/1']);
    expect(du(paths.tilesDir).bytes).toBe(TILE_WIDTH * (size + 2) + treeHashBytes(TILE_WIDTH));
  });

  it('a soak of mixed sizes, concurrent and lone appends stays within 3x, and audits (npm run test:heavy runs a longer one)', async () => {
    const r = await soak(paths, 25, 7);
    expect(r.entries).toBeGreaterThan(250);
    expect(r.worst).toBeLessThanOrEqual(3);
    expect(r.reopened).toBeLessThanOrEqual(3);
    expect(r.audited).toBe(r.entries);
  });
});

describe('serving collected partials', () => {
  it('the log serves a collected partial as the prefix of a wider one; a client with an old published checkpoint falls back to the full tile', async () => {
    const log = await Log.init(paths, ORIGIN, { flushIntervalMs: 1e9 });
    for (let i = 0; i < 100; i++) await log.append(entryOf(i, 1024));
    await log.flush();
    await log.settled();
    // A client takes the published checkpoint of size 100.
    const src = dirSource(paths.tilesDir);
    const cp100 = await fetchCheckpoint(src, { logKeys: log.verifierKeys(), origin: ORIGIN });
    expect(cp100.checkpoint.treeSize).toBe(100);
    // Size 10's partials were collected (published, but beyond the budget), tile 0 is not full.
    expect(existsSync(path.join(paths.tilesDir, 'tile/entries/000.p/10'))).toBe(false);
    const bundle10 = await log.readTileFile({ level: ENTRIES_LEVEL, index: 0, width: 10 });
    expect(Buffer.from(bundle10!)).toEqual(Buffer.from(formatEntryBundle(Array.from({ length: 10 }, (_, i) => entryOf(i, 1024)))));
    const tile10 = await log.readTileFile({ level: 0, index: 0, width: 10 });
    expect(Buffer.from(tile10!)).toEqual(Buffer.from((await log.readTileFile({ level: 0, index: 0, width: 100 }))!.subarray(0, 320)));

    for (let i = 100; i < 300; i++) await log.append(entryOf(i, 1024));
    await log.flush();
    await log.settled();
    // Tile 0 is full: its partials, the published size 100's included, are gone.
    expect(existsSync(path.join(paths.tilesDir, 'tile/entries/000.p/100'))).toBe(false);
    expect(existsSync(path.join(paths.tilesDir, 'tile/0/000.p/100'))).toBe(false);
    const tiles = new TileFetcher(src);
    const r = await proveInclusion(tiles, cp100, 42);
    expect(Buffer.from(r.entry)).toEqual(entryOf(42, 1024));
    expect(tiles.stats.fallbacks).toBeGreaterThan(0);
    await log.close();
  });

  it('a cosigned publication of an older size writes its collected partials back first, and keeps them', async () => {
    const log = await Log.init(paths, ORIGIN, { flushIntervalMs: 1e9, publishMode: 'cosigned' });
    const notes = new Map<number, string>();
    for (let i = 0; i < 60; i++) notes.set(i + 1, (await log.append(entryOf(i, 512))).checkpoint);
    await log.settled();
    // Nothing but size 0 published: every superseded partial went at once.
    expect(du(paths.tilesDir).partials).toEqual(['tile/0/000.p/60', 'tile/entries/000.p/60']);
    await log.publishCosigned(notes.get(20)!, true);
    expect(publishedSize(paths)).toBe(20);
    expect(du(paths.tilesDir).partials).toEqual(['tile/0/000.p/20', 'tile/0/000.p/60', 'tile/entries/000.p/20', 'tile/entries/000.p/60']);
    for (let i = 60; i < 80; i++) await log.append(entryOf(i, 512));
    await log.settled();
    expect(du(paths.tilesDir).partials).toEqual(['tile/0/000.p/20', 'tile/0/000.p/80', 'tile/entries/000.p/20', 'tile/entries/000.p/80']);
    // The next publication moves on; 20 stays, as an earlier published checkpoint within the budget.
    await log.publishCosigned(log.committed.note, true);
    expect(publishedSize(paths)).toBe(80);
    expect(du(paths.tilesDir).partials).toEqual(['tile/0/000.p/20', 'tile/0/000.p/80', 'tile/entries/000.p/20', 'tile/entries/000.p/80']);
    await log.close();
  });
});

describe('publishing modes', () => {
  it('turning from cosigned to each publishes the newest tree and keeps its partials as published', async () => {
    const log = await Log.init(paths, ORIGIN, { flushIntervalMs: 1e9, publishMode: 'cosigned' });
    for (let i = 0; i < 50; i++) await log.append(entryOf(i, 512));
    await log.setPublishMode('each');
    expect(publishedSize(paths)).toBe(50);
    await log.append(entryOf(50, 512));
    await log.settled();
    // Size 50 was published: its partials stay (within the budget) though 51 superseded them.
    expect(du(paths.tilesDir).partials).toEqual(['tile/0/000.p/50', 'tile/0/000.p/51', 'tile/entries/000.p/50', 'tile/entries/000.p/51']);
    await log.close();
  });
});

describe('the audit says what it checked', () => {
  it('counts partials present, absent with their full tile, collected; refuses a missing one otherwise', async () => {
    const log = await Log.init(paths, ORIGIN, { flushIntervalMs: 1e9 });
    for (let i = 0; i < 300; i++) await log.append(entryOf(i, 64));
    await log.close();
    const reader = await Log.open(paths, { readOnly: true });
    const onDisk = du(paths.tilesDir).partials;
    const report = await audit(paths, reader);
    // History: sizes 0..300. Tile 0 full: the partials of sizes 1..255 are absent with their
    // full tile in place, a level-0 tile and a bundle each; 256..299 are in tile 1.
    expect(report.checkpointsChecked).toBe(301);
    expect(report.partials.fullTileExists).toBe(255 * 2);
    // Sizes 257..299 imply the level-1 partial of width 1 (on disk, the published one's) and
    // level-0 partials of tile 1: on disk, or collected.
    const kept = Array.from({ length: 43 }, (_, i) => i + 1).filter((w) => onDisk.includes(`tile/0/001.p/${w}`));
    for (const w of kept) expect(onDisk).toContain(`tile/entries/001.p/${w}`);
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.length).toBeLessThan(43);
    // Present: size 256's level-1 partial, the level-1 one of 257..299, the kept ones of tile 1
    // (tile and bundle), and size 300's three, as a history checkpoint and as the published one.
    expect(report.partials.present).toBe(1 + 43 + 2 * kept.length + 3 + 3);
    expect(report.partials.collected).toBe(2 * (43 - kept.length));
    // Without collectedPartials (a log that is not ours), a missing partial whose full tile is
    // not there fails the audit, naming it.
    const gone = Array.from({ length: 43 }, (_, i) => i + 1).find((w) => !kept.includes(w))!;
    await expect(audit(paths, reader, false)).rejects.toThrow(new RegExp(`tile/entries/001\\.p/${gone} is missing, and the full tile is not in the tree`));
    await reader.close();
  });
});

describe('open collects what a crash left', () => {
  it('deletes partials of full tiles and keeps those of the edge as earlier published ones, within the budget', async () => {
    const reader = new TileReader(paths.tilesDir);
    const write = (t: { level: number; index: number; width: number }, data: Uint8Array) => {
      const p = reader.tilePath(t.level, t.index, t.width);
      mkdirSync(path.dirname(p), { recursive: true });
      writeFileSync(p, data);
    };
    // A tree of 300 entries of 8 bytes: tile 0 full, tile 1 at 44, with leftovers of sizes 100
    // and 200 in tile 0, and of 270 and 280 in tile 1, and a temp file.
    const entries = Array.from({ length: 300 }, (_, i) => entryOf(i, 8));
    const bundle = (from: number, to: number) => formatEntryBundle(entries.slice(from, to));
    write({ level: ENTRIES_LEVEL, index: 0, width: 256 }, bundle(0, 256));
    // Hash tiles: their bytes do not matter here, only that the published tree's are there.
    write({ level: 0, index: 0, width: 256 }, Buffer.alloc(256 * 32));
    write({ level: 0, index: 1, width: 44 }, Buffer.alloc(44 * 32));
    write({ level: 1, index: 0, width: 1 }, Buffer.alloc(32));
    for (const w of [100, 200]) write({ level: ENTRIES_LEVEL, index: 0, width: w }, bundle(0, w));
    for (const w of [14, 24, 44]) write({ level: ENTRIES_LEVEL, index: 1, width: w }, bundle(256, 256 + w));
    writeFileSync(path.join(paths.tilesDir, 'tile/entries/001.p/.44.123.w1.tmp'), 'torn');
    // The collected files go in one call, the emptied directory with the last of them.
    const removeCalls: WorkerRemoval[][] = [];
    const remove = (removes: readonly WorkerRemoval[]) => {
      removeCalls.push([...removes]);
      return removeViaPool(removes);
    };
    const p = await PartialTiles.open({ reader, write: async () => {}, remove, logger: { info() {}, warn() {}, error() {} }, tenant: TENANT }, 300, 300, 100);
    await p.idle();
    expect(removeCalls).toEqual([
      [
        { path: reader.tilePath(ENTRIES_LEVEL, 0, 100), rmdir: false },
        { path: reader.tilePath(ENTRIES_LEVEL, 0, 200), rmdir: true },
      ],
    ]);
    expect(du(paths.tilesDir).partials).toEqual([
      'tile/0/001.p/44',
      'tile/1/000.p/1',
      'tile/entries/001.p/14',
      'tile/entries/001.p/24',
      'tile/entries/001.p/44',
    ]);
    expect(existsSync(path.join(paths.tilesDir, 'tile/entries/000.p'))).toBe(false);
    expect(existsSync(path.join(paths.tilesDir, 'tile/entries/001.p/.44.123.w1.tmp'))).toBe(false);
    expect(p.collected).toBe(2);
  });
});

describe('crash recovery agrees with the collector', () => {
  beforeAll(() => ensureDist(), 240_000);

  /** Runs partials-child.mjs until it is done, then kills it; returns the indexes acknowledged. */
  async function appendThenKill(count: number, size: number, segmentBytes: number, flushAfter: number[]): Promise<number[]> {
    const out = await runChildUntilDone('partials-child.mjs', roots, TENANT, [String(count), String(size), String(segmentBytes), flushAfter.join(',')]);
    return [...out.matchAll(/^acked (\d+)$/gm)].map((m) => Number(m[1]));
  }

  it('replays from a journal that starts mid-tile, after a power loss, without bringing collected partials back', async () => {
    await (await Log.init(paths, ORIGIN)).close();
    // 1 KiB entries one at a time, journal segments of 64 KiB (about 14 records: each holds its
    // checkpoint too): the flush after 40 lets the first segments go, and the journal then
    // starts some records before 40, at a size whose partials had been collected (published,
    // but beyond the budget of a 40-entry log): the flush wrote them back first.
    const acked = await appendThenKill(70, 1024, 64 * 1024, [40]);
    expect(acked).toEqual(Array.from({ length: 70 }, (_, i) => i));
    const before = du(paths.tilesDir).partials;
    const lost = await simulatePowerLoss(paths, () => 0); // every file the journal covers is gone
    expect(lost!.from).toBeGreaterThan(0);
    expect(lost!.from).toBeLessThan(40);
    expect(before).toContain(`tile/entries/000.p/${lost!.from}`);

    const log = await Log.open(paths);
    expect(log.treeSize).toBe(70);
    const { entries } = await log.readEntries(0, 70);
    expect(entries.map((e) => Buffer.from(e))).toEqual(Array.from({ length: 70 }, (_, i) => entryOf(i, 1024)));
    expect((await audit(paths, log)).treeSize).toBe(70);
    await log.settled();
    // Nothing the collector had deleted came back: what is on disk was there before the crash,
    // or is the newest tree's.
    const newest = partialTiles(70).map((t) => formatTilePath(t));
    for (const rel of du(paths.tilesDir).partials) expect(before.includes(rel) || newest.includes(rel), rel).toBe(true);
    expect(ratio(paths.tilesDir, 70 * 1024, 70)).toBeLessThanOrEqual(3);
    await log.append(entryOf(70, 1024));
    await log.close();
  }, 60_000);
});
