/**
 * The engine's write-ahead journal (src/log/sequencer.ts, flush.ts, replay.ts): batches are
 * durable through their journal record while their files wait for a bulk flush. A machine crash
 * in that window (simulated: the process is SIGKILLed, then every file not yet flushed is
 * deleted, emptied or zeroed) must lose nothing acknowledged and leave every published
 * checkpoint servable.
 */
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, isTlogError } from '../../src/errors.js';
import { formatBatchRecord, parseBatchRecord } from '../../src/log/journal-record.js';
import { Log } from '../../src/log/log.js';
import { logPaths, type DataRoots, type LogPaths } from '../../src/tile-store/paths.js';
import { journalDir } from '../../src/log/replay.js';
import { parseCheckpoint } from '../../src/note/checkpoint.js';
import { parseNote } from '../../src/note/note.js';
import { frameRecord, readJournal } from '../../src/storage/journal.js';
import { TILE_WIDTH, changedTiles, formatTilePath } from '../../src/tiles/layout.js';
import { prng } from '../prng.mjs';
import { rollBackCommitSlots, simulatePowerLoss } from './power-loss.js';
import { sha256 } from '../../src/merkle/hash.js';
import { rejectionOf } from '../helpers/errors.js';
import { removeDir, tempDataRoots } from '../helpers/temp-dirs.js';
import { auditLogFiles, runChildUntilDone } from './helpers.js';

const ORIGIN = 'example.com/journal-test';
const TENANT = 'jt';
let dir: string;
let roots: DataRoots;
let paths: LogPaths;

beforeEach(() => {
  ({ dir, roots } = tempDataRoots('tlog-journal-log-'));
  paths = logPaths(roots, TENANT);
});
afterEach(() => removeDir(dir));

const segments = () => (existsSync(journalDir(paths)) ? readdirSync(journalDir(paths)).filter((n) => /^[0-9]+$/.test(n)) : []);

/** Runs journal-child.mjs until it has acknowledged `batches` batches, then SIGKILLs it. */
async function appendThenKill(batches: number): Promise<{ index: number; count: number }[]> {
  const out = await runChildUntilDone('journal-child.mjs', roots, TENANT, [String(batches)]);
  return [...out.matchAll(/^acked (\d+) (\d+)$/gm)].map((m) => ({ index: Number(m[1]), count: Number(m[2]) }));
}

/**
 * Every tile and bundle every checkpoint in the history implies is served by the log (from its
 * own file or, for a partial the log collected, as a wider file's prefix), and those of the
 * newest tree are on disk. Returns the number of checkpoints.
 */
async function checkServable(p: LogPaths, log: Log): Promise<number> {
  let sizes = 0;
  for (const name of readdirSync(path.join(p.historyDir, 'log'), { recursive: true }) as string[]) {
    const file = path.join(p.historyDir, 'log', name);
    if (!statSync(file).isFile()) continue;
    const size = parseCheckpoint(parseNote(readFileSync(file, 'utf8')).text).treeSize;
    sizes++;
    for (const t of changedTiles(0, size)) {
      const data = await log.readTileFile(t);
      expect(data, `${formatTilePath(t)} implied by the checkpoint of size ${size}`).not.toBeNull();
      if (t.level >= 0) expect(data!.length).toBe(t.width * 32);
    }
  }
  for (const t of changedTiles(0, log.treeSize)) expect(existsSync(path.join(p.tilesDir, formatTilePath(t))), formatTilePath(t)).toBe(true);
  return sizes;
}

const audit = (p: LogPaths, log: Log) => auditLogFiles(log, p, ORIGIN);

