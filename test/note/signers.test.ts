import { ml_dsa44 } from '@noble/post-quantum/ml-dsa.js';
import { describe, expect, test } from 'vitest';
import { ErrorCode } from '../../src/errors.js';
import { formatCheckpoint, parseCheckpoint } from '../../src/note/checkpoint.js';
import { SignatureType, formatKeyID, parseVerifierKey } from '../../src/note/keys.js';
import { formatNote, formatSignatureLine, openNote, parseNote, signNote } from '../../src/note/note.js';
import {
  MLDSA44_SIG_SIZE,
  cosignatureTimestamp,
  cosignatureV1Message,
  derivePublicKey,
  keyPair,
  subtreeV1Message,
  verifierFor,
} from '../../src/note/signers.js';
import { b64, hex, toB64, toHex, vectors } from '../vectors.js';
import { expectCode } from '../helpers/errors.js';
import { TS, fixedClock, logPair, mldsaKey, testPair, witnessKey, witnessPair } from './helpers.js';

const cp = vectors.checkpoint_1000;
const TEXT = cp.checkpoint_body;
const cos = vectors.cosignature_v1_ed25519;
const mlMsg = vectors.mldsa44_cosigned_message_bytes;
const ossl = vectors.mldsa44_cosignature_openssl;

/** Signature bytes (after the key ID) with one byte changed. */
const tweak = (sig: Uint8Array, at: number) => Uint8Array.from(sig, (b, i) => (i === at ? b ^ 0x01 : b));
/** Signature bytes with the u64 timestamp replaced. */
function withTs(sig: Uint8Array, ts: bigint): Uint8Array {
  const out = Buffer.from(sig);
  out.writeBigUInt64BE(ts, 0);
  return out;
}

describe('vectors: cosignature/v1 (0x04, Ed25519)', () => {
  test('signed message', () => {
    const m = cosignatureV1Message(TEXT, cos.timestamp);
    expect(Buffer.from(m).toString('utf8')).toBe(cos.signed_message);
    expect(toHex(m)).toBe(cos.signed_message_hex);
  });

  test('signature blob and line are byte-exact at the vector timestamp (injected clock)', () => {
    expect(cos.timestamp).toBe(TS);
    const pair = keyPair(witnessKey, fixedClock(cos.timestamp));
    const sig = pair.signer.sign(TEXT);
    const line = formatSignatureLine({ name: pair.signer.name, keyID: pair.signer.keyID, signature: sig });
    expect(line).toBe(cos.cosignature_line);
    expect(formatKeyID(pair.signer.keyID) + toHex(sig)).toBe(cos.signature_blob_hex);
    expect(sig).toHaveLength(72);
    expect(pair.vkey).toBe(vectors.witness_key.vkey);
  });

  test('the cosigned note is the signed note plus the line, and both signatures verify', () => {
    expect(vectors.go_self_checks.xmod_note_open_with_log_and_cosig_verifiers).toBe(true);
    expect(cos.cosigned_note).toBe(cp.signed_note + cos.cosignature_line);
    expect(formatNote(signNote(TEXT, [logPair.signer, witnessPair.signer]))).toBe(cos.cosigned_note);
    const o = openNote(cos.cosigned_note, [logPair.verifier, verifierFor(parseVerifierKey(vectors.witness_key.vkey))]);
    expect(o.verified.map((s) => s.name)).toEqual([vectors.log_key.name, vectors.witness_key.name]);
    expect(cosignatureTimestamp(SignatureType.cosignatureV1, o.verified[1]!.signature)).toBe(cos.timestamp);
  });

  test('the timestamp comes from the clock and is signed', () => {
    const pair = testPair('w.example', SignatureType.cosignatureV1, 5, fixedClock(1234567890));
    const sig = pair.signer.sign(TEXT);
    expect(cosignatureTimestamp(SignatureType.cosignatureV1, sig)).toBe(1234567890);
    expect(pair.verifier.verify(TEXT, sig)).toBe(true);
    expect(pair.verifier.verify(TEXT, withTs(sig, 1234567891n))).toBe(false);
    expect(pair.verifier.verify(TEXT, withTs(sig, 1n << 63n))).toBe(false);
    expect(pair.verifier.verify(TEXT, tweak(sig, 40))).toBe(false);
    expect(pair.verifier.verify(TEXT, sig.subarray(0, 71))).toBe(false);
    expect(pair.verifier.verify(TEXT, sig.subarray(8))).toBe(false);
    expect(pair.verifier.verify(TEXT.replace('1000', '1001'), sig)).toBe(false);
  });

  test('0x01 and 0x04 signatures are not interchangeable', () => {
    const seed = new Uint8Array(32).fill(7);
    const a = keyPair({ name: 'k.example', type: SignatureType.ed25519, seed });
    const c = keyPair({ name: 'k.example', type: SignatureType.cosignatureV1, seed }, fixedClock());
    expect(a.signer.keyID).not.toBe(c.signer.keyID);
    expect(c.verifier.verify(TEXT, a.signer.sign(TEXT))).toBe(false);
    expect(a.verifier.verify(TEXT, c.signer.sign(TEXT))).toBe(false);
    expect(a.verifier.verify(TEXT, c.signer.sign(TEXT).subarray(8))).toBe(false);
  });
});

