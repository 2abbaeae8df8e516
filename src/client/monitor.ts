/**
 * A monitor follows one tlog-tiles log: it polls the checkpoint, verifies each new one (log
 * signature, witness policy, origin), proves it consistent with the last one it accepted, and
 * streams the entries in between, each re-hashed and checked against tile/0 and the whole run
 * authenticated against the signed root before it is handed out.
 *
 * A checkpoint that is not consistent with the accepted one (same size and another root, or a
 * consistency proof that fails) is refused with an InconsistentCheckpointsError holding both
 * signed notes: the evidence of a fork. The monitor does not move past it.
 *
 * State: the last accepted checkpoint, kept in memory and, when `stateFile` is given, written
 * there durably after every entry up to it has been handed out (so delivery is at least once
 * across restarts: entries after the saved checkpoint are streamed again). One Monitor per
 * state file; its methods must not run concurrently.
 */
import { promises as fsp } from 'node:fs';
import { TlogError, ErrorCode, isTlogError } from '../errors.js';
import { equalHashes, leafHash } from '../merkle/hash.js';
import { consistencyProof, verifyConsistency } from '../merkle/proof.js';
import { encodeBase64 } from '../note/note.js';
import { writeFileDurably } from '../storage/durable.js';
import { TILE_WIDTH, hashesAtLevel } from '../tiles/layout.js';
import { TileTree, type ExpandedTile } from '../tiles/tree.js';
import { isTransientSourceError, type TlogSource } from './source.js';
import { TileFetcher, type TileFetcherOptions } from './tiles.js';
import {
  InconsistentCheckpointsError,
  fetchCheckpoint,
  proveConsistency,
  verifyCheckpointNote,
  type CheckpointTrust,
  type TrustedCheckpoint,
} from './verify.js';

export interface MonitorOptions extends CheckpointTrust, TileFetcherOptions {
  readonly src: TlogSource;
  /** JSON file holding the last accepted checkpoint; read at start, rewritten on every advance. */
  readonly stateFile?: string;
  /**
   * With no saved state, accept the log's current checkpoint without streaming what is already
   * in it (trust on first use). Default: start from the empty tree and stream every entry.
   */
  readonly startAtLatest?: boolean;
  /** Between polls in `entries()`. Default 10 s. */
  readonly intervalMs?: number;
  /** Entry bundles fetched ahead while streaming. Default 8. */
  readonly concurrency?: number;
  /**
   * `entries()` retries a poll that failed for a reason that may pass (network, timeout, HTTP
   * 408/429/5xx) after retryBaseMs, doubling up to retryMaxMs. Defaults 1 s and 5 min.
   */
  readonly retryBaseMs?: number;
  readonly retryMaxMs?: number;
}

/** A poll that failed and will be tried again. */
export interface MonitorRetry {
  readonly error: unknown;
  /** Failed polls in a row, this one included. */
  readonly failures: number;
  readonly delayMs: number;
}

export interface MonitoredEntry {
  readonly index: number;
  readonly entry: Uint8Array;
  readonly leafHash: Uint8Array;
}

/** One accepted step: the checkpoint that was accepted and the one before it. */
export interface MonitorAdvance {
  readonly previous: TrustedCheckpoint | null;
  readonly checkpoint: TrustedCheckpoint;
  /** Consistency proof from the previous checkpoint (verified). */
  readonly proof: readonly Uint8Array[];
  /** Entries streamed for this step. */
  readonly entries: number;
}

interface StateFile {
  readonly version: 1;
  readonly checkpoint: string;
}

