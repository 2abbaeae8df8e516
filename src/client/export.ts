/**
 * The VIP-STD-002 ledger view of a log: one JSON ledger entry per log entry, chained by
 * hashes, each carrying an RFC 6962 inclusion proof against one signed checkpoint.
 *
 * A line (the keys in this order; the hash does not depend on it):
 *
 *   {"v":1,"type":"LEDGER_ENTRY","proof":{...},"prev_hash":null|"<hex>","entry_hash":"<hex>"}
 *
 * proof, all byte strings in standard base64 with padding:
 *   log        the checkpoint's origin
 *   index      the entry's index in the log (0-based; line n holds index n-1)
 *   tree_size  the size of the checkpoint every proof is against
 *   root_hash  that checkpoint's root hash
 *   leaf_hash  SHA-256(0x00 || data), RFC 6962 2.1
 *   inclusion  the RFC 6962 2.1.1 inclusion proof of index in tree_size, leaf side first
 *   data       the entry's bytes
 *
 * entry_hash = lowercase hex SHA-256 of the RFC 8785 (JCS) canonical JSON of the line's object
 * without its entry_hash member; prev_hash is null on the first line and the previous line's
 * entry_hash after it. The chain shows order and completeness on its own; the proofs tie every
 * line to the log's signed checkpoint, which the chain alone cannot (anyone can re-chain).
 *
 * Works against any tlog-tiles log, through a TlogSource.
 */
import { TlogError, ErrorCode } from '../errors.js';
import { equalHashes, leafHash, sha256 } from '../merkle/hash.js';
import { inclusionProof, ProofMemo, verifyInclusion } from '../merkle/proof.js';
import { parseCheckpoint, type Checkpoint } from '../note/checkpoint.js';
import { decodeBase64Strict, encodeBase64, type NoteVerifier } from '../note/note.js';
import { parseEntryBundle } from '../tiles/bundle.js';
import { ENTRIES_LEVEL, TILE_WIDTH, formatTilePath, tileWidthInTree } from '../tiles/layout.js';
import { prefixOf } from '../tiles/prefix.js';
import { ExpandedTile, MissingTileError, nodeReaderOver } from '../tiles/tree.js';
import { openCheckpoint } from './audit.js';
import { canonicalize } from './jcs.js';
import type { TlogSource } from './source.js';

export const LEDGER_FORMAT = 'vip-ledger';
export const LEDGER_VERSION = 1;
export const LEDGER_ENTRY_TYPE = 'LEDGER_ENTRY';

export interface LedgerProof {
  readonly log: string;
  readonly index: number;
  readonly tree_size: number;
  readonly root_hash: string;
  readonly leaf_hash: string;
  readonly inclusion: readonly string[];
  readonly data: string;
}

export interface LedgerEntry {
  readonly v: 1;
  readonly type: 'LEDGER_ENTRY';
  readonly proof: LedgerProof;
  readonly prev_hash: string | null;
  readonly entry_hash: string;
}

/** entry_hash: hex SHA-256 of the JCS form of the entry without entry_hash. */
export function ledgerEntryHash(e: Omit<LedgerEntry, 'entry_hash'> | Record<string, unknown>): string {
  const { entry_hash: _ignored, ...rest } = e as Record<string, unknown>;
  return Buffer.from(sha256(Buffer.from(canonicalize(rest), 'utf8'))).toString('hex');
}

/** One ledger line (no newline). */
export function formatLedgerEntry(e: LedgerEntry): string {
  return `{"v":${e.v},"type":${JSON.stringify(e.type)},"proof":${canonicalize(e.proof)},"prev_hash":${JSON.stringify(e.prev_hash)},"entry_hash":${JSON.stringify(e.entry_hash)}}`;
}

function fail(why: string): never {
  throw new TlogError(ErrorCode.verification, why);
}

