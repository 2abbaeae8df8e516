/** Keys and small helpers shared by the note tests. */
import { type PrivateKey, SignatureType, parsePrivateKey } from '../../src/note/keys.js';
import { type Clock, type KeyPair, derivePublicKey, keyPair } from '../../src/note/signers.js';
import { hex, vectors } from '../vectors.js';

export const logKey: PrivateKey = parsePrivateKey(vectors.log_key.skey_TEST_ONLY, derivePublicKey);
export const witnessKey: PrivateKey = parsePrivateKey(vectors.witness_key.skey_TEST_ONLY, derivePublicKey);
export const mldsaKey: PrivateKey = {
  name: vectors.mldsa44_cosignature_openssl.cosigner_name,
  type: SignatureType.mldsa44Subtree,
  seed: hex(vectors.mldsa44_cosignature_openssl.mldsa44_seed_hex),
};

export const TS = vectors.cosignature_v1_ed25519.timestamp;
export const fixedClock =
  (ts: number = TS): Clock =>
  () =>
    ts;

export const logPair: KeyPair = keyPair(logKey);
export const witnessPair: KeyPair = keyPair(witnessKey, fixedClock());

/** A key pair from a deterministic seed byte. */
export function testPair(name: string, type: PrivateKey['type'], seedByte: number, clock: Clock = fixedClock()): KeyPair {
  return keyPair({ name, type, seed: new Uint8Array(32).fill(seedByte) }, clock);
}
