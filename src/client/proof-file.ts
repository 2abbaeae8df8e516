/**
 * c2sp.org/tlog-proof@v1: an offline-verifiable proof that an entry is in a log, made of a
 * (cosigned) checkpoint, the entry's index and its inclusion proof. The entry itself is not in
 * the file; the verifier brings it (or its leaf hash).
 *
 *   c2sp.org/tlog-proof@v1
 *   extra <base64>            optional, opaque, NOT authenticated
 *   index <n>
 *   <base64 hash>             zero or more: RFC 6962 PATH, leaf's sibling first
 *
 *   <checkpoint note, verbatim>
 *
 * Pure: no I/O.
 */
import { parseCanonicalDecimal } from '../decimal.js';
import { TlogError, ErrorCode } from '../errors.js';
import { HASH_SIZE, leafHash as hashLeaf } from '../merkle/hash.js';
import { verifyInclusion } from '../merkle/proof.js';
import { decodeBase64Strict, encodeBase64 } from '../note/note.js';
import type { TlogSource } from './source.js';
import type { TileFetcher } from './tiles.js';
import { proveLeafHash, verifyCheckpointNote, type CheckpointTrust, type TrustedCheckpoint } from './verify.js';

export const TLOG_PROOF_HEADER = 'c2sp.org/tlog-proof@v1';
/** A tree of at most 2^63 leaves has inclusion proofs of at most 63 hashes. */
const MAX_PROOF_HASHES = 63;

export interface TlogProof {
  /** Opaque application data; c2sp.org/tlog-proof: applications MUST NOT implicitly trust it. */
  readonly extra?: Uint8Array;
  readonly index: number;
  readonly proof: readonly Uint8Array[];
  /** The checkpoint note, verbatim, with its signatures and cosignatures. */
  readonly checkpoint: string;
}

function malformed(why: string): TlogError {
  return new TlogError(ErrorCode.badInput, `malformed tlog-proof: ${why}`);
}

export function formatTlogProof(p: TlogProof): string {
  if (!Number.isSafeInteger(p.index) || p.index < 0) throw new Error(`formatTlogProof: bad index ${p.index}`);
  if (p.proof.some((h) => h.length !== HASH_SIZE)) throw new Error('formatTlogProof: a proof hash is not 32 bytes');
  const lines = [TLOG_PROOF_HEADER];
  if (p.extra !== undefined) lines.push(`extra ${encodeBase64(p.extra)}`);
  lines.push(`index ${p.index}`, ...p.proof.map(encodeBase64));
  return `${lines.join('\n')}\n\n${p.checkpoint}`;
}

/** Parses a tlog-proof file; checks its shape only (see verifyTlogProof for the rest). */
export function parseTlogProof(input: string | Uint8Array): TlogProof {
  let text: string;
  try {
    text = typeof input === 'string' ? input : new TextDecoder('utf-8', { fatal: true }).decode(input);
  } catch {
    throw malformed('not valid UTF-8');
  }
  const lines = text.split('\n');
  if (lines[0] !== TLOG_PROOF_HEADER) throw malformed(`first line is not ${TLOG_PROOF_HEADER}`);
  let i = 1;
  let extra: Uint8Array | undefined;
  if (lines[i]?.startsWith('extra ')) {
    const b = decodeBase64Strict(lines[i]!.slice('extra '.length));
    if (!b) throw malformed('extra is not base64');
    extra = b;
    i++;
  }
  const indexLine = lines[i] ?? '';
  if (!indexLine.startsWith('index ')) throw malformed(`line ${i + 1} is not "index <n>"`);
  const index = parseCanonicalDecimal(indexLine.slice('index '.length));
  if (index === null) throw malformed(`index ${JSON.stringify(indexLine.slice(6))} is not a canonical decimal`);
  i++;
  const proof: Uint8Array[] = [];
  for (; i < lines.length && lines[i] !== ''; i++) {
    const h = decodeBase64Strict(lines[i]!);
    if (!h || h.length !== HASH_SIZE) throw malformed(`line ${i + 1} is not base64 of a 32-byte hash`);
    proof.push(h);
    if (proof.length > MAX_PROOF_HASHES) throw malformed(`more than ${MAX_PROOF_HASHES} proof hashes`);
  }
  if (i >= lines.length) throw malformed('no blank line before the checkpoint');
  const checkpoint = lines.slice(i + 1).join('\n');
  if (checkpoint === '') throw malformed('no checkpoint after the blank line');
  return { ...(extra !== undefined ? { extra } : {}), index, proof, checkpoint };
}

/** What the verifier brings: the entry, or its RFC 6962 leaf hash. */
export type ProvenLeaf = { readonly entry: Uint8Array } | { readonly leafHash: Uint8Array };

export interface VerifiedTlogProof {
  readonly index: number;
  readonly leafHash: Uint8Array;
  readonly checkpoint: TrustedCheckpoint;
  /** Unauthenticated: present as the file has it. */
  readonly extra?: Uint8Array;
}

/**
 * Verifies a tlog-proof offline: the checkpoint against the log keys and policy, then the
 * inclusion of the leaf at the index against the checkpoint's root. Throws verification_failed
 * (bad_input for a malformed file).
 */
export function verifyTlogProof(input: string | Uint8Array | TlogProof, leaf: ProvenLeaf, trust: CheckpointTrust): VerifiedTlogProof {
  const p = typeof input === 'object' && 'index' in input ? input : parseTlogProof(input);
  const cp = verifyCheckpointNote(p.checkpoint, trust, 'tlog-proof checkpoint');
  const h = 'entry' in leaf ? hashLeaf(leaf.entry) : leaf.leafHash;
  if (h.length !== HASH_SIZE) throw new TlogError(ErrorCode.badInput, `leaf hash is ${h.length} bytes, want ${HASH_SIZE}`);
  const size = cp.checkpoint.treeSize;
  if (p.index >= size) throw new TlogError(ErrorCode.verification, `tlog-proof: index ${p.index} is not in the tree of size ${size}`);
  if (!verifyInclusion(p.index, size, h, p.proof, cp.checkpoint.rootHash)) {
    throw new TlogError(ErrorCode.verification, `tlog-proof: the leaf is not included at index ${p.index} in the checkpoint of size ${size}`);
  }
  return { index: p.index, leafHash: h, checkpoint: cp, ...(p.extra !== undefined ? { extra: p.extra } : {}) };
}

/** Builds a tlog-proof for entry `index` of a verified checkpoint, from the log's tiles. */
export async function createTlogProof(src: TlogSource | TileFetcher, cp: TrustedCheckpoint, index: number, opts: { extra?: Uint8Array } = {}): Promise<string> {
  const { proof } = await proveLeafHash(src, cp, index);
  return formatTlogProof({ ...(opts.extra !== undefined ? { extra: opts.extra } : {}), index, proof, checkpoint: cp.note });
}
