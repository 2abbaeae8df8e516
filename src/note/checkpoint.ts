/**
 * c2sp.org/tlog-checkpoint bodies: origin, tree size and root hash lines, then optional
 * extension lines. Pure: no I/O.
 */
import { TlogError, ErrorCode } from '../errors.js';
import { parseCanonicalDecimal } from '../decimal.js';
import { HASH_SIZE } from '../merkle/hash.js';
import { decodeBase64Strict, encodeBase64 } from './note.js';

export interface Checkpoint {
  readonly origin: string;
  readonly treeSize: number;
  readonly rootHash: Uint8Array;
  /** Opaque, non-empty extension lines (without their "\n"). NOT RECOMMENDED by the spec. */
  readonly extensions: readonly string[];
}

function malformed(why: string): TlogError {
  return new TlogError(ErrorCode.badInput, `malformed checkpoint: ${why}`);
}

/** Parses the text of a checkpoint note (everything before the blank line). */
export function parseCheckpoint(text: string): Checkpoint {
  if (!text.endsWith('\n')) throw malformed('text does not end in a newline');
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) throw malformed('want origin, size and root lines');
  const [origin, sizeLine, rootLine, ...extensions] = lines as [string, string, string, ...string[]];
  if (origin.length === 0) throw malformed('origin line is empty');
  const treeSize = parseCanonicalDecimal(sizeLine);
  if (treeSize === null) throw malformed(`size ${JSON.stringify(sizeLine)} is not a canonical decimal`);
  const rootHash = decodeBase64Strict(rootLine);
  if (!rootHash || rootHash.length !== HASH_SIZE) throw malformed('root is not base64 of 32 bytes');
  for (const e of extensions) if (e.length === 0) throw malformed('empty extension line');
  return { origin, treeSize, rootHash, extensions };
}

export function formatCheckpoint(c: Checkpoint): string {
  if (c.origin.length === 0 || c.origin.includes('\n')) throw new Error('formatCheckpoint: bad origin');
  if (!Number.isSafeInteger(c.treeSize) || c.treeSize < 0) throw new Error('formatCheckpoint: bad size');
  if (c.rootHash.length !== HASH_SIZE) throw new Error('formatCheckpoint: bad root');
  const ext = c.extensions.map((e) => {
    if (e.length === 0 || e.includes('\n')) throw new Error('formatCheckpoint: bad extension line');
    return `${e}\n`;
  });
  return `${c.origin}\n${c.treeSize}\n${encodeBase64(c.rootHash)}\n${ext.join('')}`;
}
