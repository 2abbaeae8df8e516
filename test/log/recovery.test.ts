/**
 * Recovery on Log.open (src/log/open.ts, src/tile-store/discard-beyond.ts), on states
 * fabricated the way a crash or an operator's mistake leaves them: by restoring an older
 * private state directory or `checkpoint` file, by copying files between two logs that share
 * their keys, by tampering with tiles. The log must refuse to start whenever the published
 * state disagrees with its commit point (DESIGN.md: "refuse to start when the published state
 * disagrees with it"), and must repair the states a crash can really leave: uncommitted tiles
 * beyond the commit point (deleted) and a commit point ahead of the published checkpoint
 * (republished).
 *
 * An older commit point is fabricated by restoring a copy of the whole private state directory
 * (keys, config, the hot index holding the commit point, the notes), which does not depend on
 * how the commit point is stored. Only the lost and damaged commit point cases touch the
 * index file and the notes themselves.
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, isTlogError, type TlogError } from '../../src/errors.js';
import { notePath, listNoteSizes } from '../../src/log/commit-point.js';
import { Log, historyPath, type Logger, type LogOptions } from '../../src/log/log.js';
import { RECOVERY_SPAN_FILE } from '../../src/log/recovery-span.js';
import { indexPath } from '../../src/log/open-index.js';
import { logPaths, type LogPaths } from '../../src/tile-store/paths.js';
import { ENTRIES_LEVEL, TILE_WIDTH, formatTilePath, partialTiles } from '../../src/tiles/layout.js';
import { leafHash } from '../../src/merkle/hash.js';
import { Edge } from '../../src/log/edge.js';
import { formatBatchRecord } from '../../src/log/journal-record.js';
import { loadLogKeys } from '../../src/log/keys.js';
import { journalDir } from '../../src/log/replay.js';
import { TileReader } from '../../src/tile-store/tile-reader.js';
import { signTree } from '../../src/log/checkpoint-signing.js';
import { frameRecord } from '../../src/storage/journal.js';
import { parseCheckpoint } from '../../src/note/checkpoint.js';
import { parseNote } from '../../src/note/note.js';
import { rejectionOf } from '../helpers/errors.js';
import { dataRootsIn, makeTempDir, removeDir } from '../helpers/temp-dirs.js';
import { flipBits } from '../helpers/file-bytes.js';
import { auditLogFiles } from './helpers.js';

const ORIGIN = 'example.com/recovery-test';
const TENANT = 'rec';

let dir: string;
let paths: LogPaths;

beforeEach(() => {
  dir = makeTempDir('tlog-recovery-');
  paths = logPaths(dataRootsIn(path.join(dir, 'a')), TENANT);
});
afterEach(() => removeDir(dir));

const entries = (from: number, n: number, tag = 'e') => Array.from({ length: n }, (_, i) => Buffer.from(`${tag}-${from + i}`));

/**
 * A copy of the private state directory: the commit point as of now. With it, the partial tiles
 * the published tree implies: a batch that crashed before its commit never collected them
 * (tile-store/partials.ts), so restoring the state puts them back too.
 */
function saveState(p: LogPaths): string {
  const snap = mkdtempSync(path.join(dir, 'state-snapshot-'));
  cpSync(p.stateDir, path.join(snap, 'state'), { recursive: true });
  const size = parseCheckpoint(parseNote(read(checkpointFile(p))).text).treeSize;
  for (const t of partialTiles(size)) {
    const rel = formatTilePath(t);
    if (existsSync(path.join(p.tilesDir, rel))) cpSync(path.join(p.tilesDir, rel), path.join(snap, 'partials', rel));
  }
  return snap;
}