export interface ExportOptions {
  /** The signed checkpoint to export (note text). Default: the source's current `checkpoint`. */
  readonly checkpoint?: string | Uint8Array;
  /** Keys the checkpoint must verify under; when empty the checkpoint is only parsed. */
  readonly verifiers?: readonly NoteVerifier[];
  /** Receives each line without its newline, in order; awaited (back-pressure). */
  readonly write: (line: string) => void | Promise<void>;
  readonly onProgress?: (done: number, total: number) => void;
}

export interface ExportResult {
  readonly origin: string;
  readonly treeSize: number;
  readonly rootHash: string;
  readonly entries: number;
  /** The entry_hash of the last line (null for an empty log): the head of the chain. */
  readonly head: string | null;
  /** The checkpoint note the proofs are against, exactly as read. */
  readonly checkpoint: string;
}

/**
 * Tile (bundle) (level, index) at `width`: the partial file, or when it is gone the prefix of
 * the full one (c2sp.org/tlog-tiles: a log MAY delete a partial once the full tile exists, and
 * clients fall back to it).
 */
async function getAt(src: TlogSource, level: number, index: number, width: number): Promise<{ rel: string; data: Uint8Array }> {
  const rel = formatTilePath({ level, index, width });
  if (width === TILE_WIDTH) return { rel, data: await mustGet(src, rel) };
  const partial = await src.get(rel);
  if (partial) return { rel, data: partial };
  const fullRel = formatTilePath({ level, index, width: TILE_WIDTH });
  const full = await src.get(fullRel);
  if (!full) fail(`${src.where}/${rel} is missing (and so is the full one)`);
  try {
    return { rel: fullRel, data: prefixOf(fullRel, level, full, TILE_WIDTH, width) };
  } catch (e) {
    fail(`${fullRel}: ${(e as Error).message}`);
  }
}

async function mustGet(src: TlogSource, rel: string): Promise<Uint8Array> {
  const data = await src.get(rel);
  if (!data) fail(`${src.where}/${rel} is missing`);
  return data;
}

/**
 * Writes the ledger of the tree at a checkpoint. Every entry is re-hashed against its level-0
 * tile and every proof verified against the checkpoint's root before its line is written, so
 * a damaged log fails the export rather than producing a ledger that does not verify.
 */
