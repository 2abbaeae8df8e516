/**
 * The per-tenant log engine: the sequencer (group commit), the commit point, recovery on open,
 * and the reads. One Log object per tenant per process; the engine is its only writer.
 *
 * The life of a batch (../shared/DESIGN.md):
 *   take everything pending -> assign indexes, hash leaves, extend the tree -> write bundles and
 *   tiles durably -> sign the checkpoint (Ed25519 + ML-DSA-44) -> move the commit point ->
 *   publish `checkpoint` (and its history copy) -> answer every append of the batch.
 * While one batch integrates the next accumulates; a lone entry at low load integrates at once.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { TlogError, ErrorCode, isTlogError } from '../errors.js';
import { EMPTY_ROOT, equalHashes, leafHash } from '../merkle/hash.js';
import {
  consistencyProof as buildConsistencyProof,
  inclusionProof as buildInclusionProof,
  type NodeReader,
  ProofMemo,
} from '../merkle/proof.js';
import { formatCheckpoint, parseCheckpoint } from '../note/checkpoint.js';
import { checkKeyName, formatNote, openNote, parseNote, signNote } from '../note/note.js';
import type { Clock } from '../note/signers.js';
import { DurableWriter, readIfExists, writeFileDurably, type DurableOptions, type FileWrite } from '../storage/durable.js';
import { checkEntrySize, formatEntryBundle } from '../tiles/bundle.js';
import { ENTRIES_LEVEL, TILE_WIDTH, changedTiles, formatIndexPath, tileWidthInTree, type TileCoord } from '../tiles/layout.js';
import { ExpandedTile, MissingTileError, TileTree, nodeReaderOver, type TileLookup } from '../tiles/tree.js';
import { commitPointOf, FileCommitStore, type CommitPoint, type CommitStore } from './commit.js';
import { createLogKeys, loadLogKeys, type LogKeys } from './keys.js';
import type { LogPaths } from './paths.js';
import { discardBeyond, MAX_BATCH_ENTRIES } from './recovery.js';
import { TileReader } from './tile-reader.js';

export interface AppendResult {
  readonly index: number;
  readonly leafHash: Uint8Array;
  /** The tree size of the checkpoint that first included the entry. */
  readonly treeSize: number;
  /** That checkpoint, signed, exactly as published. */
  readonly checkpoint: string;
  /** RFC 6962 inclusion proof of the entry in that checkpoint, leaf side first. */
  readonly proof: readonly Uint8Array[];
}

export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentLogger: Logger = { info() {}, warn() {}, error() {} };

export interface LogOptions {
  readonly clock?: Clock;
  /** Entries per batch; at most MAX_BATCH_ENTRIES. */
  readonly maxBatch?: number;
  /** Entries waiting beyond which append() refuses with `unavailable` (back-pressure). */
  readonly maxPending?: number;
  readonly logger?: Logger;
  /** Test hooks for the served-file writer (a disk that fails). */
  readonly durable?: DurableOptions;
  /** Where the commit point lives; defaults to a private file. */
  readonly commitStore?: CommitStore;
}

/** The log's private configuration, in <state>/log.json. */
export interface LogConfig {
  readonly version: 1;
  readonly origin: string;
  readonly createdAt: string;
}

const CONFIG_FILE = 'log.json';
const CHECKPOINT_FILE = 'checkpoint';

interface PreparedBatch {
  readonly batch: Pending[];
  readonly start: number;
  readonly end: number;
  readonly leafHashes: Uint8Array[];
  readonly rootHash: Uint8Array;
  readonly lookup: TileLookup;
  readonly completed: Map<string, ExpandedTile>;
  /** The batch's bundles and tiles, durable when it resolves. */
  readonly written: Promise<void>;
}

interface Pending {
  readonly entry: Uint8Array;
  resolve(r: AppendResult): void;
  reject(e: unknown): void;
}

/** History path of a checkpoint of `size`: checkpoints/<tenant>/log/<tlog-tiles N path>. */
export function historyPath(historyDir: string, size: number): string {
  return path.join(historyDir, 'log', formatIndexPath(size));
}