/** Puts a saved private state back: the commit point goes back to when it was saved. */
function restoreState(p: LogPaths, snap: string): void {
  rmSync(p.stateDir, { recursive: true, force: true });
  cpSync(path.join(snap, 'state'), p.stateDir, { recursive: true });
  if (existsSync(path.join(snap, 'partials'))) cpSync(path.join(snap, 'partials'), p.tilesDir, { recursive: true });
}
const checkpointFile = (p: LogPaths) => path.join(p.tilesDir, 'checkpoint');
const tileFile = (p: LogPaths, level: number, index: number, width: number) => path.join(p.tilesDir, formatTilePath({ level, index, width }));
const read = (f: string) => readFileSync(f, 'utf8');

/**
 * Waits until the engine has pruned the notes older than `size`: it does so in the background
 * after a commit, and may still be at it when close() resolves; a state copied or restored
 * meanwhile would lose a note.
 */
async function notesPruned(p: LogPaths, size: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if ((await listNoteSizes(p.stateDir)).every((s) => s >= size)) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`notes older than ${size} still there after 2 s`);
}

/** A log with `n` entries, closed. */
async function logWith(p: LogPaths, n: number, tag = 'e', opts: LogOptions = {}): Promise<void> {
  const log = await Log.init(p, ORIGIN, opts);
  if (n > 0) await Promise.all(log.appendMany(entries(0, n, tag)));
  await log.close();
  await notesPruned(p, n);
}

/** Appends `n` more entries to the closed log at p. */
async function appendTo(p: LogPaths, n: number, tag = 'e'): Promise<void> {
  const log = await Log.open(p);
  const size = log.treeSize + n;
  await Promise.all(log.appendMany(entries(log.treeSize, n, tag)));
  await log.close();
  await notesPruned(p, size);
}

/** Log.open must fail with a corrupt_state TlogError whose message matches. */
async function expectRefusal(p: LogPaths, message: RegExp): Promise<void> {
  const err = await rejectionOf(Log.open(p).then((log) => log.close()));
  expect(isTlogError(err, ErrorCode.corrupt), String(err)).toBe(true);
  expect((err as Error).message).toMatch(message);
}

/** Every file under dir (relative paths), to show a refusal touched nothing. */
function snapshot(d: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const n of readdirSync(d, { recursive: true }) as string[]) {
    const f = path.join(d, n);
    if (statSync(f).isFile()) out.set(n, readFileSync(f).toString('base64'));
  }
  return out;
}

/** A full audit of the published log, with every history checkpoint. */
const audit = (log: Log, p: LogPaths = paths) => auditLogFiles(log, p, ORIGIN);

describe('Log.open refuses a published state that disagrees with the commit point', () => {
  it('refuses a published checkpoint ahead of the commit point, and touches nothing', async () => {
    await logWith(paths, 3);
    const state3 = saveState(paths);
    await appendTo(paths, 2);
    const state5 = saveState(paths);
    // The commit point went back (a restored backup of the private state, or a lost write).
    restoreState(paths, state3);
    const before = snapshot(dir);
    await expectRefusal(paths, /published checkpoint \(size 5\) is ahead of the commit point \(size 3\): refusing to start/);
    // Nothing was deleted on the way: the tiles of size 5 are all still there.
    expect(snapshot(dir)).toEqual(before);
    expect(existsSync(tileFile(paths, 0, 0, 5))).toBe(true);

    // Putting the right commit point back is enough.
    restoreState(paths, state5);
    const log = await Log.open(paths);
    expect(log.treeSize).toBe(5);
    expect((await audit(log)).treeSize).toBe(5);
    await log.close();
  });

  it('refuses a published checkpoint ahead of the commit point by exactly one entry', async () => {
    await logWith(paths, 3);
    const state3 = saveState(paths);
    await appendTo(paths, 1);
    restoreState(paths, state3);
    const before = snapshot(dir);
    await expectRefusal(paths, /published checkpoint \(size 4\) is ahead of the commit point \(size 3\): refusing to start/);
    expect(snapshot(dir)).toEqual(before);
    // At the commit point itself (one entry fewer) the same log starts.
    writeFileSync(checkpointFile(paths), read(historyPath(paths.historyDir, 3)));
    const log = await Log.open(paths);
    expect(log.treeSize).toBe(3);
    await log.close();
  });

  it('refuses a published checkpoint of the same size with another root (same keys)', async () => {
    // Two logs with the same keys: a copy of the first right after init.
    const a = paths;
    const log = await Log.init(a, ORIGIN);
    await log.close();
    cpSync(path.join(dir, 'a'), path.join(dir, 'b'), { recursive: true });
    const b = logPaths(dataRootsIn(path.join(dir, 'b')), TENANT);
    await appendTo(a, 3, 'a');
    await appendTo(b, 3, 'b');
    expect(read(checkpointFile(a))).not.toBe(read(checkpointFile(b)));
    // b's checkpoint is signed by the same keys, for the same size, with b's root.
    writeFileSync(checkpointFile(a), read(checkpointFile(b)));
    await expectRefusal(a, /published checkpoint contradicts the commit point at size 3: refusing to start/);
  });

  it('refuses a published checkpoint not signed by the log', async () => {
    await logWith(paths, 2);
    // Same text, another root: the signatures no longer verify.
    const lines = read(checkpointFile(paths)).split('\n');
    writeFileSync(checkpointFile(paths), [lines[0], lines[1], Buffer.alloc(32, 7).toString('base64'), ...lines.slice(3)].join('\n'));
    await expectRefusal(paths, /published checkpoint of rec is unreadable or not signed by this log/);
    // A log with other keys (another init at the same origin) does not verify either.
    const other = logPaths(dataRootsIn(path.join(dir, 'other')), TENANT);
    await logWith(other, 2);
    writeFileSync(checkpointFile(paths), read(checkpointFile(other)));
    await expectRefusal(paths, /published checkpoint of rec is unreadable or not signed by this log/);
  });
});

