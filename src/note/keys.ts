/**
 * c2sp.org/signed-note keys: key IDs, verifier keys (vkeys) and the private-key text form.
 * Pure: no I/O. Randomness only when a caller asks for a new key.
 */
import { randomBytes } from 'node:crypto';
import { TlogError, ErrorCode } from '../errors.js';
import { sha256 } from '../merkle/hash.js';
import { checkKeyName, decodeBase64Strict, encodeBase64 } from './note.js';

/** c2sp.org/signed-note signature types we implement. */
export const SignatureType = {
  /** Ed25519 over the note text. */
  ed25519: 0x01,
  /** c2sp.org/tlog-cosignature cosignature/v1, Ed25519 over a timestamped message. */
  cosignatureV1: 0x04,
  /** c2sp.org/tlog-cosignature v1.1: timestamped ML-DSA-44 (sub)tree cosignature. */
  mldsa44Subtree: 0x06,
} as const;
export type SignatureType = (typeof SignatureType)[keyof typeof SignatureType];

export const ED25519_PUBLIC_KEY_SIZE = 32;
export const MLDSA44_PUBLIC_KEY_SIZE = 1312;
export const SEED_SIZE = 32;

const PUBLIC_KEY_SIZES: Record<SignatureType, number> = {
  [SignatureType.ed25519]: ED25519_PUBLIC_KEY_SIZE,
  [SignatureType.cosignatureV1]: ED25519_PUBLIC_KEY_SIZE,
  [SignatureType.mldsa44Subtree]: MLDSA44_PUBLIC_KEY_SIZE,
};

function isKnownType(t: number): t is SignatureType {
  return t === SignatureType.ed25519 || t === SignatureType.cosignatureV1 || t === SignatureType.mldsa44Subtree;
}

/**
 * c2sp.org/signed-note: key ID = first 4 bytes of SHA-256(name || 0x0A || type || public key),
 * read big-endian. The type byte makes the same key under two types get two IDs.
 */
export function computeKeyID(name: string, type: number, publicKey: Uint8Array): number {
  const nameBytes = Buffer.from(name, 'utf8');
  const pre = Buffer.allocUnsafe(nameBytes.length + 2 + publicKey.length);
  nameBytes.copy(pre, 0);
  pre[nameBytes.length] = 0x0a;
  pre[nameBytes.length + 1] = type;
  pre.set(publicKey, nameBytes.length + 2);
  const h = sha256(pre);
  return ((h[0]! << 24) | (h[1]! << 16) | (h[2]! << 8) | h[3]!) >>> 0;
}

export function formatKeyID(id: number): string {
  return id.toString(16).padStart(8, '0');
}

/** Splits on the first n-1 "+" signs; the last part keeps any further ones. */
function splitPlus(s: string, n: number): string[] | null {
  const out: string[] = [];
  let rest = s;
  for (let i = 0; i < n - 1; i++) {
    const j = rest.indexOf('+');
    if (j < 0) return null;
    out.push(rest.slice(0, j));
    rest = rest.slice(j + 1);
  }
  out.push(rest);
  return out;
}

export interface VerifierKey {
  readonly name: string;
  readonly keyID: number;
  readonly type: SignatureType;
  readonly publicKey: Uint8Array;
}

/** vkey = name+<8 lowercase hex ID>+base64(type || public key). */
export function formatVerifierKey(k: Omit<VerifierKey, 'keyID'>): string {
  const blob = Buffer.concat([Buffer.from([k.type]), k.publicKey]);
  return `${k.name}+${formatKeyID(computeKeyID(k.name, k.type, k.publicKey))}+${encodeBase64(blob)}`;
}

function badKey(what: string, why: string): TlogError {
  return new TlogError(ErrorCode.badInput, `bad ${what}: ${why}`);
}