describe('journal and power loss', () => {
  it('a clean close flushes everything and leaves no journal segment', async () => {
    const log = await Log.init(paths, ORIGIN, { flushIntervalMs: 1e9 });
    await Promise.all(log.appendMany(Array.from({ length: 600 }, (_, i) => Buffer.from(`e${i}`))));
    expect(segments().length).toBeGreaterThan(0);
    expect((await readJournal(journalDir(paths))).length).toBeGreaterThan(0);
    await log.close();
    expect(await readJournal(journalDir(paths))).toHaveLength(0);
  });

  it('the background flush releases the segments it covers while batches go on', async () => {
    const log = await Log.init(paths, ORIGIN, { flushIntervalMs: 20, journal: { segmentBytes: 8192 } });
    for (let b = 0; b < 40; b++) await Promise.all(log.appendMany(Array.from({ length: 50 }, (_, i) => Buffer.from(`b${b} e${i} `.padEnd(100, '.')))));
    const most = segments().length;
    await new Promise((r) => setTimeout(r, 200));
    await log.flush();
    // ~100 KB of records went through 8 KB segments; only the newest one(s) remain.
    const records = await readJournal(journalDir(paths));
    expect(records.length).toBeLessThan(40);
    expect(segments().length).toBeLessThanOrEqual(Math.max(most, 3));
    // What is left starts on a batch boundary and chains to the tree.
    const batches = records.map((r) => parseBatchRecord(r.payload));
    for (let k = 1; k < batches.length; k++) expect(batches[k]!.start).toBe(batches[k - 1]!.start + batches[k - 1]!.entries.length);
    expect(batches.at(-1)!.start + batches.at(-1)!.entries.length).toBe(log.treeSize);
    await log.close();
  });

  it('after a kill and the loss of every unflushed file, open rebuilds them all from the journal', async () => {
    await (await Log.init(paths, ORIGIN)).close();
    const acked = await appendThenKill(10);
    const total = acked.reduce((a, b) => a + b.count, 0);
    expect(total).toBe(1 + 37 + 255 + 300 + 1 + 37 + 255 + 300 + 1 + 37);
    const lost = await simulatePowerLoss(paths, () => 0); // delete every one of them
    expect(lost!.from).toBe(0);
    expect(lost!.deleted).toBeGreaterThan(20);
    expect(existsSync(path.join(paths.tilesDir, 'checkpoint'))).toBe(false);

    const warnings: object[] = [];
    const log = await Log.open(paths, { logger: { info() {}, warn: (o) => warnings.push(o), error() {} } });
    expect(log.treeSize).toBe(total);
    expect(warnings.some((w) => 'repaired' in w)).toBe(true);
    // Exact bytes of every acknowledged entry.
    const { entries } = await log.readEntries(0, total);
    expect(entries.map((e) => Buffer.from(e).toString())).toEqual(Array.from({ length: total }, (_, i) => `journal child entry ${i}`));
    // Every checkpoint ever published is back in the history, and servable.
    expect(await checkServable(paths, log)).toBe(11); // the empty tree and ten batches
    const report = await audit(paths, log);
    expect(report.treeSize).toBe(total);
    // Everything is durable again: the old journal is gone.
    expect(await readJournal(journalDir(paths))).toHaveLength(0);
    await log.append(Buffer.from('after the crash'));
    await log.close();
  });

  it('emptied and zeroed files (a torn checkpoint included) are rebuilt too', async () => {
    await (await Log.init(paths, ORIGIN)).close();
    const acked = await appendThenKill(7);
    const total = acked.reduce((a, b) => a + b.count, 0);
    const rand = prng(42);
    // Half emptied, half zeroed; the checkpoint file zeroed for sure.
    await simulatePowerLoss(paths, () => 0.5 + rand() * 0.5);
    writeFileSync(path.join(paths.tilesDir, 'checkpoint'), Buffer.alloc(100));
    const log = await Log.open(paths);
    expect(log.treeSize).toBe(total);
    expect(readFileSync(path.join(paths.tilesDir, 'checkpoint'), 'utf8')).toBe(log.committed.note);
    expect(await checkServable(paths, log)).toBe(8);
    expect((await audit(paths, log)).treeSize).toBe(total);
    await log.close();
  });

  it('a killed process whose files all survived recovers without rewriting them', async () => {
    await (await Log.init(paths, ORIGIN)).close();
    const acked = await appendThenKill(4);
    const before = readFileSync(path.join(paths.tilesDir, formatTilePath({ level: 0, index: 0, width: TILE_WIDTH })));
    const warnings: object[] = [];
    const log = await Log.open(paths, { logger: { info() {}, warn: (o) => warnings.push(o), error() {} } });
    expect(log.treeSize).toBe(acked.reduce((a, b) => a + b.count, 0));
    expect(warnings.filter((w) => 'repaired' in w)).toHaveLength(0);
    expect(readFileSync(path.join(paths.tilesDir, formatTilePath({ level: 0, index: 0, width: TILE_WIDTH }))).equals(before)).toBe(true);
    expect(await readJournal(journalDir(paths))).toHaveLength(0);
    await log.close();
  });

  it('adopts journaled batches beyond the commit point (signed, never acknowledged)', async () => {
    await (await Log.init(paths, ORIGIN)).close();
    // The commit point as of size 0, put back after the child committed three batches: as if
    // it had died after each record's fdatasync but before the commit point's msync.
    const indexFile = path.join(paths.stateDir, 'index.idx');
    const atZero = readFileSync(indexFile);
    const acked = await appendThenKill(3);
    const total = acked.reduce((a, b) => a + b.count, 0);
    const notes = (await readJournal(journalDir(paths))).map((r) => parseBatchRecord(r.payload).note);
    writeFileSync(indexFile, atZero);
    const warnings: object[] = [];
    const log = await Log.open(paths, { logger: { info() {}, warn: (o) => warnings.push(o), error() {} } });
    expect(log.treeSize).toBe(total);
    // The very note the journal holds: nothing was signed again.
    expect(log.committed.note).toBe(notes.at(-1));
    expect(warnings.some((w) => 'from' in w && (w as { from: number }).from === 0)).toBe(true);
    expect((await audit(paths, log)).treeSize).toBe(total);
    // Dedup knows the adopted entries.
    expect((await log.append(Buffer.from('journal child entry 5'))).index).toBe(5);
    await log.close();
  });

  it('open syncs the commit slot a killed writer left in the page cache before it drops the replayed journal', async () => {
    await (await Log.init(paths, ORIGIN)).close();
    const acked = await appendThenKill(4);
    const total = acked.reduce((a, b) => a + b.count, 0);
    expect((await readJournal(journalDir(paths))).length).toBe(4);
    const log = await Log.open(paths);
    expect(log.treeSize).toBe(total);
    // The journal is gone, so the commit point must be on disk: a power loss now must not
    // bring back an older one behind the files (recovery would delete acknowledged entries).
    expect(await readJournal(journalDir(paths))).toHaveLength(0);
    const index = (log as unknown as { index: { durableCommitPoint: { treeSize: number } | null } }).index;
    expect(index.durableCommitPoint?.treeSize).toBe(total);
    await log.close();
  });

  it('a commit slot a power loss took back to where the journal starts reopens to the last record, nothing acknowledged lost', async () => {
    await (await Log.init(paths, ORIGIN)).close();
    // Ten batches, a flush after the sixth (it lets the journal go up to there), records in
    // segments of their own: the journal then starts at a batch boundary past zero.
    const out = await runChildUntilDone('journal-child.mjs', roots, TENANT, ['10', '6', '4096']);
    const acked = [...out.matchAll(/^acked (\d+) (\d+)$/gm)].map((m) => Number(m[2]));
    const total = acked.reduce((a, b) => a + b, 0);
    const notes = new Map([...out.matchAll(/^checkpoint (\d+) (\S+)$/gm)].map((m) => [Number(m[1]), Buffer.from(m[2]!, 'base64').toString('utf8')]));
    const [, durableSize, durableSeq] = /^durable (\d+) (\d+)$/m.exec(out)!.map(Number) as [number, number, number];
    const records = (await readJournal(journalDir(paths))).map((r) => parseBatchRecord(r.payload));
    const first = records[0]!.start;
    expect(first).toBeGreaterThan(0);
    // The flush synced the commit slot before it let the journal go: on disk, the slot is never
    // behind where the journal starts.
    expect(durableSize).toBeGreaterThanOrEqual(first);
    const slotAt = (size: number) => {
      const c = parseCheckpoint(parseNote(notes.get(size)!).text);
      return { treeSize: size, rootHash: c.rootHash, checkpointHash: sha256(Buffer.from(notes.get(size)!, 'utf8')) };
    };
    const indexFile = path.join(paths.stateDir, 'index.idx');
    const sizes = [...notes.keys()].sort((a, b) => a - b);
    // One batch further back than the journal reaches: refused, and nothing is changed.
    const before = sizes[sizes.indexOf(first) - 1]!;
    rollBackCommitSlots(indexFile, slotAt(before), durableSeq);
    await simulatePowerLoss(paths, prng(7));
    const refused = await rejectionOf(Log.open(paths));
    expect(isTlogError(refused) && refused.code).toBe(ErrorCode.corrupt);
    expect((refused as Error).message).toMatch(`starts at ${first}, beyond the commit point (size ${before})`);
    expect((await readJournal(journalDir(paths))).length).toBe(records.length);
    // Exactly where the journal starts (the oldest slot the flush allows on disk): every record
    // is adopted, and every acknowledged entry is there.
    rollBackCommitSlots(indexFile, slotAt(first), durableSeq);
    const log = await Log.open(paths, { logger: { info() {}, warn() {}, error() {} } });
    expect(log.treeSize).toBe(total);
    expect(log.committed.note).toBe(records.at(-1)!.note);
    const { entries } = await log.readEntries(0, total);
    expect(entries.map((e) => Buffer.from(e).toString())).toEqual(Array.from({ length: total }, (_, i) => `journal child entry ${i}`));
    expect((await audit(paths, log)).treeSize).toBe(total);
    // Dedup knows every entry again.
    expect((await log.append(Buffer.from(`journal child entry ${total - 1}`))).index).toBe(total - 1);
    await log.close();
  });

  it('refuses to start when a journal record was altered (even with a valid frame)', async () => {
    await (await Log.init(paths, ORIGIN)).close();
    await appendThenKill(3);
    // Rewrite the first record with one entry changed, framed correctly.
    const seg = path.join(
      journalDir(paths),
      readdirSync(journalDir(paths))
        .filter((n) => /^[0-9]+$/.test(n))
        .sort((a, b) => Number(a) - Number(b))[0]!,
    );
    const bytes = readFileSync(seg);
    const [first] = await readJournal(journalDir(paths));
    const rec = parseBatchRecord(first!.payload);
    const forged = frameRecord(
      formatBatchRecord(
        rec.start,
        rec.entries.map((e, i) => ({ entry: i === 0 ? Buffer.from('forged entry') : e })),
        rec.note,
      ),
    );
    const original = frameRecord(first!.payload);
    expect(forged.length).not.toBe(original.length); // a different length: rebuild the segment around it
    const rest = bytes.subarray(original.length);
    writeFileSync(seg, Buffer.concat([forged, rest.subarray(0, Math.max(0, rest.length - (forged.length - original.length)))]));
    const e = await Log.open(paths).catch((x: unknown) => x);
    expect(isTlogError(e, ErrorCode.corrupt), String(e)).toBe(true);
    expect((e as Error).message).toMatch(/journal of jt: the record at 0 does not hash to its own checkpoint/);
  });

  it('a journal write that fails stops the log; a restart recovers to the commit point', async () => {
    const log0 = await Log.init(paths, ORIGIN);
    await Promise.all(log0.appendMany(Array.from({ length: 100 }, (_, i) => Buffer.from(`e${i}`))));
    await log0.close();
    let fail = false;
    const log = await Log.open(paths, {
      journal: {
        beforeAppend: () => {
          if (fail) throw Object.assign(new Error('i/o error'), { code: 'EIO' });
        },
      },
    });
    fail = true;
    const settled = await Promise.allSettled(log.appendMany([Buffer.from('x1'), Buffer.from('x2')]));
    expect(settled.every((s) => s.status === 'rejected')).toBe(true);
    expect(String((settled[0] as PromiseRejectedResult).reason.message)).toMatch(/append to journal .*EIO/);
    await expect(log.append(Buffer.from('x3'))).rejects.toThrow(/stopped/);
    expect(log.treeSize).toBe(100);
    await log.close();
    const again = await Log.open(paths);
    expect(again.treeSize).toBe(100);
    expect((await again.append(Buffer.from('x1'))).index).toBe(100);
    expect((await audit(paths, again)).treeSize).toBe(101);
    await again.close();
  });
});