describe('Log.open and a lost or damaged commit point', () => {
  // The commit point is (size, root, note hash) in the hot index's commit slots, naming the
  // signed note kept in <state>/notes/<size>.

  it('refuses when the note the commit point names is missing', async () => {
    await logWith(paths, 4);
    rmSync(notePath(paths.stateDir, 4));
    await expectRefusal(paths, /the note of the commit point \(size 4\) is missing/);
  });

  it('refuses a note that is not the one the commit point names: tampered, or signed for another root', async () => {
    // Two logs with the same keys, as above.
    const log = await Log.init(paths, ORIGIN);
    await log.close();
    cpSync(path.join(dir, 'a'), path.join(dir, 'b'), { recursive: true });
    const b = logPaths(dataRootsIn(path.join(dir, 'b')), TENANT);
    await appendTo(paths, 3, 'a');
    await appendTo(b, 3, 'b');
    const good = read(notePath(paths.stateDir, 3));
    writeFileSync(notePath(paths.stateDir, 3), read(notePath(b.stateDir, 3)));
    await expectRefusal(paths, /notes\/3 does not match the commit point \(size 3\)/);
    writeFileSync(notePath(paths.stateDir, 3), good.replace(/\n\n/, '\nextra line\n\n'));
    await expectRefusal(paths, /notes\/3 does not match the commit point \(size 3\)/);
    writeFileSync(notePath(paths.stateDir, 3), good);
    const reopened = await Log.open(paths);
    expect(reopened.treeSize).toBe(3);
    await reopened.close();
  });

  it('rebuilds a missing index from the tiles, at the commit point its newest note gives', async () => {
    await logWith(paths, 300);
    rmSync(indexPath(paths));
    const warned: object[] = [];
    const log = await Log.open(paths, { logger: { info() {}, warn: (o) => warned.push(o), error() {} } });
    expect(log.treeSize).toBe(300);
    expect(warned).toContainEqual(expect.objectContaining({ treeSize: 300, reason: 'the index file is missing' }));
    // The rebuilt index still knows every entry.
    const again = await log.append(Buffer.from('e-123'));
    expect(again).toMatchObject({ index: 123, duplicate: true });
    expect((await audit(log)).treeSize).toBe(300);
    await log.close();
  });

  it('falls back on the published checkpoint when the index and the notes are both gone', async () => {
    await logWith(paths, 20);
    rmSync(indexPath(paths));
    rmSync(path.join(paths.stateDir, 'notes'), { recursive: true });
    const log = await Log.open(paths);
    expect(log.treeSize).toBe(20);
    expect(log.committed.note).toBe(read(checkpointFile(paths)));
    await log.append(Buffer.from('next'));
    expect((await audit(log)).treeSize).toBe(21);
    await log.close();
  });

  it('refuses when the index, the notes and the published checkpoint are all gone', async () => {
    await logWith(paths, 4);
    rmSync(indexPath(paths));
    rmSync(path.join(paths.stateDir, 'notes'), { recursive: true });
    rmSync(checkpointFile(paths));
    await expectRefusal(paths, /the index is unusable and no signed note can replace its commit point: refusing to start/);
  });
});

