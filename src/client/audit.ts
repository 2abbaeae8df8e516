/**
 * A full audit of a tlog-tiles log: verify the checkpoint's signatures, re-hash every entry of
 * every bundle, rebuild the whole tree from those leaf hashes, and require every tile on disk
 * (full and partial) and the root to match. Optionally also checks a history of earlier
 * checkpoints: each must be signed and be a prefix of the tree (so every published checkpoint is
 * consistent with the next), and its partial tiles, where present, must match.
 *
 * Partials of earlier checkpoints may be gone: c2sp.org/tlog-tiles lets a log delete them once
 * the full tile exists (counted apart), and with `collectedPartials` (our own logs) also when
 * the published checkpoint's wider partial of the same tile is there: this engine collects
 * superseded partials and serves them as that file's prefix (tile-store/partials.ts).
 *
 * Works against any tlog-tiles log, through a TlogSource.
 */
import { TlogError, ErrorCode } from '../errors.js';
import { equalHashes, leafHash } from '../merkle/hash.js';
import { parseCheckpoint, type Checkpoint } from '../note/checkpoint.js';
import { encodeBase64, openNote, type NoteVerifier } from '../note/note.js';
import { parseEntryBundle } from '../tiles/bundle.js';
import { ENTRIES_LEVEL, TILE_WIDTH, formatTilePath, partialTiles, tileWidthInTree } from '../tiles/layout.js';
import { TileTree, type ExpandedTile } from '../tiles/tree.js';
import type { TlogSource } from './source.js';

export interface AuditOptions {
  readonly verifiers: readonly NoteVerifier[];
  /** When given, the checkpoint's origin must equal it. */
  readonly origin?: string;
  /** Earlier signed checkpoints (note text) to check against the tree. */
  readonly history?: readonly string[];
  readonly onProgress?: (done: number, total: number) => void;
  /** Bundles fetched ahead (for HTTP sources). */
  readonly concurrency?: number;
  /**
   * A history checkpoint's partial tile may be missing while the published checkpoint's wider
   * partial of the same tile is there (it is then that one's prefix, checked with it). For
   * this engine's logs, whose served routes derive them so. Otherwise a missing partial whose
   * full tile is not in the tree fails the audit.
   */
  readonly collectedPartials?: boolean;
}

/** The partial tiles and bundles the checkpoints checked imply, by what was found. */
export interface PartialsChecked {
  /** Present, and equal to the tree rebuilt from the entries. */
  readonly present: number;
  /** Missing, and the full tile is in the tree (and was checked): c2sp.org/tlog-tiles allows it. */
  readonly fullTileExists: number;
  /** Missing, and the published checkpoint's wider partial of the tile was checked (collectedPartials). */
  readonly collected: number;
}

export interface AuditReport {
  readonly origin: string;
  readonly treeSize: number;
  readonly rootHash: string;
  readonly entries: number;
  readonly tilesChecked: number;
  readonly checkpointsChecked: number;
  readonly partials: PartialsChecked;
  readonly signers: string[];
}

function fail(why: string): never {
  throw new TlogError(ErrorCode.verification, why);
}

async function mustGet(src: TlogSource, rel: string): Promise<Uint8Array> {
  const data = await src.get(rel);
  if (!data) fail(`${src.where}/${rel} is missing`);
  return data;
}

export function openCheckpoint(note: Uint8Array | string, verifiers: readonly NoteVerifier[], what: string): { checkpoint: Checkpoint; signers: string[] } {
  let opened;
  try {
    opened = openNote(note, verifiers);
  } catch (e) {
    fail(`${what}: ${(e as Error).message}`);
  }
  let checkpoint;
  try {
    checkpoint = parseCheckpoint(opened.note.text);
  } catch (e) {
    fail(`${what}: ${(e as Error).message}`);
  }
  return { checkpoint, signers: opened.verified.map((s) => `${s.name}+${s.keyID.toString(16).padStart(8, '0')}`) };
}

