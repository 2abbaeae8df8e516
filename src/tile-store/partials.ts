/**
 * Which partial tiles and bundles stay on disk, and the collection of the others.
 *
 * Every batch writes the partials of its new tree size, and a partial bundle holds every entry
 * of its bundle so far: appends one at a time would leave 255 partial bundles behind each full
 * one, the disk growing with the square of a tile's fill (256 entries of 60 KB: 2 GB).
 *
 * c2sp.org/tlog-tiles: "Logs MUST serve partial tiles corresponding to tree sizes for which a
 * checkpoint was produced, but MAY delete any partial tile once the corresponding full tile is
 * either available, or has been removed by the pruning criteria". The log serves every partial
 * of every checkpoint it signed (TileReader derives one that is gone from a wider file: it is
 * that file's prefix). On disk, what a plain static server of tiles/ sees, each tile whose full
 * tile is not in place keeps:
 *  - the partials of the newest committed tree (every later one is built from them);
 *  - the partials of the published checkpoint (tiles/<tenant>/checkpoint), and of one being
 *    published (a cosigned checkpoint is older than the newest tree);
 *  - the partials of the tree size the journal starts at: log/replay.ts loads the tree it starts
 *    from out of them. Any file of a batch still in the journal may be lost to a crash, so
 *    before a flush lets the oldest segment go, the partials of the size the next one starts
 *    at are written again (as a wider file's prefix) if they were collected, and flushed;
 *  - the partials of earlier published checkpoints, newest first, while everything but the
 *    newest partials stays within 2 x (entry bytes + hashes) - 2 bytes per entry. The full
 *    tiles and bundles with the newest partials are one copy of the tree (entries with their
 *    2-byte lengths), so the files under tiles/ stay within 3 x (entry bytes + hashes).
 * Any other partial is deleted: a superseded one when the batch after it commits; all of a
 * tile's when its full tile is committed (renamed into place), but the journal start's, which
 * go when the journal moves on.
 *
 * Deletions and the writes of partials for a publication run one at a time, in order, off the
 * append path. Before a flush lets the journal go, the deletions so far are made durable, so
 * after a crash only tiles the journal covers can hold leftovers (open() looks there).
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { removeViaPool, syncDirsViaPool, type FileWrite } from '../storage/durable.js';
import type { RemovalResult, WorkerRemoval } from '../storage/file-worker.js';
import {
  ENTRIES_LEVEL,
  TILE_WIDTH,
  formatTilePath,
  hashesAtLevel,
  partialTiles,
  tileWidthInTree,
  topLevel,
  treeHashBytes,
  type TileCoord,
} from '../tiles/layout.js';
import { parsePartialWidth } from '../tiles/prefix.js';
import type { Logger } from '../logger.js';
import type { TileReader } from './tile-reader.js';

/** At most this many earlier published checkpoints keep their partials (the newest ones). */
const RETAINED_CHECKPOINTS = 256;
/** Full bundles whose sizes open() reads for the entry bytes (older ones count 1 byte an entry). */
const SIZED_BUNDLES = 64;
const TEMP_FILE = /^\..+\.tmp$/;

export interface PartialsIO {
  readonly reader: TileReader;
  /** Writes files into place (deferred: the next flush makes them durable). */
  write(files: readonly FileWrite[]): Promise<void>;
  /**
   * Deletes files, each one's directory too once empty when `rmdir` (not synced): all of a
   * batch's in one call, which the file worker takes with its next message. Absent: one unlink
   * at a time on the libuv pool.
   */
  remove?(removes: readonly WorkerRemoval[]): Promise<RemovalResult>;
  /** fsyncs the directories deletions were made in, ignoring failures. Absent: one at a time on the libuv pool. */
  syncDirs?(dirs: readonly string[]): Promise<void>;
  /** Told about every partial deleted (relative path), to drop it from caches. */
  onDelete?(rel: string): void;
  /** Told when a partial directory was removed (a writer that remembers directories forgets). */
  onDirRemoved?(): void;
  readonly logger: Logger;
  readonly tenant: string;
}

interface PartialFile {
  readonly coord: TileCoord;
  readonly rel: string;
  readonly bytes: number;
}

function tileKey(c: TileCoord): string {
  return `${c.level}/${c.index}`;
}