describe('Log.open refuses tiles that do not match the commit point', () => {
  // 300 entries: full tile 0/000 and bundle 000; partial 0/001.p/44, entries/001.p/44, 1/000.p/1.
  beforeEach(async () => {
    await logWith(paths, 300);
  });

  it('refuses a tampered partial level-0 tile', async () => {
    flipBits(tileFile(paths, 0, 1, 44), -1);
    await expectRefusal(paths, /tiles of rec do not hash to the committed root at size 300: refusing to start/);
  });

  it('refuses a tampered level-1 tile', async () => {
    flipBits(tileFile(paths, 1, 0, 1), -1);
    await expectRefusal(paths, /tiles of rec do not hash to the committed root at size 300: refusing to start/);
  });

  it('refuses a partial tile of the wrong length', async () => {
    const f = tileFile(paths, 0, 1, 44);
    writeFileSync(f, readFileSync(f).subarray(0, 43 * 32));
    await expectRefusal(paths, /tile .* is 1376 bytes, want 1408/);
  });

  it('refuses an edge bundle whose entry does not match its leaf hash', async () => {
    flipBits(tileFile(paths, ENTRIES_LEVEL, 1, 44), -1);
    await expectRefusal(paths, /bundle 1 entry 43 does not match its level-0 tile hash/);
  });

  it('refuses a missing edge tile', async () => {
    rmSync(tileFile(paths, 0, 1, 44));
    const err = await rejectionOf(Log.open(paths).then((l) => l.close()));
    expect(isTlogError(err), String(err)).toBe(true);
    expect((err as Error).message).toMatch(/0\/001\.p\/44/);
  });
});