export async function readLogConfig(stateDir: string): Promise<LogConfig> {
  const p = path.join(stateDir, CONFIG_FILE);
  const data = await readIfExists(p);
  if (!data) throw new TlogError(ErrorCode.notFound, `no log at ${stateDir}: run \`tlog init\` first`);
  let cfg: LogConfig;
  try {
    cfg = JSON.parse(data.toString('utf8')) as LogConfig;
  } catch (e) {
    throw new TlogError(ErrorCode.corrupt, `${p}: ${(e as Error).message}`);
  }
  if (cfg.version !== 1 || typeof cfg.origin !== 'string') throw new TlogError(ErrorCode.corrupt, `${p}: unknown version or no origin`);
  return cfg;
}

export class Log {
  readonly origin: string;
  private readonly served: DurableWriter;
  private readonly reader: TileReader;
  private tree: TileTree;
  /** Entries of the bundle at the right edge that is not full yet. */
  private edgeBundle: Uint8Array[];
  private committed: CommitPoint;
  private pending: Pending[] = [];
  private integrating: Promise<void> | null = null;
  private closed = false;
  /** Set when the log must stop: every later append fails with it. */
  private fatal: TlogError | null = null;
  /** Set when a batch failed before its commit: later batches in flight fail too, then recovery runs. */
  private broken = false;
  private readonly maxBatch: number;
  private readonly maxPending: number;
  private readonly logger: Logger;

  private constructor(
    readonly paths: LogPaths,
    readonly config: LogConfig,
    private readonly keys: LogKeys,
    private readonly commits: CommitStore,
    committed: CommitPoint,
    opts: LogOptions,
  ) {
    this.origin = config.origin;
    this.committed = committed;
    this.served = new DurableWriter({ mode: 0o644, ...opts.durable });
    this.reader = new TileReader(paths.tilesDir);
    this.maxBatch = Math.min(opts.maxBatch ?? 8192, MAX_BATCH_ENTRIES);
    this.maxPending = opts.maxPending ?? 1 << 20;
    this.logger = opts.logger ?? silentLogger;
    this.tree = new TileTree();
    this.edgeBundle = [];
  }

  /**
   * Creates a new log: its private state directory, its keys (0600), its configuration, and
   * the signed checkpoint of the empty tree, published. Fails if a log exists there already.
   */
  static async init(paths: LogPaths, origin: string, opts: LogOptions = {}): Promise<Log> {
    // The origin is also the key name (c2sp.org/tlog-checkpoint SHOULD), so it must be a valid one.
    const problem = checkKeyName(origin);
    if (problem) throw new TlogError(ErrorCode.badInput, `bad origin: ${problem}`);
    if (await readIfExists(path.join(paths.stateDir, CONFIG_FILE))) {
      throw new TlogError(ErrorCode.conflict, `a log already exists at ${paths.stateDir}`);
    }
    if (await readIfExists(path.join(paths.tilesDir, CHECKPOINT_FILE))) {
      throw new TlogError(ErrorCode.conflict, `${paths.tilesDir} already holds a published log`);
    }
    await fsp.mkdir(paths.stateDir, { recursive: true, mode: 0o700 });
    await createLogKeys(paths.stateDir, origin);
    const config: LogConfig = { version: 1, origin, createdAt: new Date().toISOString() };
    await writeFileDurably(path.join(paths.stateDir, CONFIG_FILE), JSON.stringify(config, null, 2) + '\n', 0o600);
    const keys = await loadLogKeys(paths.stateDir, origin, opts.clock);
    const commits = opts.commitStore ?? new FileCommitStore(paths.stateDir);
    const note = signTree(origin, 0, EMPTY_ROOT, keys);
    const cp = commitPointOf(note);
    await commits.store(cp);
    const log = new Log(paths, config, keys, commits, cp, opts);
    await log.publish(cp);
    await writeFileDurably(path.join(paths.historyDir, 'vkeys'), log.verifierKeys().join('\n') + '\n');
    return log;
  }