export async function exportLedger(src: TlogSource, opts: ExportOptions): Promise<ExportResult> {
  const raw = opts.checkpoint ?? (await mustGet(src, 'checkpoint'));
  const note = typeof raw === 'string' ? raw : Buffer.from(raw).toString('utf8');
  let cp: Checkpoint;
  if (opts.verifiers && opts.verifiers.length > 0) cp = openCheckpoint(note, opts.verifiers, 'checkpoint').checkpoint;
  else {
    const blank = note.lastIndexOf('\n\n');
    if (blank < 0) fail('checkpoint: not a signed note');
    cp = parseCheckpoint(note.slice(0, blank + 1));
  }
  const size = cp.treeSize;
  const root = encodeBase64(cp.rootHash);

  // Tiles at their width in this tree, loaded on demand; level-0 tiles left behind are dropped.
  const tiles = new Map<string, ExpandedTile>();
  const node = nodeReaderOver((level, index) => tiles.get(`${level}/${index}`) ?? null);
  const loadTile = async (level: number, index: number) => {
    const width = tileWidthInTree(level, index, size);
    if (width === 0) throw new Error(`export: tile ${level}/${index} is outside the tree of size ${size}`);
    const { rel, data } = await getAt(src, level, index, width);
    if (data.length !== width * 32) fail(`${rel} is ${data.length} bytes, want ${width * 32}`);
    tiles.set(`${level}/${index}`, ExpandedTile.fromHashes(level, index, data));
  };
  const memo = new ProofMemo();
  const proveAt = async (index: number): Promise<Uint8Array[]> => {
    for (let attempt = 0; attempt < 256; attempt++) {
      try {
        return inclusionProof(index, size, node, memo);
      } catch (e) {
        if (!(e instanceof MissingTileError)) throw e;
        await loadTile(e.level, e.tile);
      }
    }
    throw new Error('export: a proof needed more than 256 tile loads');
  };

  let prev: string | null = null;
  const bundles = Math.ceil(size / TILE_WIDTH);
  for (let b = 0; b < bundles; b++) {
    const width = Math.min(TILE_WIDTH, size - b * TILE_WIDTH);
    let entries: Uint8Array[];
    const { rel, data } = await getAt(src, ENTRIES_LEVEL, b, width);
    try {
      entries = parseEntryBundle(data, width);
    } catch (e) {
      fail(`${rel}: ${(e as Error).message}`);
    }
    if (!tiles.has(`0/${b}`)) await loadTile(0, b);
    if (b > 0) tiles.delete(`0/${b - 1}`);
    const tile = tiles.get(`0/${b}`)!;
    for (let i = 0; i < entries.length; i++) {
      const index = b * TILE_WIDTH + i;
      const leaf = leafHash(entries[i]!);
      // c2sp.org/tlog-tiles: entry i's leaf hash is hash i of the level-0 tile.
      if (!equalHashes(leaf, tile.node(0, i)!)) fail(`${rel}: entry ${index} does not match its hash in tile/0`);
      const path = await proveAt(index);
      if (!verifyInclusion(index, size, leaf, path, cp.rootHash)) fail(`entry ${index}: its inclusion proof does not reach the checkpoint's root`);
      const body = {
        v: LEDGER_VERSION,
        type: LEDGER_ENTRY_TYPE,
        proof: {
          log: cp.origin,
          index,
          tree_size: size,
          root_hash: root,
          leaf_hash: encodeBase64(leaf),
          inclusion: path.map(encodeBase64),
          data: encodeBase64(entries[i]!),
        },
        prev_hash: prev,
      } as const;
      const entry: LedgerEntry = { ...body, entry_hash: ledgerEntryHash(body) };
      await opts.write(formatLedgerEntry(entry));
      prev = entry.entry_hash;
    }
    opts.onProgress?.(b + 1, bundles);
  }
  return { origin: cp.origin, treeSize: size, rootHash: root, entries: size, head: prev, checkpoint: note };
}

export interface LedgerProblem {
  /** 1-based line number in the ledger file. */
  readonly line: number;
  /** The log index the line claims (or, when unreadable, the one expected there). */
  readonly index: number;
  readonly message: string;
}

export interface VerifyLedgerOptions {
  /** The signed checkpoint the proofs must be against (note text). */
  readonly checkpoint?: string | Uint8Array;
  /** Keys the checkpoint must verify under (required with checkpoint). */
  readonly verifiers?: readonly NoteVerifier[];
  /** Stop collecting after this many problems (default 100). */
  readonly maxProblems?: number;
}

export interface VerifyLedgerReport {
  readonly ok: boolean;
  readonly entries: number;
  readonly origin: string | null;
  readonly treeSize: number | null;
  readonly rootHash: string | null;
  readonly head: string | null;
  /** Whether the root was checked against a signed checkpoint (else only the chain and proofs). */
  readonly checkpointVerified: boolean;
  readonly signers: string[];
  readonly problems: LedgerProblem[];
}