describe('0x01 Ed25519 note signatures', () => {
  test('verify, and fail on any change', () => {
    const sig = logPair.signer.sign(TEXT);
    expect(sig).toHaveLength(64);
    expect(logPair.verifier.verify(TEXT, sig)).toBe(true);
    for (const at of [0, 31, 32, 63]) expect(logPair.verifier.verify(TEXT, tweak(sig, at))).toBe(false);
    expect(logPair.verifier.verify(TEXT + 'x\n', sig)).toBe(false);
    expect(logPair.verifier.verify(TEXT, Uint8Array.of(...sig, 0))).toBe(false);
  });

  test('non-canonical S (S + L) is refused (no ZIP-215 malleability)', () => {
    const sig = Buffer.from(logPair.signer.sign(TEXT));
    const L = (1n << 252n) + 27742317777372353535851937790883648493n;
    let s = 0n;
    for (let i = 31; i >= 0; i--) s = (s << 8n) | BigInt(sig[32 + i]!);
    let t = s + L;
    const mall = Buffer.from(sig);
    for (let i = 0; i < 32; i++) {
      mall[32 + i] = Number(t & 0xffn);
      t >>= 8n;
    }
    expect(t).toBe(0n);
    expect(logPair.verifier.verify(TEXT, mall)).toBe(false);
  });
});