  /** Opens an existing log, recovering its files to the commit point. */
  static async open(paths: LogPaths, opts: LogOptions = {}): Promise<Log> {
    const config = await readLogConfig(paths.stateDir);
    const keys = await loadLogKeys(paths.stateDir, config.origin, opts.clock);
    const commits = opts.commitStore ?? new FileCommitStore(paths.stateDir);
    const published = await readIfExists(path.join(paths.tilesDir, CHECKPOINT_FILE));
    const cp = await commits.load();
    if (!cp) {
      throw new TlogError(
        ErrorCode.corrupt,
        `log ${paths.tenant}: no commit point in ${paths.stateDir}${published ? ' but a checkpoint is published' : ''}: refusing to start`,
      );
    }
    const log = new Log(paths, config, keys, commits, cp, opts);
    log.verifyOwnNote(cp.note, 'commit point');
    if (published) log.checkPublished(published.toString('utf8'), cp);
    const removed = await discardBeyond(paths.tilesDir, cp.treeSize);
    if (removed.length > 0) {
      opts.logger?.warn({ tenant: paths.tenant, treeSize: cp.treeSize, removed: removed.length }, 'discarded uncommitted tiles beyond the commit point');
    }
    log.loadEdge();
    // A crash between moving the commit point and publishing leaves the published checkpoint
    // behind: publishing is idempotent, so do it again.
    if (!published || published.toString('utf8') !== cp.note) await log.publish(cp);
    return log;
  }

  /** The verifier keys of the log, as vkey strings (Ed25519 first). */
  verifierKeys(): string[] {
    return [this.keys.ed25519.vkey, this.keys.mldsa44.vkey];
  }

  get verifiers() {
    return [this.keys.ed25519.verifier, this.keys.mldsa44.verifier];
  }

  /** The last committed (and published) checkpoint. */
  get checkpoint(): CommitPoint {
    return this.committed;
  }

  get treeSize(): number {
    return this.committed.treeSize;
  }

  get pendingCount(): number {
    return this.pending.length;
  }

  private verifyOwnNote(note: string, what: string): void {
    try {
      openNote(note, this.verifiers);
    } catch (e) {
      throw new TlogError(ErrorCode.corrupt, `${what} of ${this.paths.tenant} is not signed by this log's keys: ${(e as Error).message}`);
    }
  }

  /** Refuses to start when the published checkpoint is ahead of, or contradicts, the commit point. */
  private checkPublished(note: string, cp: CommitPoint): void {
    let c;
    try {
      c = parseCheckpoint(parseNote(note).text);
    } catch (e) {
      throw new TlogError(ErrorCode.corrupt, `published checkpoint of ${this.paths.tenant} is unreadable: ${(e as Error).message}`);
    }
    this.verifyOwnNote(note, 'published checkpoint');
    if (c.origin !== this.origin) throw new TlogError(ErrorCode.corrupt, `published checkpoint has origin ${c.origin}, want ${this.origin}`);
    if (c.treeSize > cp.treeSize) {
      throw new TlogError(
        ErrorCode.corrupt,
        `published checkpoint (size ${c.treeSize}) is ahead of the commit point (size ${cp.treeSize}): refusing to start`,
      );
    }
    if (c.treeSize === cp.treeSize && !equalHashes(c.rootHash, cp.rootHash)) {
      throw new TlogError(ErrorCode.corrupt, `published checkpoint contradicts the commit point at size ${c.treeSize}: refusing to start`);
    }
  }

  /** Loads the right edge of the tree and the edge bundle from disk, checking them against the commit point. */
  private loadEdge(): void {
    const size = this.committed.treeSize;
    this.tree = TileTree.load(size, (level, index) => this.reader.readTileSync(level, index, size));
    if (!equalHashes(this.tree.root(), this.committed.rootHash)) {
      throw new TlogError(ErrorCode.corrupt, `tiles of ${this.paths.tenant} do not hash to the committed root at size ${size}: refusing to start`);
    }
    this.edgeBundle = [];
    const inEdge = size % TILE_WIDTH;
    if (inEdge > 0) {
      const bundleIndex = Math.floor(size / TILE_WIDTH);
      const entries = this.reader.readBundleSync(bundleIndex, size);
      const tile = this.tree.edgeTile(0)!;
      entries.forEach((e, i) => {
        if (!equalHashes(leafHash(e), tile.node(0, i)!)) {
          throw new TlogError(ErrorCode.corrupt, `bundle ${bundleIndex} entry ${i} does not match its level-0 tile hash`);
        }
      });
      this.edgeBundle = entries.map((e) => Uint8Array.from(e));
    }
    this.tree.onFull = () => {};
  }