const HEX_HASH = /^[0-9a-f]{64}$/;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads the proof member, returning why it is malformed if it is. */
function readProof(p: unknown): { proof: LedgerProof; data: Uint8Array; leaf: Uint8Array; root: Uint8Array; path: Uint8Array[] } | string {
  if (!isRecord(p)) return 'proof is not an object';
  const { log, index, tree_size, root_hash, leaf_hash, inclusion, data } = p;
  if (typeof log !== 'string' || log === '') return 'proof.log is not a non-empty string';
  if (!Number.isSafeInteger(index) || (index as number) < 0) return 'proof.index is not a non-negative integer';
  if (!Number.isSafeInteger(tree_size) || (tree_size as number) < 1) return 'proof.tree_size is not a positive integer';
  const root = typeof root_hash === 'string' ? decodeBase64Strict(root_hash) : null;
  if (!root || root.length !== 32) return 'proof.root_hash is not base64 of 32 bytes';
  const leaf = typeof leaf_hash === 'string' ? decodeBase64Strict(leaf_hash) : null;
  if (!leaf || leaf.length !== 32) return 'proof.leaf_hash is not base64 of 32 bytes';
  const bytes = typeof data === 'string' ? decodeBase64Strict(data) : null;
  if (!bytes) return 'proof.data is not base64';
  if (!Array.isArray(inclusion)) return 'proof.inclusion is not an array';
  const path: Uint8Array[] = [];
  for (const h of inclusion) {
    const d = typeof h === 'string' ? decodeBase64Strict(h) : null;
    if (!d || d.length !== 32) return 'proof.inclusion holds something that is not base64 of 32 bytes';
    path.push(d);
  }
  return { proof: p as unknown as LedgerProof, data: bytes, leaf, root, path };
}

/**
 * Validates a ledger, line by line: each line's entry_hash against its contents, its prev_hash
 * against the line before, its index against its position, its leaf hash against its data,
 * its inclusion proof against its root, every line against the same tree, and (given a
 * checkpoint and keys) that tree against the signed checkpoint. Problems carry the line number
 * and index where they show; the chain is followed through a bad line so that one changed
 * entry is reported once, where it is.
 */