export class PartialTiles {
  /** Partial files on disk this log knows of, by path relative to the tiles directory. */
  private readonly files = new Map<string, PartialFile>();
  private readonly byTile = new Map<string, Set<string>>();
  private bytes = 0;
  private published: number;
  /** The tree size the journal starts at, and while a flush moves it, the one it moves to. */
  private journalStarts: readonly number[] = [];
  /** Sizes being published (their partials written first), with a count of publications. */
  private readonly publishing = new Map<number, number>();
  /** Earlier published sizes whose partials are kept, oldest first. */
  private readonly retained: number[] = [];
  private queue: Promise<void> = Promise.resolve();
  private readonly touchedDirs = new Set<string>();
  /** Partial files deleted since open. */
  collected = 0;

  private constructor(
    private readonly io: PartialsIO,
    /** The newest committed tree size. */
    private latest: number,
    published: number,
    /** The entry bytes of the committed tree, or a lower bound of them (after open). */
    private entryBytes: number,
  ) {
    this.published = published;
  }

  /** For a new log: nothing on disk yet. */
  static empty(io: PartialsIO): PartialTiles {
    return new PartialTiles(io, 0, 0, 0);
  }

  /**
   * For a log opened at `size` (recovered, everything durable) whose published checkpoint has
   * `published` entries. Looks for partials in the tiles the tree grew through since `from` (the
   * journal's start: a crash can leave collectable partials only there), collects what is not
   * kept, and writes the published checkpoint's partials if they are gone.
   */
  static async open(io: PartialsIO, size: number, published: number, from: number): Promise<PartialTiles> {
    const p = new PartialTiles(io, size, published, 0);
    const temps: string[] = [];
    for (let level = ENTRIES_LEVEL; level <= topLevel(size); level++) {
      const l = Math.max(level, 0);
      const first = Math.floor(hashesAtLevel(l, Math.min(from, size)) / TILE_WIDTH);
      const last = Math.floor(hashesAtLevel(l, size) / TILE_WIDTH);
      for (let index = first; index <= last; index++) {
        const dir = `${io.reader.tilePath(level, index, TILE_WIDTH)}.p`;
        const names = await fsp.readdir(dir).catch(() => [] as string[]);
        for (const name of names) {
          if (TEMP_FILE.test(name)) temps.push(path.join(dir, name));
          const width = parsePartialWidth(name);
          if (width === null) continue;
          const st = await fsp.stat(path.join(dir, name)).catch(() => null);
          if (st?.isFile()) p.track({ level, index, width }, st.size);
        }
      }
    }
    for (const t of temps) await fsp.unlink(t).catch(() => {});
    const edgeBundle =
      size % TILE_WIDTH > 0 ? p.files.get(formatTilePath({ level: ENTRIES_LEVEL, index: Math.floor(size / TILE_WIDTH), width: size % TILE_WIDTH })) : undefined;
    p.entryBytes = await entryBytesAtLeast(io.reader, size, edgeBundle);
    // Narrower bundles of the newest tile were published (or are leftovers of a crash): kept
    // like earlier published checkpoints, newest first, within the budget.
    const edge = Math.floor(size / TILE_WIDTH);
    const earlier = new Set<number>();
    for (const f of p.files.values()) {
      if (f.coord.level <= 0 && f.coord.index === edge && f.coord.width < size % TILE_WIDTH) earlier.add(edge * TILE_WIDTH + f.coord.width);
    }
    earlier.delete(published);
    p.retained.push(...[...earlier].sort((a, b) => a - b));
    const removed = p.collectFiles([...p.files.keys()]);
    p.enforceBudget();
    await p.ensure(published);
    await p.syncDeletions();
    if (removed + temps.length > 0)
      io.logger.info({ tenant: io.tenant, removed: removed + temps.length }, 'collected partial tiles no checkpoint needs any more');
    return p;
  }