  /**
   * Appends one entry. Resolves once the entry is integrated, committed and published, with
   * its index and an inclusion proof in the checkpoint that first included it.
   */
  append(entry: Uint8Array): Promise<AppendResult> {
    try {
      return this.appendMany([entry])[0]!;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Appends entries, in order; each promise settles like append()'s. */
  appendMany(entries: readonly Uint8Array[]): Promise<AppendResult>[] {
    // Validate everything first: a bad entry refuses the whole call and queues nothing.
    for (const e of entries) checkEntrySize(e);
    if (this.fatal) throw this.fatal;
    if (this.closed) throw new TlogError(ErrorCode.unavailable, `log ${this.paths.tenant} is closing`);
    if (this.pending.length + entries.length > this.maxPending) {
      throw new TlogError(ErrorCode.unavailable, `log ${this.paths.tenant} has ${this.pending.length} entries pending: try again shortly`);
    }
    const promises = entries.map(
      (entry) =>
        new Promise<AppendResult>((resolve, reject) => {
          // Copy: the caller may reuse its buffer before the batch is written.
          this.pending.push({ entry: Uint8Array.from(entry), resolve, reject });
        }),
    );
    this.kick();
    return promises;
  }

  private kick(): void {
    if (this.integrating || this.pending.length === 0) return;
    this.integrating = this.runBatches().finally(() => {
      this.integrating = null;
      this.kick();
    });
  }

  /**
   * The sequencer loop, a two-deep pipeline: while batch k's files are written, signed and
   * committed, batch k+1 is hashed and its writes started. Commits stay strictly in order.
   */
  private async runBatches(): Promise<void> {
    let previous: Promise<void> | null = null;
    while (this.pending.length > 0 && !this.fatal && !this.broken) {
      const batch = this.pending.splice(0, this.maxBatch);
      let prepared: PreparedBatch;
      try {
        prepared = this.prepare(batch);
      } catch (e) {
        this.broken = true;
        this.failBatch(batch, e);
        break;
      }
      const finished: Promise<void> = this.finish(prepared, previous);
      // At most two batches in flight: wait for the older one before preparing a third.
      if (previous) await previous;
      else if (this.pending.length === 0) await prepared.written.catch(() => {});
      previous = finished;
    }
    if (previous) await previous;
    if (this.broken && !this.fatal) await this.recoverToCommitPoint();
    if (this.fatal) for (const p of this.pending.splice(0)) p.reject(this.fatal);
  }

  /** Hashes a batch into the tree and starts writing its bundles and tiles. Synchronous but for the writes. */
  private prepare(batch: Pending[]): PreparedBatch {
    const start = this.tree.size;
    const completed = new Map<string, ExpandedTile>();
    const fullBundles = new Map<number, Uint8Array>();
    this.tree.onFull = (t) => completed.set(`${t.level}/${t.index}`, t);
    const leafHashes: Uint8Array[] = new Array(batch.length);
    try {
      for (let i = 0; i < batch.length; i++) {
        const entry = batch[i]!.entry;
        leafHashes[i] = leafHash(entry);
        this.tree.append(leafHashes[i]!);
        this.edgeBundle.push(entry);
        if (this.edgeBundle.length === TILE_WIDTH) {
          fullBundles.set(Math.floor((start + i) / TILE_WIDTH), formatEntryBundle(this.edgeBundle));
          this.edgeBundle = [];
        }
      }
    } finally {
      this.tree.onFull = () => {};
    }
    const end = this.tree.size;
    // The tiles this batch's proofs need: the right edge as of `end` and the tiles it filled.
    // Holding the tile objects is enough: later appends only add nodes beyond `end`.
    const edge: ExpandedTile[] = [];
    for (let level = 0; this.tree.edgeTile(level); level++) edge.push(this.tree.edgeTile(level)!);
    const lookup = (level: number, index: number) => {
      const t = edge[level];
      return t && t.index === index ? t : (completed.get(`${level}/${index}`) ?? null);
    };
    // c2sp.org/tlog-tiles: every tile a published checkpoint implies must exist before it is
    // published (tessera#1057), so they are written first.
    const writes: FileWrite[] = changedTiles(start, end).map((t) => {
      let data: Uint8Array;
      if (t.level === ENTRIES_LEVEL) data = t.width === TILE_WIDTH ? fullBundles.get(t.index)! : formatEntryBundle(this.edgeBundle);
      else data = lookup(t.level, t.index)!.bytes(t.width);
      return { path: this.reader.tilePath(t.level, t.index, t.width), data, kind: 'immutable' };
    });
    const written = this.served.write(writes);
    return { batch, start, end, leafHashes, rootHash: this.tree.root(), lookup, completed, written };
  }

  /** Waits for the batch's files and the previous batch, then signs, commits, publishes and answers. */
  private async finish(b: PreparedBatch, previous: Promise<void> | null): Promise<void> {
    let committed = false;
    try {
      await b.written;
      if (previous) await previous;
      if (this.broken || this.fatal) throw new TlogError(ErrorCode.unavailable, `batch at ${b.start} abandoned: an earlier batch failed`);
      const note = signTree(this.origin, b.end, b.rootHash, this.keys);
      const cp = commitPointOf(note);
      // The commit point moves before publishing: from here on the batch is part of the log.
      await this.commits.store(cp);
      committed = true;
      this.committed = cp;
      await this.publish(cp);
      const memo = new ProofMemo();
      const node = nodeReaderOver(b.lookup);
      for (let i = 0; i < b.batch.length; i++) {
        b.batch[i]!.resolve({
          index: b.start + i,
          leafHash: b.leafHashes[i]!,
          treeSize: b.end,
          checkpoint: note,
          proof: buildInclusionProof(b.start + i, b.end, node, memo),
        });
      }
      for (const t of b.completed.values()) this.reader.cache.put(t);
    } catch (e) {
      this.failBatch(b.batch, e);
      if (committed || isTlogError(e, ErrorCode.immutableConflict)) {
        // Past the commit point, or an immutable file with other bytes: this process cannot
        // continue safely. Stop loudly; a restart recovers from the files.
        const err = this.batchError(b.start, e);
        this.fatal ??= new TlogError(err.code, `log ${this.paths.tenant} stopped: ${err.message}`, { cause: err });
        this.logger.error({ tenant: this.paths.tenant, err: err.message }, 'log stopped');
      }
      this.broken = true;
    }
  }

  private batchError(start: number, e: unknown): TlogError {
    return isTlogError(e) ? e : new TlogError(ErrorCode.io, `integrate batch at ${start}: ${(e as Error).message}`, { cause: e });
  }

  private failBatch(batch: Pending[], e: unknown): void {
    const err = this.batchError(-1, e);
    for (const p of batch) p.reject(err);
  }

  /** After a failed batch nothing past the commit point counts: drop it from disk and memory. */
  private async recoverToCommitPoint(): Promise<void> {
    this.logger.warn({ tenant: this.paths.tenant, treeSize: this.committed.treeSize }, 'batch failed, recovering to the commit point');
    try {
      await discardBeyond(this.paths.tilesDir, this.committed.treeSize);
      this.served.forgetDirs();
      this.loadEdge();
      this.broken = false;
    } catch (e) {
      this.fatal = new TlogError(ErrorCode.corrupt, `log ${this.paths.tenant} stopped: recovery after a failed batch failed: ${(e as Error).message}`);
    }
  }

  /** Writes the history copy and the published checkpoint, durably. */
  private async publish(cp: CommitPoint): Promise<void> {
    const bytes = Buffer.from(cp.note, 'utf8');
    await this.served.write([
      { path: historyPath(this.paths.historyDir, cp.treeSize), data: bytes, kind: 'immutable' },
      { path: path.join(this.paths.tilesDir, CHECKPOINT_FILE), data: bytes, kind: 'replace' },
    ]);
  }

  /** Resolves once everything pending is integrated; then refuses new appends. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.integrating) await this.integrating;
  }

  // ---- reads: all against the committed tree ----

  /**
   * Whether the committed tree can imply this tile: a full tile it contains, or a partial one
   * no wider than the tile is now (narrower ones belong to earlier checkpoints). Lets a server
   * answer 404 for anything else without touching the disk.
   */
  servesTile(t: TileCoord): boolean {
    const w = tileWidthInTree(t.level, t.index, this.committed.treeSize);
    return t.width === TILE_WIDTH ? w === TILE_WIDTH : w >= t.width;
  }

  private checkSize(size: number, what: string): void {
    if (!Number.isSafeInteger(size) || size < 0) throw new TlogError(ErrorCode.badInput, `${what} must be a non-negative integer`);
    if (size > this.committed.treeSize) {
      throw new TlogError(ErrorCode.badInput, `${what} ${size} is beyond the tree size ${this.committed.treeSize}`);
    }
  }

  /** Runs a proof builder, loading tiles from disk as it finds them missing. */
  private async withNodes<T>(size: number, build: (node: NodeReader) => T): Promise<T> {
    const lookup = (level: number, index: number) => this.tree.lookup(level, index) ?? this.reader.cache.get(level, index) ?? null;
    const node = nodeReaderOver(lookup);
    for (let attempt = 0; attempt < 256; attempt++) {
      try {
        return build(node);
      } catch (e) {
        if (!(e instanceof MissingTileError)) throw e;
        await this.reader.loadExpanded(e.level, e.tile, size);
      }
    }
    throw new Error('proof needed more than 256 tile loads');
  }

  async inclusionProof(index: number, treeSize: number): Promise<Uint8Array[]> {
    this.checkSize(treeSize, 'tree size');
    if (!Number.isSafeInteger(index) || index < 0 || index >= treeSize) {
      throw new TlogError(ErrorCode.badInput, `index ${index} is not in a tree of size ${treeSize}`);
    }
    return this.withNodes(this.committed.treeSize, (node) => buildInclusionProof(index, treeSize, node));
  }

  async consistencyProof(oldSize: number, newSize: number): Promise<Uint8Array[]> {
    this.checkSize(newSize, 'new size');
    this.checkSize(oldSize, 'old size');
    if (oldSize > newSize) throw new TlogError(ErrorCode.badInput, `old size ${oldSize} is larger than new size ${newSize}`);
    return this.withNodes(this.committed.treeSize, (node) => buildConsistencyProof(oldSize, newSize, node));
  }

  /** The level-0 hash of entry `index`. */
  async leafHashAt(index: number): Promise<Uint8Array> {
    this.checkSize(index + 1, 'index + 1');
    return this.withNodes(this.committed.treeSize, (node) => Uint8Array.from(node(0, index)));
  }

  /**
   * Entries from `start`, at most `limit`, within the committed tree. `next` is the index to
   * ask for next (equal to the tree size when caught up).
   */
  async readEntries(start: number, limit: number): Promise<{ entries: Uint8Array[]; next: number }> {
    const size = this.committed.treeSize;
    if (!Number.isSafeInteger(start) || start < 0) throw new TlogError(ErrorCode.badInput, 'start must be a non-negative integer');
    if (!Number.isSafeInteger(limit) || limit < 1) throw new TlogError(ErrorCode.badInput, 'limit must be a positive integer');
    if (start > size) throw new TlogError(ErrorCode.badInput, `start ${start} is beyond the tree size ${size}`);
    const end = Math.min(size, start + limit);
    const entries: Uint8Array[] = [];
    for (let b = Math.floor(start / TILE_WIDTH); b * TILE_WIDTH < end; b++) {
      const bundle = await this.reader.readBundle(b, size);
      const from = Math.max(start - b * TILE_WIDTH, 0);
      const to = Math.min(end - b * TILE_WIDTH, bundle.length);
      for (let i = from; i < to; i++) entries.push(bundle[i]!);
    }
    return { entries, next: end };
  }
}

/** Signs the checkpoint of a tree with the log's Ed25519 and ML-DSA-44 keys. */
export function signTree(origin: string, treeSize: number, rootHash: Uint8Array, keys: LogKeys): string {
  const text = formatCheckpoint({ origin, treeSize, rootHash, extensions: [] });
  return formatNote(signNote(text, [keys.ed25519.signer, keys.mldsa44.signer]));
}