/** Parses a vkey, checking that its ID matches its name, type and key. */
export function parseVerifierKey(vkey: string): VerifierKey {
  // base64 may itself contain "+": the key is everything after the second one.
  const parts = splitPlus(vkey.trim(), 3);
  if (!parts) throw badKey('verifier key', 'want name+hexid+base64');
  const [name, hexID, b64] = parts as [string, string, string];
  const nameProblem = checkKeyName(name);
  if (nameProblem) throw badKey('verifier key', nameProblem);
  if (!/^[0-9a-f]{8}$/.test(hexID)) throw badKey('verifier key', 'key ID is not 8 lowercase hex digits');
  const blob = decodeBase64Strict(b64);
  if (!blob || blob.length < 2) throw badKey('verifier key', 'key is not base64');
  const type = blob[0]!;
  if (!isKnownType(type)) throw badKey('verifier key', `unsupported signature type 0x${type.toString(16).padStart(2, '0')}`);
  const publicKey = blob.subarray(1);
  if (publicKey.length !== PUBLIC_KEY_SIZES[type]) {
    throw badKey('verifier key', `type 0x0${type} public key is ${publicKey.length} bytes, want ${PUBLIC_KEY_SIZES[type]}`);
  }
  const keyID = computeKeyID(name, type, publicKey);
  if (formatKeyID(keyID) !== hexID) throw badKey('verifier key', `key ID ${hexID} does not match the key (${formatKeyID(keyID)})`);
  return { name, keyID, type, publicKey };
}

/**
 * A private key: a name, a type and a 32-byte seed (Ed25519 seed, or the ML-DSA-44 key-generation
 * seed ξ of FIPS 204). Text form, as golang.org/x/mod/sumdb/note writes it:
 * PRIVATE+KEY+name+<hex ID>+base64(type || seed). The ID is of the public key.
 */
export interface PrivateKey {
  readonly name: string;
  readonly type: SignatureType;
  readonly seed: Uint8Array;
}

export function parsePrivateKey(skey: string, derivePublic: (k: PrivateKey) => Uint8Array): PrivateKey {
  const { key, keyID } = parsePrivateKeyText(skey);
  if (computeKeyID(key.name, key.type, derivePublic(key)) !== keyID) {
    throw badKey('private key', `key ID ${formatKeyID(keyID)} does not match the key`);
  }
  return key;
}

/**
 * Parses the text form without checking the key ID against the key (deriving an ML-DSA-44
 * public key costs ~20 ms): the caller must compare `keyID` with the ID of the key it derives.
 */
export function parsePrivateKeyText(skey: string): { key: PrivateKey; keyID: number } {
  const parts = splitPlus(skey.trim(), 5);
  if (!parts || parts[0] !== 'PRIVATE' || parts[1] !== 'KEY') throw badKey('private key', 'want PRIVATE+KEY+name+hexid+base64');
  const [, , name, hexID, b64] = parts as [string, string, string, string, string];
  const nameProblem = checkKeyName(name);
  if (nameProblem) throw badKey('private key', nameProblem);
  const blob = decodeBase64Strict(b64);
  if (!blob || blob.length !== 1 + SEED_SIZE) throw badKey('private key', 'want base64 of a type byte and a 32-byte seed');
  const type = blob[0]!;
  if (!isKnownType(type)) throw badKey('private key', `unsupported signature type 0x${type.toString(16)}`);
  if (!/^[0-9a-f]{8}$/.test(hexID)) throw badKey('private key', 'key ID is not 8 lowercase hex digits');
  return { key: { name, type, seed: Uint8Array.from(blob.subarray(1)) }, keyID: parseInt(hexID, 16) };
}

export function formatPrivateKey(k: PrivateKey, publicKey: Uint8Array): string {
  const blob = Buffer.concat([Buffer.from([k.type]), k.seed]);
  return `PRIVATE+KEY+${k.name}+${formatKeyID(computeKeyID(k.name, k.type, publicKey))}+${encodeBase64(blob)}`;
}

export function generatePrivateKey(name: string, type: SignatureType): PrivateKey {
  const nameProblem = checkKeyName(name);
  if (nameProblem) throw badKey('key name', nameProblem);
  return { name, type, seed: randomBytes(SEED_SIZE) };
}