  /**
   * A batch committed the tree of `size`: `written` are the files it wrote, `entryBytes` the
   * bytes of its entries, `published` whether its checkpoint was published with the commit.
   */
  committed(size: number, written: readonly { readonly coord: TileCoord; readonly data: Uint8Array }[], entryBytes: number, published: boolean): void {
    const prev = this.latest;
    for (const f of written) if (f.coord.width < TILE_WIDTH) this.track(f.coord, f.data.length);
    this.latest = size;
    this.entryBytes += entryBytes;
    if (published) this.setPublished(size);
    const candidates = partialTiles(prev).map((c) => formatTilePath(c));
    // Tiles the batch filled: their partials may go, now the full tile is in place.
    for (let level = ENTRIES_LEVEL; level <= topLevel(size); level++) {
      const l = Math.max(level, 0);
      for (let index = Math.floor(hashesAtLevel(l, prev) / TILE_WIDTH); index < Math.floor(hashesAtLevel(l, size) / TILE_WIDTH); index++) {
        candidates.push(...(this.byTile.get(`${level}/${index}`) ?? []));
      }
    }
    this.collectFiles(candidates);
    this.enforceBudget();
  }

  /**
   * Publishes the checkpoint of `size` with `publish`: its partials are written first when they
   * are gone (c2sp.org/tlog-tiles: every tile a published checkpoint implies must exist before
   * it is published), and kept while it is the published one.
   */
  async publish<T>(size: number, publish: () => Promise<T>): Promise<T> {
    this.publishing.set(size, (this.publishing.get(size) ?? 0) + 1);
    try {
      await this.ensure(size);
      const r = await publish();
      this.setPublished(size);
      return r;
    } finally {
      const n = this.publishing.get(size)! - 1;
      if (n > 0) this.publishing.set(size, n);
      else this.publishing.delete(size);
      this.collectSize(size);
      this.enforceBudget();
    }
  }

  /** The checkpoint of `size` (the newest tree's, its partials on disk) was published. */
  markPublished(size: number): void {
    this.setPublished(size);
    this.enforceBudget();
  }

  /** The journal now starts at `size` (null: it holds no record), after an append or a release. */
  journalStartAt(size: number | null): void {
    const starts = size === null ? [] : [size];
    const gone = this.journalStarts.filter((s) => !starts.includes(s));
    if (gone.length === 0 && starts.every((s) => this.journalStarts.includes(s))) return;
    this.journalStarts = starts;
    for (const s of gone) this.collectSize(s);
  }

  /**
   * The journal is about to start at `size`: its partials are kept, and written again (from a
   * wider file, deferred: the caller flushes) if they were collected. Resolves once written.
   */
  async journalWillStartAt(size: number): Promise<void> {
    if (!this.journalStarts.includes(size)) this.journalStarts = [...this.journalStarts, size];
    await this.ensure(size, true);
  }

  /** Waits for the deletions so far and makes them durable (before the journal lets go of them). */
  async syncDeletions(): Promise<void> {
    await this.queue;
    const dirs = [...this.touchedDirs];
    this.touchedDirs.clear();
    await (this.io.syncDirs ?? syncDirsViaPool)(dirs);
  }

  /** Resolves when the deletions and writes queued so far are done. */
  idle(): Promise<void> {
    return this.queue;
  }

  // ---- internals ----

  private setPublished(size: number): void {
    if (size === this.published) return;
    if (this.published < size) this.retained.push(this.published);
    this.published = size;
  }

  private track(coord: TileCoord, bytes: number): void {
    const rel = formatTilePath(coord);
    if (this.files.has(rel)) return;
    this.files.set(rel, { coord, rel, bytes });
    this.bytes += bytes;
    const key = tileKey(coord);
    let set = this.byTile.get(key);
    if (!set) this.byTile.set(key, (set = new Set()));
    set.add(rel);
  }

  /** The sizes whose partials are kept; for a tile full in the newest tree, only the journal's starts. */
  private keptSizes(fullTile: boolean): Iterable<number> {
    if (fullTile) return this.journalStarts;
    return [this.latest, this.published, ...this.journalStarts, ...this.publishing.keys(), ...this.retained];
  }

  private needed(c: TileCoord): boolean {
    const full = tileWidthInTree(c.level, c.index, this.latest) === TILE_WIDTH;
    for (const s of this.keptSizes(full)) if (tileWidthInTree(c.level, c.index, s) === c.width) return true;
    return false;
  }

  private collectSize(size: number): void {
    this.collectFiles(partialTiles(size).map((c) => formatTilePath(c)));
  }

