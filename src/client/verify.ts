/**
 * The verifying client: fetch a checkpoint and verify it against the log's keys (and a witness
 * policy), prove an entry's inclusion, prove two checkpoints consistent. Works against any
 * tlog-tiles log through a TlogSource; nothing the log serves is trusted until it verifies
 * against a signed root.
 */
import { TlogError, ErrorCode } from '../errors.js';
import { EMPTY_ROOT, equalHashes, leafHash } from '../merkle/hash.js';
import { consistencyProof, inclusionProof, verifyConsistency, verifyInclusion } from '../merkle/proof.js';
import type { Checkpoint } from '../note/checkpoint.js';
import { parseVerifierKey } from '../note/keys.js';
import { encodeBase64, type NoteVerifier } from '../note/note.js';
import { verifierFor } from '../note/signers.js';
import { verifyCheckpoint } from '../note/verified-checkpoint.js';
import type { WitnessPolicy } from '../note/witness-policy.js';
import { TILE_WIDTH } from '../tiles/layout.js';
import type { TlogSource } from './source.js';
import { TileFetcher, tileFetcher } from './tiles.js';

/** What a checkpoint must satisfy to be trusted. */
export interface CheckpointTrust {
  /**
   * The log's keys: verifiers or vkey strings. May be empty when the policy lists `log` keys.
   * c2sp.org/signed-note: signatures from other keys are ignored.
   */
  readonly logKeys: readonly (NoteVerifier | string)[];
  /** When given, the witnesses' cosignatures must satisfy its quorum. */
  readonly policy?: WitnessPolicy;
  /** When given, the checkpoint's origin must be exactly this. */
  readonly origin?: string;
}

/** A checkpoint whose signatures (and policy) verified. */
export interface TrustedCheckpoint {
  readonly checkpoint: Checkpoint;
  /** The signed note exactly as the log served it (with every signature line). */
  readonly note: string;
  /** Policy witnesses whose cosignatures verified (empty without a policy). */
  readonly witnesses: readonly string[];
}

/**
 * Two signed checkpoints of one origin that could not be proved consistent: the evidence of a
 * fork (or of a log that rolled back, or serves tiles that do not match what it signed).
 * `older` is the one seen (accepted) first, `newer` the one that came after it.
 */
export class InconsistentCheckpointsError extends TlogError {
  constructor(
    readonly older: TrustedCheckpoint,
    readonly newer: TrustedCheckpoint,
    why: string,
  ) {
    super(
      ErrorCode.verification,
      `checkpoints of ${older.checkpoint.origin} at sizes ${older.checkpoint.treeSize} and ${newer.checkpoint.treeSize} are not consistent: ${why}`,
    );
    this.name = 'InconsistentCheckpointsError';
  }
}

function fail(why: string): never {
  throw new TlogError(ErrorCode.verification, why);
}

/** Verifiers for the trust's log keys (vkey strings parsed), plus the policy's `log` keys. */
export function logVerifiers(trust: CheckpointTrust): NoteVerifier[] {
  const out = trust.logKeys.map((k) => (typeof k === 'string' ? verifierFor(parseVerifierKey(k)) : k));
  if (trust.policy) out.push(...trust.policy.logKeys);
  if (out.length === 0) throw new TlogError(ErrorCode.badInput, 'no log key to verify checkpoints with');
  return out;
}

/**
 * Verifies a signed checkpoint note: a log signature must verify (a known key whose signature
 * fails rejects it), the policy's quorum of witnesses must have cosigned, the origin must match.
 * Pure: no I/O.
 */
export function verifyCheckpointNote(note: string | Uint8Array, trust: CheckpointTrust, what = 'checkpoint'): TrustedCheckpoint {
  const text = typeof note === 'string' ? note : new TextDecoder('utf-8', { fatal: false }).decode(note);
  const verifiers = logVerifiers(trust);
  let v;
  try {
    v = verifyCheckpoint(note, verifiers, trust.policy);
  } catch (e) {
    fail(`${what}: ${(e as Error).message}`);
  }
  // RFC 6962 2.1: the empty tree has one root; a signed size-0 checkpoint with another is bogus.
  if (v.checkpoint.treeSize === 0 && !equalHashes(v.checkpoint.rootHash, EMPTY_ROOT)) fail(`${what}: size 0 with a root other than the empty tree's`);
  if (trust.origin !== undefined && v.checkpoint.origin !== trust.origin) {
    fail(`${what}: origin is ${JSON.stringify(v.checkpoint.origin)}, want ${JSON.stringify(trust.origin)}`);
  }
  return { checkpoint: v.checkpoint, note: text, witnesses: v.witnesses };
}