describe('Log.open repairs what a crash leaves', () => {
  it('deletes full tiles, bundles and partials beyond the commit point left by a crashed batch', async () => {
    await logWith(paths, 10);
    const state10 = saveState(paths);
    const pub10 = read(checkpointFile(paths));
    // A batch 10 -> 300 wrote its tiles, then the process died before moving the commit point:
    // fabricated by appending and putting back the size-10 state and checkpoint. (Such a batch
    // never wrote its history copy: that is written after the commit point moves.)
    await appendTo(paths, 290);
    const note300 = read(notePath(paths.stateDir, 300));
    restoreState(paths, state10);
    writeFileSync(checkpointFile(paths), pub10);
    // The batch's signed note is written with its tiles, so it is there too.
    writeFileSync(notePath(paths.stateDir, 300), note300);
    rmSync(historyPath(paths.historyDir, 300));
    // And a temp file of a write that never got renamed.
    writeFileSync(path.join(paths.tilesDir, 'tile/0/.000.99999.1.tmp'), 'partial write');
    const beyond = [
      tileFile(paths, 0, 0, TILE_WIDTH),
      tileFile(paths, ENTRIES_LEVEL, 0, TILE_WIDTH),
      tileFile(paths, 0, 1, 44),
      tileFile(paths, ENTRIES_LEVEL, 1, 44),
      tileFile(paths, 1, 0, 1),
      path.join(paths.tilesDir, 'tile/0/.000.99999.1.tmp'),
    ];
    for (const f of beyond) expect(existsSync(f), f).toBe(true);

    const warned: object[] = [];
    const logger: Logger = { info() {}, warn: (o) => warned.push(o), error() {} };
    const log = await Log.open(paths, { logger });
    expect(log.treeSize).toBe(10);
    for (const f of beyond) expect(existsSync(f), `${f} should be deleted`).toBe(false);
    // The partial tiles of the committed size stay: the published checkpoint implies them.
    expect(existsSync(tileFile(paths, 0, 0, 10))).toBe(true);
    expect(existsSync(tileFile(paths, ENTRIES_LEVEL, 0, 10))).toBe(true);
    expect(warned).toEqual([expect.objectContaining({ treeSize: 10, removed: beyond.length })]);
    await log.close();

    // The note of the batch that never committed must not become the commit point when the
    // index has to be rebuilt from the notes: its tiles are gone.
    rmSync(indexPath(paths));
    const rebuilt = await Log.open(paths);
    expect(rebuilt.treeSize).toBe(10);
    await rebuilt.close();
    // Other entries now take indexes 10..299: no immutable tile is in the way.
    const log2 = await Log.open(paths);
    const results = await Promise.all(log2.appendMany(entries(10, 290, 'other')));
    expect(results.at(-1)!.treeSize).toBe(300);
    const { entries: got } = await log2.readEntries(250, 10);
    expect(Buffer.from(got[0]!).toString()).toBe('other-250');
    expect((await audit(log2)).treeSize).toBe(300);
    await log2.close();
  });

  it('deletes wider partial tiles of the same tile beyond the commit point, keeping the committed ones', async () => {
    await logWith(paths, 10);
    await appendTo(paths, 5); // published 15: its partials 0/000.p/15 stay
    const state15 = saveState(paths);
    const pub15 = read(checkpointFile(paths));
    await appendTo(paths, 5); // crashed batch 15 -> 20
    restoreState(paths, state15);
    writeFileSync(checkpointFile(paths), pub15);
    rmSync(historyPath(paths.historyDir, 20));

    const log = await Log.open(paths);
    expect(log.treeSize).toBe(15);
    expect(existsSync(tileFile(paths, 0, 0, 20))).toBe(false);
    expect(existsSync(tileFile(paths, ENTRIES_LEVEL, 0, 20))).toBe(false);
    for (const w of [10, 15]) {
      expect(existsSync(tileFile(paths, 0, 0, w))).toBe(true);
      expect(existsSync(tileFile(paths, ENTRIES_LEVEL, 0, w))).toBe(true);
    }
    await Promise.all(log.appendMany(entries(15, 5, 'other')));
    expect(Buffer.from((await log.readEntries(15, 1)).entries[0]!).toString()).toBe('other-15');
    expect((await audit(log)).checkpointsChecked).toBe(4); // sizes 0, 10, 15, 20
    await log.close();
  });

  it('republishes when the commit point is ahead of the published checkpoint (crash between commit and publish)', async () => {
    await logWith(paths, 3);
    const pub3 = read(checkpointFile(paths));
    await appendTo(paths, 2);
    const cp5 = read(checkpointFile(paths));
    // Died after moving the commit point, before writing the history copy and the checkpoint.
    writeFileSync(checkpointFile(paths), pub3);
    rmSync(historyPath(paths.historyDir, 5));

    const log = await Log.open(paths);
    expect(log.treeSize).toBe(5);
    expect(read(checkpointFile(paths))).toBe(cp5);
    expect(read(historyPath(paths.historyDir, 5))).toBe(cp5);
    expect((await audit(log)).checkpointsChecked).toBe(3); // sizes 0, 3, 5
    const r = await log.append(Buffer.from('next'));
    expect(r.index).toBe(5);
    await log.close();
  });

  it('republishes when the history copy was written but the checkpoint was not', async () => {
    await logWith(paths, 3);
    const pub3 = read(checkpointFile(paths));
    await appendTo(paths, 2);
    const cp5 = read(checkpointFile(paths));
    writeFileSync(checkpointFile(paths), pub3);
    // History copy of 5 stays: rewriting it with the same bytes is fine.
    const log = await Log.open(paths);
    expect(read(checkpointFile(paths))).toBe(cp5);
    expect((await audit(log)).treeSize).toBe(5);
    await log.close();
  });

  it('republishes when no checkpoint is published at all but the commit point is there', async () => {
    await logWith(paths, 7);
    const cp7 = read(checkpointFile(paths));
    rmSync(checkpointFile(paths));
    const log = await Log.open(paths);
    expect(read(checkpointFile(paths))).toBe(cp7);
    expect((await audit(log)).treeSize).toBe(7);
    await log.close();
  });
});