  /** Deletes those of `rels` that no kept size needs. Returns how many it deletes. */
  private collectFiles(rels: Iterable<string>): number {
    let n = 0;
    const doomed: WorkerRemoval[] = [];
    for (const rel of rels) {
      const f = this.files.get(rel);
      if (!f || this.needed(f.coord)) continue;
      this.files.delete(rel);
      this.bytes -= f.bytes;
      const key = tileKey(f.coord);
      const set = this.byTile.get(key)!;
      set.delete(rel);
      const emptied = set.size === 0 && tileWidthInTree(f.coord.level, f.coord.index, this.latest) === TILE_WIDTH;
      if (set.size === 0) this.byTile.delete(key);
      this.io.onDelete?.(rel);
      n++;
      this.collected++;
      doomed.push({ path: this.io.reader.tilePath(f.coord.level, f.coord.index, f.coord.width), rmdir: emptied });
    }
    // One call for all of them (a batch supersedes several partials at once): one hand-off.
    // A full tile's partial directory is never written again: removed once empty.
    if (doomed.length > 0) this.enqueue(() => this.removeFiles(doomed));
    return n;
  }

  private async removeFiles(doomed: readonly WorkerRemoval[]): Promise<void> {
    const r = this.io.remove ? await this.io.remove(doomed) : await removeViaPool(doomed);
    for (const e of r.errors) this.io.logger.warn({ tenant: this.io.tenant, path: e.path, err: e.code }, 'could not delete a collected partial tile');
    for (const d of r.dirs) this.touchedDirs.add(d);
    if (r.rmdirs.length > 0) this.io.onDirRemoved?.();
  }

  /** Drops the oldest retained checkpoints' partials while the budget (see above) is exceeded. */
  private enforceBudget(): void {
    let newest = 0;
    for (const c of partialTiles(this.latest)) newest += this.files.get(formatTilePath(c))?.bytes ?? 0;
    const budget = 2 * (this.entryBytes + treeHashBytes(this.latest)) - 2 * this.latest;
    while (this.retained.length > 0 && (this.bytes - newest > budget || this.retained.length > RETAINED_CHECKPOINTS)) {
      this.collectSize(this.retained.shift()!);
    }
  }

  /**
   * Writes the partials of `size` that are gone (derived from a wider file), in the queue; those
   * of tiles full in the newest tree only with `evenFull` (the full tile suffices for serving).
   */
  private ensure(size: number, evenFull = false): Promise<void> {
    return this.enqueue(async () => {
      for (const c of partialTiles(size)) {
        const rel = formatTilePath(c);
        if (this.files.has(rel) || (!evenFull && tileWidthInTree(c.level, c.index, this.latest) === TILE_WIDTH)) continue;
        const data = await this.io.reader.readAt(c.level, c.index, c.width);
        await this.io.write([{ path: this.io.reader.tilePath(c.level, c.index, c.width), data, kind: 'immutable' }]);
        this.track(c, data.length);
      }
      // Written back, they count against the budget like any kept partial.
      this.enforceBudget();
    });
  }

  private enqueue(task: () => Promise<void>): Promise<void> {
    const run = this.queue.then(task);
    this.queue = run.catch((e: Error) => this.io.logger.warn({ tenant: this.io.tenant, err: e.message }, 'partial tiles: a queued task failed'));
    return run;
  }
}

/**
 * The entry bytes of a tree of `size`, or a lower bound: the newest full bundles' file sizes
 * (less their 2-byte lengths), one byte for every older entry, and the newest partial bundle.
 */
async function entryBytesAtLeast(reader: TileReader, size: number, edgeBundle: PartialFile | undefined): Promise<number> {
  const full = Math.floor(size / TILE_WIDTH);
  let total = (full - Math.min(full, SIZED_BUNDLES)) * TILE_WIDTH;
  for (let b = full - 1; b >= Math.max(0, full - SIZED_BUNDLES); b--) {
    const st = await fsp.stat(reader.tilePath(ENTRIES_LEVEL, b, TILE_WIDTH)).catch(() => null);
    total += st ? st.size - 2 * TILE_WIDTH : TILE_WIDTH;
  }
  const w = size % TILE_WIDTH;
  if (w > 0) total += edgeBundle ? edgeBundle.bytes - 2 * w : w;
  return total;
}