export async function verifyLedger(lines: AsyncIterable<string> | Iterable<string>, opts: VerifyLedgerOptions = {}): Promise<VerifyLedgerReport> {
  const max = opts.maxProblems ?? 100;
  const problems: LedgerProblem[] = [];
  const problem = (line: number, index: number, message: string) => {
    if (problems.length < max) problems.push({ line, index, message });
  };

  let cp: Checkpoint | null = null;
  let signers: string[] = [];
  if (opts.checkpoint !== undefined) {
    if (!opts.verifiers || opts.verifiers.length === 0) throw new TlogError(ErrorCode.badInput, 'a checkpoint needs verifier keys to be checked');
    const opened = openCheckpoint(opts.checkpoint, opts.verifiers, 'checkpoint');
    cp = opened.checkpoint;
    signers = opened.signers;
  }

  let lineNo = 0;
  let entries = 0;
  let expected = 0;
  // The previous line's entry_hash; undefined when that line was unreadable (no link to check).
  let prevHash: string | null | undefined = null;
  let tree: { log: string; size: number; root: string } | null = null;
  for await (const raw of lines) {
    lineNo++;
    const text = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (text.trim() === '') {
      problem(lineNo, expected, 'empty line');
      continue;
    }
    entries++;
    let obj: unknown;
    try {
      obj = JSON.parse(text);
    } catch (e) {
      problem(lineNo, expected, `not JSON: ${(e as Error).message}`);
      expected++;
      prevHash = undefined;
      continue;
    }
    if (!isRecord(obj) || obj.v !== LEDGER_VERSION || obj.type !== LEDGER_ENTRY_TYPE) {
      problem(lineNo, expected, `not a v${LEDGER_VERSION} ${LEDGER_ENTRY_TYPE}`);
      expected++;
      prevHash = undefined;
      continue;
    }
    const stated = obj.entry_hash;
    const idx = isRecord(obj.proof) && Number.isSafeInteger(obj.proof.index) ? (obj.proof.index as number) : expected;
    const known = Object.keys(obj).filter((k) => !['v', 'type', 'proof', 'prev_hash', 'entry_hash'].includes(k));
    if (known.length > 0) problem(lineNo, idx, `unknown member(s) ${known.join(', ')}`);

    // 1. The entry's own hash.
    if (typeof stated !== 'string' || !HEX_HASH.test(stated)) problem(lineNo, idx, 'entry_hash is not 64 lowercase hex digits');
    else {
      let actual: string | null = null;
      try {
        actual = ledgerEntryHash(obj);
      } catch (e) {
        problem(lineNo, idx, `cannot canonicalise the entry: ${(e as Error).message}`);
      }
      if (actual !== null && actual !== stated)
        problem(lineNo, idx, `entry_hash ${stated} does not match the entry's contents (${actual}): the entry was changed`);
    }

    // 2. The link to the line before.
    const prev = obj.prev_hash;
    if (entries === 1) {
      if (prev !== null) problem(lineNo, idx, 'prev_hash of the first entry is not null: entries before it are missing');
    } else if (prevHash !== undefined && prev !== prevHash) {
      problem(lineNo, idx, `prev_hash does not link to line ${lineNo - 1}'s entry_hash: an entry was dropped, inserted or moved here`);
    }
    prevHash = typeof stated === 'string' ? stated : null;

    // 3. Position, data and proof.
    const p = readProof(obj.proof);
    if (typeof p === 'string') {
      problem(lineNo, idx, p);
      expected = Math.max(expected, idx + 1);
      continue;
    }
    const { proof } = p;
    if (proof.index !== expected) {
      if (proof.index > expected) {
        const gap = proof.index - expected;
        problem(
          lineNo,
          proof.index,
          `index ${proof.index} where ${expected} was expected: ${gap === 1 ? `entry ${expected} is` : `entries ${expected} to ${proof.index - 1} are`} missing or out of order`,
        );
      } else problem(lineNo, proof.index, `index ${proof.index} where ${expected} was expected: the entry is repeated or out of order`);
    }
    // Past a moved entry, carry on from the furthest index seen, so one move is not a cascade.
    expected = Math.max(expected, proof.index + 1);
    if (tree === null) tree = { log: proof.log, size: proof.tree_size, root: proof.root_hash };
    else if (proof.log !== tree.log || proof.tree_size !== tree.size || proof.root_hash !== tree.root) {
      problem(lineNo, proof.index, `proof is against another tree (${proof.log} size ${proof.tree_size}) than line 1 (${tree.log} size ${tree.size})`);
    }
    if (proof.index >= proof.tree_size) problem(lineNo, proof.index, `index ${proof.index} is not in a tree of size ${proof.tree_size}`);
    if (!equalHashes(leafHash(p.data), p.leaf)) problem(lineNo, proof.index, 'leaf_hash is not SHA-256(0x00 || data): the data was changed');
    else if (!verifyInclusion(proof.index, proof.tree_size, p.leaf, p.path, p.root)) {
      problem(lineNo, proof.index, 'the inclusion proof does not lead from leaf_hash to root_hash');
    }
  }

  if (tree && expected < tree.size) {
    problem(
      lineNo + 1,
      expected,
      `the ledger ends at index ${expected - 1}, but the tree has ${tree.size} entries: entries ${expected} to ${tree.size - 1} are missing`,
    );
  }
  if (cp) {
    if (!tree) {
      if (cp.treeSize > 0) problem(1, 0, `the ledger is empty, but the checkpoint has ${cp.treeSize} entries`);
    } else {
      if (tree.log !== cp.origin) problem(1, 0, `the ledger is of log ${tree.log}, the checkpoint of ${cp.origin}`);
      if (tree.size !== cp.treeSize || tree.root !== encodeBase64(cp.rootHash)) {
        problem(
          1,
          0,
          `the ledger's tree (size ${tree.size}, root ${tree.root}) is not the checkpoint's (size ${cp.treeSize}, root ${encodeBase64(cp.rootHash)})`,
        );
      }
    }
  }
  return {
    ok: problems.length === 0,
    entries,
    origin: tree?.log ?? null,
    treeSize: tree?.size ?? null,
    rootHash: tree?.root ?? null,
    head: prevHash ?? null,
    checkpointVerified: cp !== null,
    signers,
    problems,
  };
}