describe('vectors: ML-DSA-44 subtree cosignature (0x06)', () => {
  test('subtree/v1 message bytes are byte-exact', () => {
    const m = subtreeV1Message({
      cosignerName: mlMsg.cosigner_name,
      timestamp: mlMsg.timestamp,
      origin: mlMsg.log_origin,
      start: mlMsg.start,
      end: mlMsg.end,
      hash: b64(mlMsg.hash_b64),
    });
    expect(toHex(m)).toBe(mlMsg.cosigned_message_hex);
    expect(ossl.signed_message_hex).toBe(mlMsg.cosigned_message_hex);
    expect(mlMsg.hash_b64).toBe(cp.root_b64);
    expect(mlMsg.end).toBe(cp.tree_size);
  });

  test('subtree/v1 refuses names over 255 bytes', () => {
    const p = { cosignerName: 'a'.repeat(256), timestamp: 0, origin: 'o', start: 0, end: 1, hash: new Uint8Array(32) };
    expectCode(() => subtreeV1Message(p), ErrorCode.badInput);
    expectCode(() => subtreeV1Message({ ...p, cosignerName: 'a', origin: 'é'.repeat(128) }), ErrorCode.badInput);
    expect(subtreeV1Message({ ...p, cosignerName: 'a'.repeat(255), origin: 'o'.repeat(255) })).toHaveLength(12 + 256 + 8 + 256 + 8 + 8 + 32);
  });

  test('the OpenSSL cosignature line verifies with our 0x06 verifier', () => {
    const line = ossl.example_cosignature_line.endsWith('\n') ? ossl.example_cosignature_line : ossl.example_cosignature_line + '\n';
    const v = verifierFor(parseVerifierKey(ossl.vkey));
    expect(v.type).toBe(SignatureType.mldsa44Subtree);
    const note = cp.signed_note + line;
    const parsed = parseNote(note);
    const sig = parsed.signatures[1]!;
    expect(formatKeyID(sig.keyID)).toBe(ossl.key_id_hex);
    expect(sig.signature).toHaveLength(8 + MLDSA44_SIG_SIZE);
    expect(cosignatureTimestamp(SignatureType.mldsa44Subtree, sig.signature)).toBe(mlMsg.timestamp);
    // The raw signature is over exactly the vector's message bytes.
    expect(ml_dsa44.verify(sig.signature.subarray(8), hex(ossl.signed_message_hex), v.publicKey)).toBe(true);
    expect(v.verify(TEXT, sig.signature)).toBe(true);
    const o = openNote(note, [logPair.verifier, v]);
    expect(o.verified).toHaveLength(2);
    // An Ed25519 witness verifier of the same name has another key ID: the line is unknown to it.
    expect(openNote(note, [witnessPair.verifier, logPair.verifier]).unknown).toHaveLength(1);
  });

  test('the OpenSSL cosignature fails when tampered', () => {
    const v = verifierFor(parseVerifierKey(ossl.vkey));
    const sig = parseNote(cp.signed_note + ossl.example_cosignature_line + (ossl.example_cosignature_line.endsWith('\n') ? '' : '\n')).signatures[1]!.signature;
    for (const at of [8, 100, 1000, 2427]) expect(v.verify(TEXT, tweak(sig, at))).toBe(false);
    expect(v.verify(TEXT, withTs(sig, BigInt(mlMsg.timestamp + 1)))).toBe(false);
    expect(v.verify(TEXT, withTs(sig, 0n))).toBe(false);
    expect(v.verify(TEXT.replace('1000', '1001'), sig)).toBe(false);
    expect(v.verify(TEXT.replace('example.com/log', 'example.com/lag'), sig)).toBe(false);
    expect(v.verify(TEXT, sig.subarray(0, sig.length - 1))).toBe(false);
    // The cosigner name is in the signed message: the same key under another name fails.
    const renamed = verifierFor({ ...parseVerifierKey(ossl.vkey), name: 'witness.example.com/w2' });
    expect(renamed.verify(TEXT, sig)).toBe(false);
    // In a note, the bad line from a known key rejects the whole note.
    const bad = formatNote({
      text: TEXT,
      signatures: [parseNote(cp.signed_note).signatures[0]!, { name: v.name, keyID: v.keyID, signature: tweak(sig, 500) }],
    });
    expectCode(() => openNote(bad, [logPair.verifier, v]), ErrorCode.verification);
  });

  test('our 0x06 signer: key from seed, timestamp from the clock, verifies', () => {
    const pair = keyPair(mldsaKey, fixedClock(TS));
    expect(pair.vkey).toBe(ossl.vkey);
    expect(toB64(derivePublicKey(mldsaKey))).toBe(ossl.public_key_b64);
    const sig = pair.signer.sign(TEXT);
    expect(sig).toHaveLength(8 + 2420);
    expect(cosignatureTimestamp(SignatureType.mldsa44Subtree, sig)).toBe(TS);
    expect(pair.verifier.verify(TEXT, sig)).toBe(true);
    // Pure ML-DSA over the subtree/v1 message with an empty context, as the vector states.
    expect(ml_dsa44.verify(sig.subarray(8), hex(mlMsg.cosigned_message_hex), pair.verifier.publicKey)).toBe(true);
    expect(pair.verifier.verify(TEXT, tweak(sig, 9))).toBe(false);
  });

  test('extension lines are not covered by subtree/v1: refused to sign, and never verify', () => {
    const pair = keyPair(mldsaKey, fixedClock(TS));
    const c = parseCheckpoint(TEXT);
    const withExt = formatCheckpoint({ ...c, extensions: ['extension'] });
    expectCode(() => pair.signer.sign(withExt), ErrorCode.badInput);
    // A signature over the plain checkpoint does not carry over to one with extensions.
    const sig = pair.signer.sign(TEXT);
    expect(pair.verifier.verify(withExt, sig)).toBe(false);
    // Text that is not a checkpoint cannot carry a 0x06 signature.
    expectCode(() => pair.signer.sign('hello\n'), ErrorCode.badInput);
    expect(pair.verifier.verify('hello\n', sig)).toBe(false);
  });
});

describe('cosignatureTimestamp', () => {
  test('reads the u64 prefix of well-formed cosignatures only', () => {
    const sig = witnessPair.signer.sign(TEXT);
    expect(cosignatureTimestamp(SignatureType.cosignatureV1, sig)).toBe(TS);
    expect(cosignatureTimestamp(SignatureType.cosignatureV1, sig.subarray(1))).toBeNull();
    expect(cosignatureTimestamp(SignatureType.ed25519, sig)).toBeNull();
    expect(cosignatureTimestamp(SignatureType.cosignatureV1, withTs(sig, 1n << 63n))).toBeNull();
    expect(cosignatureTimestamp(SignatureType.mldsa44Subtree, sig)).toBeNull();
  });
});