/** Fetches `<prefix>/checkpoint` and verifies it. */
export async function fetchCheckpoint(src: TlogSource | TileFetcher, trust: CheckpointTrust): Promise<TrustedCheckpoint> {
  const s = src instanceof TileFetcher ? src.src : src;
  const data = await s.get('checkpoint');
  if (!data) throw new TlogError(ErrorCode.notFound, `${s.where}/checkpoint does not exist`);
  return verifyCheckpointNote(data, trust, `${s.where}/checkpoint`);
}

export interface InclusionResult {
  readonly index: number;
  readonly treeSize: number;
  /** The entry as the log's bundle holds it. */
  readonly entry: Uint8Array;
  /** RFC 6962 leaf hash of the entry. */
  readonly leafHash: Uint8Array;
  /** RFC 6962 PATH(index, D[treeSize]), leaf side first; verified against the checkpoint root. */
  readonly proof: Uint8Array[];
}

/**
 * Proves entry `index` is in the tree of a verified checkpoint: reads the entry from its bundle,
 * hashes it, builds the inclusion proof from tiles and verifies it against the root. The proof
 * authenticates the entry, so a tampered bundle or tile fails here.
 */
export async function proveInclusion(src: TlogSource | TileFetcher, cp: TrustedCheckpoint, index: number): Promise<InclusionResult> {
  const tiles = tileFetcher(src);
  const size = cp.checkpoint.treeSize;
  if (!(Number.isSafeInteger(index) && index >= 0 && index < size)) {
    throw new TlogError(ErrorCode.badInput, `index ${index} is not in the tree of size ${size}`);
  }
  const bundle = await tiles.entryBundle(Math.floor(index / TILE_WIDTH), size);
  const entry = bundle[index % TILE_WIDTH]!;
  const h = leafHash(entry);
  const proof = await tiles.withNodes(size, (node) => inclusionProof(index, size, node));
  if (!verifyInclusion(index, size, h, proof, cp.checkpoint.rootHash)) {
    fail(`entry ${index} of ${tiles.src.where} is not included in the checkpoint of size ${size}: its bundle or the tiles do not match the signed root`);
  }
  return { index, treeSize: size, entry, leafHash: h, proof };
}

/** Proves the leaf hash at `index` is in the tree (no entry bundle needed): the hash from tile/0. */
export async function proveLeafHash(
  src: TlogSource | TileFetcher,
  cp: TrustedCheckpoint,
  index: number,
): Promise<{ leafHash: Uint8Array; proof: Uint8Array[] }> {
  const tiles = tileFetcher(src);
  const size = cp.checkpoint.treeSize;
  if (!(Number.isSafeInteger(index) && index >= 0 && index < size)) {
    throw new TlogError(ErrorCode.badInput, `index ${index} is not in the tree of size ${size}`);
  }
  const { h, proof } = await tiles.withNodes(size, (node) => ({ h: node(0, index), proof: inclusionProof(index, size, node) }));
  if (!verifyInclusion(index, size, h, proof, cp.checkpoint.rootHash))
    fail(`leaf ${index} of ${tiles.src.where} does not verify against the checkpoint of size ${size}`);
  return { leafHash: h, proof };
}

/**
 * Proves `older` and `newer` (verified checkpoints of one origin) consistent, from the tiles of
 * the newer tree, and verifies the proof. A same-size pair with different roots, a newer one
 * that is smaller, or a proof that fails are all InconsistentCheckpointsError: if both are signed
 * by the log, together they are evidence that it forked (or that its tiles are bad).
 */
export async function proveConsistency(src: TlogSource | TileFetcher, older: TrustedCheckpoint, newer: TrustedCheckpoint): Promise<Uint8Array[]> {
  const a = older.checkpoint;
  const b = newer.checkpoint;
  if (a.origin !== b.origin) throw new TlogError(ErrorCode.badInput, `checkpoints of different origins: ${a.origin} and ${b.origin}`);
  if (a.treeSize > b.treeSize) throw new InconsistentCheckpointsError(older, newer, `the newer checkpoint is smaller (${b.treeSize} < ${a.treeSize})`);
  if (a.treeSize === b.treeSize) {
    if (!equalHashes(a.rootHash, b.rootHash)) {
      throw new InconsistentCheckpointsError(older, newer, `two roots for one size: ${encodeBase64(a.rootHash)} and ${encodeBase64(b.rootHash)}`);
    }
    return [];
  }
  const tiles = tileFetcher(src);
  const proof = a.treeSize === 0 ? [] : await tiles.withNodes(b.treeSize, (node) => consistencyProof(a.treeSize, b.treeSize, node));
  if (!verifyConsistency(a.treeSize, b.treeSize, a.rootHash, b.rootHash, proof)) {
    throw new InconsistentCheckpointsError(older, newer, `the consistency proof built from ${tiles.src.where} does not verify`);
  }
  return proof;
}