function fail(why: string): never {
  throw new TlogError(ErrorCode.verification, why);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

export class Monitor {
  readonly tiles: TileFetcher;
  private readonly opts: MonitorOptions;
  private accepted: TrustedCheckpoint | null = null;
  private loaded = false;
  /** The right edge of the accepted tree, once loaded; null when it must be rebuilt from tiles. */
  private tree: TileTree | null = null;
  /**
   * Entries beyond the accepted checkpoint already handed out by a step that then failed (a fetch
   * failed before the checkpoint could be accepted): up to `size`, where the tree had `root`.
   * A retry fetches them again to rebuild the tree, but does not hand them out twice, and checks
   * they are the same entries.
   */
  private handedOut: { size: number; root: Uint8Array } | null = null;

  constructor(opts: MonitorOptions) {
    this.opts = opts;
    this.tiles = new TileFetcher(opts.src, opts);
  }

  /** The last accepted checkpoint (after `load()` or a poll), or null before the first. */
  get checkpoint(): TrustedCheckpoint | null {
    return this.accepted;
  }

  /** Reads the state file, if any, and verifies the checkpoint in it. Idempotent. */
  async load(): Promise<TrustedCheckpoint | null> {
    if (this.loaded) return this.accepted;
    if (this.opts.stateFile) {
      let text: string | null = null;
      try {
        text = await fsp.readFile(this.opts.stateFile, 'utf8');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
          throw new TlogError(ErrorCode.io, `read ${this.opts.stateFile}: ${(e as NodeJS.ErrnoException).code ?? e}`);
      }
      if (text !== null) {
        let state: StateFile;
        try {
          state = JSON.parse(text) as StateFile;
          if (state.version !== 1 || typeof state.checkpoint !== 'string') throw new Error('want {"version":1,"checkpoint":...}');
        } catch (e) {
          throw new TlogError(ErrorCode.corrupt, `monitor state ${this.opts.stateFile}: ${(e as Error).message}`);
        }
        // Verified again: the file is only as trustworthy as the signatures in it.
        this.accepted = verifyCheckpointNote(state.checkpoint, this.opts, `monitor state ${this.opts.stateFile}`);
      }
    }
    this.loaded = true;
    return this.accepted;
  }

  private async save(cp: TrustedCheckpoint): Promise<void> {
    if (!this.opts.stateFile) return;
    const state: StateFile = { version: 1, checkpoint: cp.note };
    // Durable before we report the advance: a crash then re-streams, never skips.
    await writeFileDurably(this.opts.stateFile, JSON.stringify(state) + '\n', 0o644);
  }

  /** The right edge of the accepted tree of `size`, rebuilt from tiles and checked against its root. */
  private async edgeAt(cp: TrustedCheckpoint | null): Promise<TileTree> {
    const size = cp?.checkpoint.treeSize ?? 0;
    if (this.tree && this.tree.size === size) return this.tree;
    if (size === 0) return (this.tree = new TileTree());
    const edge = new Map<number, ExpandedTile>();
    for (let level = 0; hashesAtLevel(level, size) > 0; level++) {
      const index = Math.floor((hashesAtLevel(level, size) - 1) / TILE_WIDTH);
      edge.set(level, await this.tiles.hashTile(level, index, size));
    }
    const tree = TileTree.load(size, (level, _index, width) => edge.get(level)!.bytes(width));
    if (!equalHashes(tree.root(), cp!.checkpoint.rootHash)) {
      fail(`${this.tiles.src.where}: the tiles of the tree of size ${size} do not hash to the accepted root ${encodeBase64(cp!.checkpoint.rootHash)}`);
    }
    return (this.tree = tree);
  }

  /**
   * Verifies `next` against the accepted checkpoint. Returns the consistency proof when `next`
   * is ahead, null when it brings nothing new (same tree, or an older checkpoint consistent
   * with ours, as a lagging cache may serve). Throws InconsistentCheckpointsError on a fork.
   */
  async check(next: TrustedCheckpoint): Promise<Uint8Array[] | null> {
    const prev = this.accepted;
    const origin = prev?.checkpoint.origin ?? this.opts.origin;
    if (origin !== undefined && next.checkpoint.origin !== origin) {
      fail(`${this.tiles.src.where}: checkpoint origin is ${JSON.stringify(next.checkpoint.origin)}, want ${JSON.stringify(origin)}`);
    }
    if (!prev) return next.checkpoint.treeSize === 0 ? null : [];
    const a = prev.checkpoint.treeSize;
    const b = next.checkpoint.treeSize;
    if (b < a) {
      // An older checkpoint (a lagging cache, say) is fine if our tree extends it. Proving that
      // takes the tiles of our tree: a log that no longer serves them has rolled back.
      try {
        await proveConsistency(this.tiles, next, prev);
      } catch (e) {
        if (e instanceof InconsistentCheckpointsError) throw new InconsistentCheckpointsError(prev, next, e.message.replace(/^.*?: /, ''));
        if (isTlogError(e, ErrorCode.notFound)) {
          throw new InconsistentCheckpointsError(
            prev,
            next,
            `the log went back from size ${a} to ${b} and does not serve the tree of size ${a} (${e.message})`,
          );
        }
        throw e;
      }
      return null;
    }
    const proof = await proveConsistency(this.tiles, prev, next);
    return b === a ? null : proof;
  }

  /**
   * Streams the entries of `next` after the accepted tree, each authenticated, then accepts it.
   * Entries are yielded one bundle at a time, only after the tree rebuilt from them has been
   * proved a prefix of `next`.
   */
  private async *advance(next: TrustedCheckpoint, proof: Uint8Array[], done: (a: MonitorAdvance) => void): AsyncGenerator<MonitoredEntry> {
    const prev = this.accepted;
    const size = next.checkpoint.treeSize;
    let tree: TileTree;
    let start: number;
    if (!prev && this.opts.startAtLatest) {
      // Trust on first use: nothing before this checkpoint is streamed.
      tree = await this.edgeAt(next);
      start = size;
    } else {
      tree = await this.edgeAt(prev);
      start = tree.size;
    }
    let streamed = 0;
    const seen = this.handedOut && this.handedOut.size > start ? this.handedOut : null;
    try {
      // Bundles (and their level-0 tiles) are fetched a few ahead of the one being checked.
      const firstBundle = Math.floor(start / TILE_WIDTH);
      const lastBundle = Math.ceil(size / TILE_WIDTH) - 1;
      const ahead = Math.max(1, this.opts.concurrency ?? 8);
      const window = new Map<number, Promise<[Uint8Array[], ExpandedTile]>>();
      const prefetch = (b: number) => {
        if (b > lastBundle || window.has(b)) return;
        const p = Promise.all([this.tiles.entryBundle(b, size), this.tiles.hashTile(0, b, size)]);
        // Awaited in order below; a failure ahead of a failure (or of an early return) must not
        // surface as an unhandled rejection.
        p.catch(() => {});
        window.set(b, p);
      };
      for (let b = firstBundle; tree.size < size; b++) {
        for (let k = b; k < b + ahead; k++) prefetch(k);
        const [entries, tile0] = await window.get(b)!;
        window.delete(b);
        const first = tree.size;
        const out: MonitoredEntry[] = [];
        for (let i = first - b * TILE_WIDTH; i < entries.length; i++) {
          const h = leafHash(entries[i]!);
          // c2sp.org/tlog-tiles: entry i's leaf hash is hash i of the matching level-0 tile.
          if (!equalHashes(h, tile0.node(0, i)!)) fail(`${this.tiles.src.where}: entry ${b * TILE_WIDTH + i} does not match its hash in tile/0`);
          tree.append(h);
          if (seen && tree.size === seen.size && !equalHashes(tree.root(), seen.root)) {
            fail(
              `${this.tiles.src.where}: entries 0..${seen.size - 1} are not the ones handed out before the retry (another tree of size ${seen.size}: a fork)`,
            );
          }
          if (b * TILE_WIDTH + i >= (seen?.size ?? 0)) out.push({ index: b * TILE_WIDTH + i, entry: entries[i]!, leafHash: h });
        }
        // Authenticate the entries before handing them out: the tree they extend ours to must be
        // a prefix of the signed one.
        const end = tree.size;
        const root = tree.root();
        if (end === size) {
          if (!equalHashes(root, next.checkpoint.rootHash))
            fail(`${this.tiles.src.where}: entries ${first}..${end - 1} do not hash to the root of the checkpoint of size ${size}`);
        } else {
          const p = await this.tiles.withNodes(size, (node) => consistencyProof(end, size, node));
          if (!verifyConsistency(end, size, root, next.checkpoint.rootHash, p)) {
            fail(`${this.tiles.src.where}: entries ${first}..${end - 1} do not extend the tree to a prefix of the checkpoint of size ${size}`);
          }
        }
        for (const e of out) {
          yield e;
          streamed++;
        }
        if (out.length > 0) this.handedOut = { size: end, root };
      }
    } catch (e) {
      // The in-memory edge may hold hashes that did not verify: rebuild it from tiles next time.
      this.tree = null;
      throw e;
    }
    await this.save(next);
    this.accepted = next;
    this.tree = tree;
    if (this.handedOut && this.handedOut.size <= size) this.handedOut = null;
    done({ previous: prev, checkpoint: next, proof, entries: streamed });
  }

  /**
   * One poll: fetch and verify the checkpoint, check it against the accepted one, stream the new
   * entries to `onEntry` (awaited, in order) and accept it. Returns the advance, or null when
   * the log has nothing new.
   */
  async poll(onEntry?: (e: MonitoredEntry) => void | Promise<void>): Promise<MonitorAdvance | null> {
    let result: MonitorAdvance | null = null;
    for await (const e of this.pollEntries((a) => (result = a))) await onEntry?.(e);
    return result;
  }

  /** One poll as an async iterator of the new entries; `onAdvance` hears of the accepted step. */
  async *pollEntries(onAdvance?: (a: MonitorAdvance) => void): AsyncGenerator<MonitoredEntry> {
    await this.load();
    const next = await fetchCheckpoint(this.tiles, this.opts);
    const proof = await this.check(next);
    if (proof === null) {
      if (!this.accepted) {
        // An empty log: accept it so that the origin is pinned.
        await this.save(next);
        this.accepted = next;
        onAdvance?.({ previous: null, checkpoint: next, proof: [], entries: 0 });
      }
      return;
    }
    yield* this.advance(next, proof, (a) => onAdvance?.(a));
  }

  /**
   * Follows the log: polls every `intervalMs` and yields every new entry, in order, until
   * `signal` aborts (then returns quietly). A poll that fails for a reason that may pass (the
   * network, a timeout, an overloaded server) is retried with exponential backoff, keeping the
   * accepted checkpoint and never handing an entry out twice; `onRetry` hears of each. A fork,
   * a bad signature or any other failure ends it with the error.
   */
  async *entries(
    opts: { signal?: AbortSignal; onAdvance?: (a: MonitorAdvance) => void; onRetry?: (r: MonitorRetry) => void } = {},
  ): AsyncGenerator<MonitoredEntry> {
    let failures = 0;
    while (!opts.signal?.aborted) {
      try {
        yield* this.pollEntries(opts.onAdvance);
        failures = 0;
      } catch (e) {
        if (!isTransientSourceError(e)) throw e;
        failures++;
        const delayMs = this.retryDelay(failures);
        opts.onRetry?.({ error: e, failures, delayMs });
        await sleep(delayMs, opts.signal);
        continue;
      }
      await sleep(this.opts.intervalMs ?? 10_000, opts.signal);
    }
  }

  /** Exponential backoff with jitter in [d/2, d], so monitors of one log do not retry in step. */
  private retryDelay(failures: number): number {
    const base = this.opts.retryBaseMs ?? 1000;
    const max = this.opts.retryMaxMs ?? 300_000;
    const d = Math.min(max, base * 2 ** Math.min(failures - 1, 30));
    return Math.round(d / 2 + (Math.random() * d) / 2);
  }
}
