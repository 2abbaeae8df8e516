/**
 * c2sp.org/tlog-witness add-checkpoint request bodies. Pure: no I/O, no clock.
 *
 *   old <size>\n            canonical decimal, 0 allowed
 *   <base64 hash>\n         0 to 63 RFC 6962 consistency proof lines, old -> new
 *   \n
 *   <signed checkpoint>     a signed note, possibly with several signatures
 */
import { parseCanonicalDecimal } from '../src/decimal.js';
import { HASH_SIZE } from '../src/merkle/hash.js';
import { decodeBase64Strict } from '../src/note/note.js';

/** RFC 6962: a consistency proof has at most 63 hashes for sizes below 2^64. */
export const MAX_PROOF_LINES = 63;

export interface AddCheckpointRequest {
  readonly old: number;
  readonly proof: readonly Uint8Array[];
  /** The signed checkpoint note, unparsed. */
  readonly note: string;
}

/** Parses a request body; returns the reason it is malformed instead of throwing. */
export function parseAddCheckpointRequest(body: string): AddCheckpointRequest | { error: string } {
  // Proof lines are never empty, so the first blank line ends the header.
  const blank = body.indexOf('\n\n');
  if (blank < 0) return { error: 'no blank line between the proof and the checkpoint' };
  const head = body.slice(0, blank).split('\n');
  const m = /^old ([^ ]*)$/.exec(head[0]!);
  if (!m) return { error: 'first line is not "old <size>"' };
  // c2sp.org/tlog-witness: old is a canonical decimal; "01" or "+1" is malformed (400).
  const old = parseCanonicalDecimal(m[1]!);
  if (old === null) return { error: `old size ${JSON.stringify(m[1]!.slice(0, 32))} is not a canonical decimal` };
  const lines = head.slice(1);
  if (lines.length > MAX_PROOF_LINES) return { error: `proof has ${lines.length} lines, more than ${MAX_PROOF_LINES}` };
  const proof: Uint8Array[] = [];
  for (const [i, line] of lines.entries()) {
    const h = decodeBase64Strict(line);
    if (!h || h.length !== HASH_SIZE) return { error: `proof line ${i + 1} is not base64 of a 32-byte hash` };
    proof.push(h);
  }
  return { old, proof, note: body.slice(blank + 2) };
}

/** Formats a request body (clients, tests and the benchmark). */
export function formatAddCheckpointRequest(old: number, proof: readonly Uint8Array[], note: string): string {
  return `old ${old}\n${proof.map((p) => Buffer.from(p).toString('base64') + '\n').join('')}\n${note}`;
}
