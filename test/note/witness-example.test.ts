/**
 * The witness_add_checkpoint_example vector: a c2sp.org/tlog-witness add-checkpoint request
 * from size 1000 to 70000, checked with the pure modules only (the HTTP witness is tested
 * elsewhere): the body parses, its proof verifies with the roots, its checkpoint opens with the
 * log key, and the witness's cosignature at the vector timestamp is byte-exact.
 */
import { describe, expect, test } from 'vitest';
import { parseCanonicalDecimal } from '../../src/decimal.js';
import { verifyConsistency } from '../../src/merkle/proof.js';
import { formatCheckpoint, parseCheckpoint } from '../../src/note/checkpoint.js';
import { formatKeyID } from '../../src/note/keys.js';
import { decodeBase64Strict, formatNote, formatSignatureLine, openNote, parseNote, signNote } from '../../src/note/note.js';
import { keyPair } from '../../src/note/signers.js';
import { b64, vectors } from '../vectors.js';
import { fixedClock, logPair, witnessKey, witnessPair } from './helpers.js';

const ex = vectors.witness_add_checkpoint_example;
const root1000 = b64(vectors.checkpoint_1000.root_b64);

/** Splits an add-checkpoint body: "old N", proof lines, a blank line, the signed checkpoint. */
function parseAddCheckpoint(body: string): { old: number; proof: Uint8Array[]; note: string } {
  const blank = body.indexOf('\n\n');
  if (blank < 0) throw new Error('no blank line');
  const head = body.slice(0, blank).split('\n');
  const m = /^old (.*)$/.exec(head[0]!);
  const old = m ? parseCanonicalDecimal(m[1]!) : null;
  if (old === null) throw new Error('bad old line');
  const proof = head.slice(1).map((l) => {
    const h = decodeBase64Strict(l);
    if (!h || h.length !== 32) throw new Error('bad proof line');
    return h;
  });
  if (proof.length > 63) throw new Error('proof too long');
  return { old, proof, note: body.slice(blank + 2) };
}

describe('vectors: witness add-checkpoint example', () => {
  const req = parseAddCheckpoint(ex.add_checkpoint_request_body);

  test('request old line and proof lines', () => {
    expect(req.old).toBe(1000);
    const want = vectors.consistency_proofs.find((p) => p.old_size === 1000 && p.new_size === 70000)!;
    expect(req.proof.map((p) => Buffer.from(p).toString('base64'))).toEqual(want.proof_b64);
  });

  test('request checkpoint: the signed 70000 checkpoint, opened with the log key', () => {
    expect(req.note).toBe(ex.signed_checkpoint_70000);
    const o = openNote(req.note, [logPair.verifier]);
    const sig = o.verified[0]!;
    expect(formatKeyID(sig.keyID)).toBe(vectors.log_key.key_id_hex);
    const c = parseCheckpoint(o.note.text);
    expect(c.origin).toBe(vectors.checkpoint_1000.origin);
    expect(c.treeSize).toBe(70000);
    expect(Buffer.from(c.rootHash).toString('base64')).toBe(vectors.roots.find((r) => r.size === 70000)!.root_b64);
    // The log's signature over it is byte-exact too (Ed25519 is deterministic).
    expect(formatNote(signNote(formatCheckpoint(c), [logPair.signer]))).toBe(ex.signed_checkpoint_70000);
  });

  test('request consistency proof verifies from 1000 to 70000 with the roots', () => {
    const c = parseCheckpoint(parseNote(req.note).text);
    expect(verifyConsistency(req.old, c.treeSize, root1000, c.rootHash, req.proof)).toBe(true);
    // ...and not with a wrong old size, a wrong old root, or a truncated proof.
    expect(verifyConsistency(999, c.treeSize, root1000, c.rootHash, req.proof)).toBe(false);
    expect(verifyConsistency(req.old, c.treeSize, c.rootHash, c.rootHash, req.proof)).toBe(false);
    expect(verifyConsistency(req.old, c.treeSize, root1000, c.rootHash, req.proof.slice(0, -1))).toBe(false);
  });

  test('the witness response: cosignature/v1 at the vector timestamp, byte-exact', () => {
    const text = parseNote(req.note).text;
    const w = keyPair(witnessKey, fixedClock(vectors.cosignature_v1_ed25519.timestamp));
    const line = formatSignatureLine({ name: w.signer.name, keyID: w.signer.keyID, signature: w.signer.sign(text) });
    expect(line).toBe(ex.expected_200_response_body_at_timestamp);
  });

  test('the cosigned 70000 note opens with both keys', () => {
    expect(ex.cosigned_checkpoint_70000).toBe(ex.signed_checkpoint_70000 + ex.expected_200_response_body_at_timestamp);
    const o = openNote(ex.cosigned_checkpoint_70000, [logPair.verifier, witnessPair.verifier]);
    expect(o.verified.map((s) => s.name)).toEqual([vectors.log_key.name, vectors.witness_key.name]);
    // A cosignature over 1000 does not verify over 70000.
    const cos1000 = parseNote(vectors.cosignature_v1_ed25519.cosigned_note).signatures[1]!;
    expect(witnessPair.verifier.verify(o.note.text, cos1000.signature)).toBe(false);
  });
});