export async function auditLog(src: TlogSource, opts: AuditOptions): Promise<AuditReport> {
  const { checkpoint: cp, signers } = openCheckpoint(await mustGet(src, 'checkpoint'), opts.verifiers, `${src.where}/checkpoint`);
  if (opts.origin !== undefined && cp.origin !== opts.origin) fail(`checkpoint origin is ${cp.origin}, want ${opts.origin}`);
  const size = cp.treeSize;

  // Earlier checkpoints, by size: each is checked when the rebuilt tree reaches it.
  const history = (opts.history ?? [])
    .map((n, i) => openCheckpoint(n, opts.verifiers, `history checkpoint #${i}`).checkpoint)
    .filter((c) => {
      if (c.origin !== cp.origin) fail(`history checkpoint of size ${c.treeSize} has origin ${c.origin}`);
      if (c.treeSize > size) fail(`history checkpoint of size ${c.treeSize} is ahead of the published checkpoint (${size})`);
      return true;
    })
    .sort((a, b) => a.treeSize - b.treeSize);
  let nextHistory = 0;
  let tilesChecked = 0;
  let checkpointsChecked = 0;
  const partials = { present: 0, fullTileExists: 0, collected: 0 };

  const tree = new TileTree();
  const pendingFull: ExpandedTile[] = [];
  tree.onFull = (t) => pendingFull.push(t);
  const checkTile = async (level: number, index: number, width: number, expected: Uint8Array) => {
    const rel = formatTilePath({ level, index, width });
    const data = await mustGet(src, rel);
    if (!equalHashes(data, expected)) fail(`${rel} does not match the tree rebuilt from the entries`);
    tilesChecked++;
  };
  /**
   * The partial tiles and bundle a tree of `treeSize` implies (the tree rebuilt so far is that
   * tree). Those of the audited checkpoint must all be there; an earlier checkpoint's may be gone
   * (see the top of this file).
   */
  const checkPartials = async (treeSize: number, mustExist: boolean) => {
    for (const t of partialTiles(treeSize)) {
      const rel = formatTilePath(t);
      const data = await src.get(rel);
      if (!data) {
        if (mustExist) fail(`${src.where}/${rel} is missing`);
        if (tileWidthInTree(t.level, t.index, size) === TILE_WIDTH) partials.fullTileExists++;
        else if (opts.collectedPartials) partials.collected++;
        else fail(`${src.where}/${rel} is missing, and the full tile is not in the tree (c2sp.org/tlog-tiles: partials of a checkpoint stay until then)`);
        continue;
      }
      if (t.level !== ENTRIES_LEVEL) {
        if (!equalHashes(data, tree.edgeTile(t.level)!.bytes(t.width))) fail(`${rel} does not match the tree rebuilt from the entries`);
      } else {
        let entries: Uint8Array[];
        try {
          entries = parseEntryBundle(data, t.width);
        } catch (e) {
          fail(`${rel}: ${(e as Error).message}`);
        }
        const tile = tree.edgeTile(0)!;
        entries.forEach((e, i) => {
          if (!equalHashes(leafHash(e), tile.node(0, i)!)) fail(`${rel}: entry ${i} does not match its level-0 hash`);
        });
      }
      tilesChecked++;
      partials.present++;
    }
  };
  const checkHistoryAt = async (treeSize: number) => {
    while (nextHistory < history.length && history[nextHistory]!.treeSize === treeSize) {
      const h = history[nextHistory++]!;
      if (!equalHashes(tree.root(), h.rootHash)) fail(`checkpoint of size ${treeSize} is not consistent with the tree: root differs`);
      await checkPartials(treeSize, false);
      checkpointsChecked++;
    }
  };
  await checkHistoryAt(0);

  const bundles = Math.ceil(size / TILE_WIDTH);
  const concurrency = opts.concurrency ?? 8;
  /** Bundle b and its level-0 tile, both at their width in the published tree. */
  const fetchBundle = async (b: number): Promise<{ entries: Uint8Array[]; tile: Uint8Array; rel: string }> => {
    const width = Math.min(TILE_WIDTH, size - b * TILE_WIDTH);
    const rel = formatTilePath({ level: ENTRIES_LEVEL, index: b, width });
    const tileRel = formatTilePath({ level: 0, index: b, width });
    const [data, tile] = await Promise.all([mustGet(src, rel), mustGet(src, tileRel)]);
    if (tile.length !== width * 32) fail(`${tileRel} is ${tile.length} bytes, want ${width * 32}`);
    try {
      return { entries: parseEntryBundle(data, width), tile, rel };
    } catch (e) {
      fail(`${rel}: ${(e as Error).message}`);
    }
  };
  const window: ReturnType<typeof fetchBundle>[] = [];
  for (let b = 0; b < Math.min(concurrency, bundles); b++) window.push(fetchBundle(b));
  for (let b = 0; b < bundles; b++) {
    const { entries, tile, rel } = await window.shift()!;
    if (b + concurrency < bundles) window.push(fetchBundle(b + concurrency));
    for (let i = 0; i < entries.length; i++) {
      const h = leafHash(entries[i]!);
      // c2sp.org/tlog-tiles: entry i's leaf hash is hash i of the matching level-0 tile.
      if (!equalHashes(h, tile.subarray(i * 32, i * 32 + 32))) fail(`${rel}: entry ${b * TILE_WIDTH + i} does not match its hash in tile/0`);
      tree.append(h);
      // c2sp.org/tlog-tiles: a full tile holds exactly the hashes the entries imply.
      while (pendingFull.length > 0) {
        const t = pendingFull.shift()!;
        // Level-0 tiles were compared hash by hash above.
        if (t.level > 0) await checkTile(t.level, t.index, TILE_WIDTH, t.bytes());
        else tilesChecked++;
      }
      if (nextHistory < history.length && history[nextHistory]!.treeSize === tree.size) await checkHistoryAt(tree.size);
    }
    opts.onProgress?.(b + 1, bundles);
  }
  await checkPartials(size, true);
  const root = tree.root();
  if (!equalHashes(root, cp.rootHash))
    fail(`the tree rebuilt from the entries has root ${encodeBase64(root)}, the checkpoint says ${encodeBase64(cp.rootHash)}`);
  if (nextHistory < history.length) fail(`history checkpoint of size ${history[nextHistory]!.treeSize} was not reached`);
  return {
    origin: cp.origin,
    treeSize: size,
    rootHash: encodeBase64(root),
    entries: size,
    tilesChecked,
    checkpointsChecked,
    partials,
    signers,
  };
}