describe('the recovery scan reaches pipeline depth x batch entries beyond the commit point', () => {
  // A crashed run had up to `pipelineDepth` batches of up to `maxBatch` entries in flight, each
  // with its tiles written before its commit: recovery must look exactly that far.
  it('deletes what a batch ending at commit point + depth x batch wrote, and nothing a longer span would', async () => {
    // Every run so far (this one) used depth 2 x batch 256.
    await logWith(paths, 256, 'e', { pipelineDepth: 2, maxBatch: 256 });
    const plant = (level: number, index: number, width: number) => {
      const f = tileFile(paths, level, index, width);
      mkdirSync(path.dirname(f), { recursive: true });
      writeFileSync(f, Buffer.alloc(level === ENTRIES_LEVEL ? 100 : width * 32, 7));
      return f;
    };
    // Depth 2 x batch 256 = 512 entries past the commit point (256): the last of them is entry
    // 767, in bundle 2 and level-0 tile 2 (full at size 768), and level-1 tile 0 (width 3).
    const within = [plant(ENTRIES_LEVEL, 2, TILE_WIDTH), plant(0, 2, TILE_WIDTH), plant(0, 1, TILE_WIDTH), plant(1, 0, 3), plant(1, 0, 2)];
    // Entry 768 is one past that span: only a run with a longer one could have written it.
    const beyond = [plant(ENTRIES_LEVEL, 3, 1), plant(0, 3, 1)];
    const warned: object[] = [];
    const logger: Logger = { info() {}, warn: (o) => warned.push(o), error() {} };
    const log = await Log.open(paths, { pipelineDepth: 2, maxBatch: 256, logger });
    expect(log.recoverySpan).toBe(512);
    await log.close();
    for (const f of within) expect(existsSync(f), `${f} should be deleted`).toBe(false);
    for (const f of beyond) expect(existsSync(f), `${f} is beyond the span and stays`).toBe(true);
    expect(warned).toContainEqual(expect.objectContaining({ treeSize: 256, removed: within.length }));
    // Depth 3 reaches entry 1023: now they go too.
    const log3 = await Log.open(paths, { pipelineDepth: 3, maxBatch: 256 });
    expect(log3.recoverySpan).toBe(768);
    for (const f of beyond) expect(existsSync(f), `${f} should be deleted`).toBe(false);
    await log3.close();
    // The widest settings: 2 batches of 65536, past the one batch of 65536 the scan used to
    // stop at. Entries up to 256 + 131072 = 513 x 256: bundle 512 is the last one written.
    const far = [plant(ENTRIES_LEVEL, 512, TILE_WIDTH), plant(0, 512, TILE_WIDTH)];
    const farBeyond = [plant(ENTRIES_LEVEL, 513, 1)];
    const wide = await Log.open(paths, { pipelineDepth: 2, maxBatch: 65536 });
    expect(wide.recoverySpan).toBe(131072);
    for (const f of far) expect(existsSync(f), `${f} should be deleted`).toBe(false);
    for (const f of farBeyond) expect(existsSync(f), `${f} is beyond the span and stays`).toBe(true);
    rmSync(farBeyond[0]!);
    // The log goes on over the cleaned paths.
    await Promise.all(wide.appendMany(entries(256, 600, 'next')));
    expect((await audit(wide)).treeSize).toBe(856);
    await wide.close();
    expect(read(path.join(paths.stateDir, RECOVERY_SPAN_FILE))).toBe('131072\n');
    // A restart with far smaller settings (depth 1 x batch 16) after a run with the wide ones:
    // it scans as far as that run could have written (856 + 131072), not its own 16 entries.
    const left = [plant(ENTRIES_LEVEL, 400, TILE_WIDTH), plant(0, 515, 7)];
    const stillBeyond = [plant(ENTRIES_LEVEL, 516, 1)];
    const small = await Log.open(paths, { pipelineDepth: 1, maxBatch: 16 });
    expect(small.recoverySpan).toBe(16);
    for (const f of left) expect(existsSync(f), `${f} should be deleted`).toBe(false);
    for (const f of stillBeyond) expect(existsSync(f), `${f} is beyond the widest span and stays`).toBe(true);
    await small.close();
    // Never narrowed.
    expect(read(path.join(paths.stateDir, RECOVERY_SPAN_FILE))).toBe('131072\n');
  });

  it('refuses to open a log whose recorded recovery span is not a positive canonical decimal and a newline, changing nothing', async () => {
    await logWith(paths, 3);
    const file = path.join(paths.stateDir, RECOVERY_SPAN_FILE);
    for (const bad of ['0\n', '12', '012\n', '-5\n', '1e3\n', '\n', '49152\n\n']) {
      writeFileSync(file, bad);
      const e = await rejectionOf<TlogError>(Log.open(paths));
      expect(e.code, JSON.stringify(bad)).toBe(ErrorCode.corrupt);
      expect(e.message).toContain(`${file}: want a positive decimal number and a newline`);
      expect(read(file)).toBe(bad);
    }
    writeFileSync(file, '1\n');
    const log = await Log.open(paths);
    expect(read(file)).toBe(`${log.recoverySpan}\n`);
    await log.close();
  });
});

