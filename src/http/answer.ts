/**
 * The JSON answer of an append, written straight to bytes:
 *
 *   {"index":I,"leafHash":"<b64>","duplicate":D,"treeSize":T,"checkpoint":"<note>","inclusionProof":["<b64>",...]}
 *
 * byte for byte what `JSON.stringify` gives for that object. Every answer of a batch carries the
 * same ~3.5 KB checkpoint; its JSON string is encoded once per checkpoint, not once per answer
 * (escaping its newlines and encoding its "—" to UTF-8 cost more than the rest of the request),
 * and the ~18 hashes are base64-encoded into the answer without a string each. On a socket the
 * answer goes out in parts (appendAnswerParts), so that checkpoint is not even copied.
 */
import type { AppendResult } from '../log/log.js';

const B64 = Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/', 'latin1');
const PAD = 0x3d; // '='
const QUOTE = 0x22;
const COMMA = 0x2c;

/** RFC 4648 4 (standard alphabet, padded) length of n bytes. */
function base64Length(n: number): number {
  return Math.ceil(n / 3) * 4;
}

/** Writes `b` in standard padded base64 at `at`; returns the offset after it. */
export function writeBase64(out: Uint8Array, at: number, b: Uint8Array): number {
  const n = b.length;
  const whole = n - (n % 3);
  let i = 0;
  for (; i < whole; i += 3) {
    const v = (b[i]! << 16) | (b[i + 1]! << 8) | b[i + 2]!;
    out[at] = B64[v >>> 18]!;
    out[at + 1] = B64[(v >>> 12) & 63]!;
    out[at + 2] = B64[(v >>> 6) & 63]!;
    out[at + 3] = B64[v & 63]!;
    at += 4;
  }
  if (i < n) {
    const v = (b[i]! << 16) | (i + 1 < n ? b[i + 1]! << 8 : 0);
    out[at] = B64[v >>> 18]!;
    out[at + 1] = B64[(v >>> 12) & 63]!;
    out[at + 2] = i + 1 < n ? B64[(v >>> 6) & 63]! : PAD;
    out[at + 3] = PAD;
    at += 4;
  }
  return at;
}

/** JSON string literals of recent checkpoints, UTF-8: a few, for a few tenants appending at once. */
const noteJSON = new Map<string, Buffer>();
const NOTE_CACHE = 8;

function checkpointJSON(note: string): Buffer {
  let j = noteJSON.get(note);
  if (!j) {
    j = Buffer.from(JSON.stringify(note), 'utf8');
    noteJSON.set(note, j);
    if (noteJSON.size > NOTE_CACHE) noteJSON.delete(noteJSON.keys().next().value!);
  }
  return j;
}

/**
 * The append answer in three parts, in order: the head up to `"checkpoint":`, the checkpoint's
 * JSON string (the same Buffer for every answer carrying that checkpoint: never write into it),
 * and the rest. Written to a socket one after the other, the answer costs no copy of the
 * checkpoint and no fresh memory for it: only head and tail (~1 KB) are new bytes, cut from
 * node's Buffer pool.
 */
export interface AnswerParts {
  readonly head: Buffer;
  readonly checkpoint: Buffer;
  readonly tail: Buffer;
  readonly length: number;
}

export function appendAnswerParts(r: AppendResult): AnswerParts {
  const cp = checkpointJSON(r.checkpoint);
  const head = `{"index":${r.index},"leafHash":"`;
  const mid = `","duplicate":${r.duplicate},"treeSize":${r.treeSize},"checkpoint":`;
  const proofHead = ',"inclusionProof":[';
  let proofBytes = 0;
  for (const h of r.proof) proofBytes += base64Length(h.length) + 3; // quotes and a comma
  if (r.proof.length) proofBytes -= 1;
  const headSize = head.length + base64Length(r.leafHash.length) + mid.length;
  const size = headSize + proofHead.length + proofBytes + 2;
  const out = Buffer.allocUnsafe(size);
  let at = out.write(head, 0, 'latin1');
  at = writeBase64(out, at, r.leafHash);
  at += out.write(mid, at, 'latin1');
  // Broken arithmetic here is a bug: never send a short or overlong answer.
  if (at !== headSize) throw new Error(`append answer: wrote ${at} bytes of ${headSize} before the checkpoint`);
  at += out.write(proofHead, at, 'latin1');
  for (let i = 0; i < r.proof.length; i++) {
    if (i) out[at++] = COMMA;
    out[at++] = QUOTE;
    at = writeBase64(out, at, r.proof[i]!);
    out[at++] = QUOTE;
  }
  out[at++] = 0x5d; // ]
  out[at++] = 0x7d; // }
  if (at !== size) throw new Error(`append answer: wrote ${at} bytes of ${size}`);
  return { head: out.subarray(0, headSize), checkpoint: cp, tail: out.subarray(headSize), length: size + cp.length };
}

/** The append answer as UTF-8 JSON (see the top of this file), in one piece. */
export function appendAnswer(r: AppendResult): Uint8Array<ArrayBuffer> {
  const p = appendAnswerParts(r);
  return Buffer.concat([p.head, p.checkpoint, p.tail], p.length) as Buffer<ArrayBuffer>;
}