describe('Log.open refuses a journal that does not fit the tiles or the commit point (replay.ts)', () => {
  // A log of 5 entries committed in two batches (3, then 2), closed cleanly: its journal is
  // empty and the partial tiles of sizes 3 and 5 are on disk. Each test then writes a journal
  // segment as a crash would have left it, with records made from the log's own keys, and
  // checks the refusal at its exact boundary: the record one step off is refused and changes
  // nothing; the record just right is replayed.
  beforeEach(async () => {
    await logWith(paths, 3);
    await appendTo(paths, 2);
  });

  /** A journal record of `batch` at `start`, signed by the keys in `keysOf` (this log's by default). */
  async function record(start: number, batch: Buffer[], opts: { note?: string; keysOf?: LogPaths } = {}): Promise<Uint8Array> {
    let note = opts.note;
    if (note === undefined) {
      const root = Edge.load(new TileReader(paths.tilesDir), start).extend(
        batch,
        batch.map((e) => leafHash(e)),
      ).rootHash;
      note = signTree(ORIGIN, start + batch.length, root, await loadLogKeys((opts.keysOf ?? paths).stateDir, ORIGIN));
    }
    return formatBatchRecord(
      start,
      batch.map((entry) => ({ entry })),
      note,
    );
  }

  /** Replaces the journal with one segment holding these records, as a crashed writer leaves it. */
  function writeJournal(records: Uint8Array[]): void {
    rmSync(journalDir(paths), { recursive: true, force: true });
    mkdirSync(journalDir(paths), { recursive: true });
    writeFileSync(path.join(journalDir(paths), '0'), Buffer.concat(records.map((r) => frameRecord(r))));
  }

  /** Log.open refuses with `message` and leaves every file as it was. */
  async function refusesUntouched(message: RegExp): Promise<void> {
    const before = snapshot(dir);
    await expectRefusal(paths, message);
    expect(snapshot(dir)).toEqual(before);
  }

  const note5 = () => read(notePath(paths.stateDir, 5));
  const ours = (from: number, n: number) => entries(from, n);

  it('refuses a journal that starts beyond the commit point; one starting at it is adopted', async () => {
    writeJournal([await record(6, entries(6, 1, 'x'), { note: note5() })]);
    await refusesUntouched(/journal of rec starts at 6, beyond the commit point \(size 5\)/);
    writeJournal([await record(5, entries(5, 1, 'x'))]);
    const log = await Log.open(paths);
    expect(log.treeSize).toBe(6);
    expect((await audit(log)).treeSize).toBe(6);
    await log.close();
  });

  it('refuses a journal whose first record starts where the tiles are unreadable; with them it replays', async () => {
    writeJournal([await record(3, ours(3, 2), { note: note5() })]);
    // The tree of size 3 comes from 0/000.p/3, or from the prefix of a wider one (the log
    // collects superseded partials): both gone, it cannot be read.
    const tile3 = tileFile(paths, 0, 0, 3);
    const saved = readFileSync(tile3);
    rmSync(tile3);
    rmSync(tileFile(paths, 0, 0, 5));
    await refusesUntouched(/journal of rec starts at 3, but the tiles up to there are unreadable/);
    writeFileSync(tile3, saved);
    const log = await Log.open(paths);
    expect(log.treeSize).toBe(5);
    // The record rebuilt the newest tree's partial.
    expect(existsSync(tileFile(paths, 0, 0, 5))).toBe(true);
    await log.close();
  });

  it('refuses a record that does not start where the tree is (a gap, an overlap); the next size chains', async () => {
    const first = await record(3, ours(3, 2), { note: note5() });
    writeJournal([first, await record(6, entries(6, 1, 'x'), { note: note5() })]);
    await refusesUntouched(/journal of rec: a record starts at 6 where the tree is at 5/);
    writeJournal([first, await record(4, entries(4, 2, 'x'), { note: note5() })]);
    await refusesUntouched(/journal of rec: a record starts at 4 where the tree is at 5/);
    writeJournal([first, await record(5, entries(5, 1, 'x'))]);
    const log = await Log.open(paths);
    expect(log.treeSize).toBe(6);
    await log.close();
  });

  it("refuses a record whose note is signed by another log's keys; its own keys' note is adopted", async () => {
    const other = logPaths(dataRootsIn(path.join(dir, 'other')), TENANT);
    await logWith(other, 0);
    writeJournal([await record(5, entries(5, 1, 'x'), { keysOf: other })]);
    await refusesUntouched(/journal of rec: the note of the record at 5 is not this log's/);
    writeJournal([await record(5, entries(5, 1, 'x'))]);
    const log = await Log.open(paths);
    expect(log.treeSize).toBe(6);
    await log.close();
  });

  it('refuses a record whose entries do not hash to its own checkpoint', async () => {
    // The right note for entries 3 and 4, with entry 4 changed.
    writeJournal([await record(3, [...ours(3, 1), Buffer.from('not e-4')], { note: note5() })]);
    await refusesUntouched(/journal of rec: the record at 3 does not hash to its own checkpoint/);
  });

  it('refuses a record ending at the commit point with another checkpoint, before writing its tiles', async () => {
    // Other entries at 3 and 4, signed by this log: a checkpoint of size 5 that was never committed.
    writeJournal([await record(3, entries(3, 2, 'x'))]);
    await refusesUntouched(/journal of rec: the record at the commit point \(size 5\) holds another checkpoint/);
    writeJournal([await record(3, ours(3, 2), { note: note5() })]);
    const log = await Log.open(paths);
    expect(log.treeSize).toBe(5);
    await log.close();
  });

  it('refuses a record spanning the commit point (none ends there); ending at it and going on is adopted', async () => {
    writeJournal([await record(3, [...ours(3, 2), ...entries(5, 2, 'x')])]);
    await refusesUntouched(/journal of rec: no record ends at the commit point \(size 5\)/);
    writeJournal([await record(3, ours(3, 2), { note: note5() }), await record(5, entries(5, 2, 'x'))]);
    const log = await Log.open(paths);
    expect(log.treeSize).toBe(7);
    expect((await audit(log)).treeSize).toBe(7);
    await log.close();
  });
});
