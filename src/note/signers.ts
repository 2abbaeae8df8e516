/**
 * Signers and verifiers for the signature types we implement. Pure but for the clock, which
 * callers inject (cosignatures carry a timestamp). A caller may also inject a SignOffload that
 * computes raw signatures elsewhere (src/log/sign-pool.ts, a worker thread); the messages and
 * framing stay here, shared by sign() and signAsync().
 *
 * - 0x01 Ed25519 (c2sp.org/signed-note): Ed25519 over the note text.
 * - 0x04 cosignature/v1 (c2sp.org/tlog-cosignature): Ed25519 over
 *   "cosignature/v1\ntime <ts>\n" + the checkpoint text; signature = u64 ts || sig[64].
 * - 0x06 ML-DSA-44 subtree cosignature (c2sp.org/tlog-cosignature v1.1): ML-DSA-44 (FIPS 204,
 *   pure, empty context) over the TLS-encoded subtree/v1 message; signature = u64 ts || sig[2420].
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { ml_dsa44 } from '@noble/post-quantum/ml-dsa.js';
import { TlogError, ErrorCode } from '../errors.js';
import { parseCheckpoint } from './checkpoint.js';
import { computeKeyID, type PrivateKey, SignatureType, type VerifierKey, formatVerifierKey } from './keys.js';
import type { NoteSigner, NoteVerifier } from './note.js';

const ED25519_SIG_SIZE = 64;
export const MLDSA44_SIG_SIZE = 2420;
/** c2sp.org/tlog-cosignature: the timestamp MUST NOT exceed 2^63 - 1. */
const MAX_TIMESTAMP = (1n << 63n) - 1n;

export type Clock = () => number; // POSIX seconds

const defaultClock: Clock = () => Math.floor(Date.now() / 1000);

export function derivePublicKey(k: PrivateKey): Uint8Array {
  switch (k.type) {
    case SignatureType.ed25519:
    case SignatureType.cosignatureV1:
      return ed25519.getPublicKey(k.seed);
    case SignatureType.mldsa44Subtree:
      return ml_dsa44.keygen(k.seed).publicKey;
  }
}

/** The c2sp.org/tlog-cosignature cosignature/v1 signed message. */
export function cosignatureV1Message(text: string, timestamp: number): Uint8Array {
  return Buffer.from(`cosignature/v1\ntime ${timestamp}\n${text}`, 'utf8');
}

/**
 * The c2sp.org/tlog-cosignature subtree/v1 message (TLS presentation language):
 * "subtree/v1\n\0" || u8-length cosigner name || u64 timestamp || u8-length origin ||
 * u64 start || u64 end || hash[32].
 */
export function subtreeV1Message(p: { cosignerName: string; timestamp: number; origin: string; start: number; end: number; hash: Uint8Array }): Uint8Array {
  const name = Buffer.from(p.cosignerName, 'utf8');
  const origin = Buffer.from(p.origin, 'utf8');
  if (name.length > 255 || origin.length > 255) {
    throw new TlogError(ErrorCode.badInput, 'subtree/v1: cosigner name and origin must be at most 255 bytes');
  }
  const label = Buffer.from('subtree/v1\n\0', 'latin1');
  const out = Buffer.alloc(label.length + 1 + name.length + 8 + 1 + origin.length + 8 + 8 + 32);
  let o = label.copy(out, 0);
  out[o++] = name.length;
  o += name.copy(out, o);
  out.writeBigUInt64BE(BigInt(p.timestamp), o);
  o += 8;
  out[o++] = origin.length;
  o += origin.copy(out, o);
  out.writeBigUInt64BE(BigInt(p.start), o);
  o += 8;
  out.writeBigUInt64BE(BigInt(p.end), o);
  o += 8;
  out.set(p.hash, o);
  return out;
}

function withTimestamp(ts: number, sig: Uint8Array): Uint8Array {
  const out = Buffer.allocUnsafe(8 + sig.length);
  out.writeBigUInt64BE(BigInt(ts), 0);
  out.set(sig, 8);
  return out;
}

function splitTimestamp(sig: Uint8Array, sigSize: number): { ts: number; raw: Uint8Array } | null {
  if (sig.length !== 8 + sigSize) return null;
  const ts = Buffer.from(sig.buffer, sig.byteOffset, 8).readBigUInt64BE(0);
  if (ts > MAX_TIMESTAMP || ts > BigInt(Number.MAX_SAFE_INTEGER)) return null;
  return { ts: Number(ts), raw: sig.subarray(8) };
}

/** The signed message of a 0x06 signature over a checkpoint note text (start 0, end size). */
function checkpointSubtreeMessage(name: string, text: string, ts: number): Uint8Array | null {
  let c;
  try {
    c = parseCheckpoint(text);
  } catch {
    return null;
  }
  // Extension lines are not covered by subtree/v1: a 0x06 signature cannot vouch for a
  // checkpoint that carries them, so it does not verify (as sunlight does).
  if (c.extensions.length > 0) return null;
  return subtreeV1Message({ cosignerName: name, timestamp: ts, origin: c.origin, start: 0, end: c.treeSize, hash: c.rootHash });
}

export interface KeyPair {
  readonly signer: NoteSigner;
  readonly verifier: NoteVerifier & { readonly type: SignatureType; readonly publicKey: Uint8Array };
  readonly vkey: string;
}

/** The raw signature algorithms behind our signature types. */
export type SignAlgorithm = 'ed25519' | 'ml-dsa-44';

/**
 * Computes a raw signature somewhere else (a worker thread): Ed25519 (RFC 8032) or ML-DSA-44
 * (FIPS 204 pure, empty context, hedged) over `message` with the key of `seed`, the 32-byte seed
 * of the PrivateKey (the Ed25519 seed; the ML-DSA-44 key-generation seed ξ). It must return a
 * signature that the matching verifier accepts, 64 or 2420 bytes: for Ed25519 exactly
 * ed25519.sign(message, seed) of noble (deterministic); for ML-DSA-44 any hedged signature that
 * ml_dsa44.verify accepts under ml_dsa44.keygen(seed).publicKey. The offload owns `message` once
 * called (it may transfer it to another thread); `seed` stays the caller's and is passed again,
 * the same array, on every call with that key.
 */
export type SignOffload = (alg: SignAlgorithm, seed: Uint8Array, message: Uint8Array) => Promise<Uint8Array>;

/** The bytes a key signs for a note text, and how the raw signature becomes the note's. */
interface SignPlan {
  readonly message: Uint8Array;
  frame(raw: Uint8Array): Uint8Array;
}

const RAW_SIG_SIZES: Record<SignAlgorithm, number> = { ed25519: ED25519_SIG_SIZE, 'ml-dsa-44': MLDSA44_SIG_SIZE };

/**
 * A signer from its plan: sign() computes the raw signature here with noble, signAsync() (only
 * with an offload) asks the offload for it. Both build the message and frame the result alike.
 */
function planSigner(
  name: string,
  keyID: number,
  plan: (text: string) => SignPlan,
  alg: SignAlgorithm,
  seed: Uint8Array,
  rawSign: (message: Uint8Array) => Uint8Array,
  offload?: SignOffload,
): NoteSigner {
  const sign = (text: string) => {
    const p = plan(text);
    return p.frame(rawSign(p.message));
  };
  if (!offload) return { name, keyID, sign };
  const signAsync = async (text: string) => {
    const p = plan(text);
    const raw = await offload(alg, seed, p.message);
    // A short or long answer would make a note no one can parse the way we wrote it.
    if (raw.length !== RAW_SIG_SIZES[alg]) throw new Error(`sign offload returned ${raw.length} bytes for ${alg}, want ${RAW_SIG_SIZES[alg]}`);
    return p.frame(raw);
  };
  return { name, keyID, sign, signAsync };
}

const unframed = (raw: Uint8Array) => raw;

/**
 * A synchronous ML-DSA-44 implementation to sign with instead of noble's (a native or WebAssembly
 * one; the log's choice is src/log/mldsa-backend.ts): the key it derives from the 32-byte seed ξ
 * (FIPS 204 ML-DSA.KeyGen_internal) and FIPS 204 ML-DSA.Sign with that key, pure, empty context.
 */
export interface RawMldsaSigner {
  keyFromSeed(seed: Uint8Array): unknown;
  sign(key: unknown, message: Uint8Array): Uint8Array;
}

/**
 * Builds the signer and matching verifier for a private key. With an offload, the signer also
 * has signAsync, which computes the same signature through it.
 */
export function keyPair(k: PrivateKey, clock: Clock = defaultClock, offload?: SignOffload, mldsa?: RawMldsaSigner): KeyPair {
  let publicKey: Uint8Array;
  let signer: NoteSigner;
  switch (k.type) {
    case SignatureType.ed25519:
    case SignatureType.cosignatureV1: {
      publicKey = ed25519.getPublicKey(k.seed);
      const keyID = computeKeyID(k.name, k.type, publicKey);
      const plan =
        k.type === SignatureType.ed25519
          ? (text: string): SignPlan => ({ message: Buffer.from(text, 'utf8'), frame: unframed })
          : (text: string): SignPlan => {
              const ts = clock();
              return { message: cosignatureV1Message(text, ts), frame: (raw) => withTimestamp(ts, raw) };
            };
      signer = planSigner(k.name, keyID, plan, 'ed25519', k.seed, (m) => ed25519.sign(m, k.seed), offload);
      break;
    }
    case SignatureType.mldsa44Subtree: {
      const keys = ml_dsa44.keygen(k.seed);
      publicKey = keys.publicKey;
      const keyID = computeKeyID(k.name, k.type, publicKey);
      const plan = (text: string): SignPlan => {
        const ts = clock();
        const message = checkpointSubtreeMessage(k.name, text, ts);
        if (!message) throw new TlogError(ErrorCode.badInput, 'ML-DSA-44 subtree cosignatures sign checkpoints without extension lines');
        return { message, frame: (raw) => withTimestamp(ts, raw) };
      };
      // FIPS 204 pure ML-DSA with an empty context, hedged signing (noble's default), or the
      // implementation given, with the key it derives from the same seed.
      let rawSign = (m: Uint8Array): Uint8Array => ml_dsa44.sign(m, keys.secretKey);
      if (mldsa) {
        const key = mldsa.keyFromSeed(k.seed);
        rawSign = (m) => {
          const raw = mldsa.sign(key, m);
          if (raw.length !== MLDSA44_SIG_SIZE) throw new Error(`ML-DSA-44 signer returned ${raw.length} bytes, want ${MLDSA44_SIG_SIZE}`);
          return raw;
        };
      }
      signer = planSigner(k.name, keyID, plan, 'ml-dsa-44', k.seed, rawSign, offload);
      break;
    }
  }
  return {
    signer,
    verifier: verifierFor({ name: k.name, keyID: signer.keyID, type: k.type, publicKey }),
    vkey: formatVerifierKey({ name: k.name, type: k.type, publicKey }),
  };
}

export type TypedVerifier = NoteVerifier & { readonly type: SignatureType; readonly publicKey: Uint8Array };

/** A note verifier for a parsed verifier key. verify() never throws. */
export function verifierFor(key: VerifierKey): TypedVerifier {
  const { name, keyID, type, publicKey } = key;
  let verify: (text: string, sig: Uint8Array) => boolean;
  switch (type) {
    case SignatureType.ed25519:
      verify = (text, sig) => sig.length === ED25519_SIG_SIZE && ed25519.verify(sig, Buffer.from(text, 'utf8'), publicKey, { zip215: false });
      break;
    case SignatureType.cosignatureV1:
      verify = (text, sig) => {
        const s = splitTimestamp(sig, ED25519_SIG_SIZE);
        return !!s && ed25519.verify(s.raw, cosignatureV1Message(text, s.ts), publicKey, { zip215: false });
      };
      break;
    case SignatureType.mldsa44Subtree:
      verify = (text, sig) => {
        const s = splitTimestamp(sig, MLDSA44_SIG_SIZE);
        if (!s) return false;
        const msg = checkpointSubtreeMessage(name, text, s.ts);
        return !!msg && ml_dsa44.verify(s.raw, msg, publicKey);
      };
      break;
  }
  const safe = (text: string, sig: Uint8Array) => {
    try {
      return verify(text, sig);
    } catch {
      return false;
    }
  };
  return { name, keyID, type, publicKey, verify: safe };
}

/** The timestamp of a cosignature (0x04 or 0x06), or null when it has none or is malformed. */
export function cosignatureTimestamp(type: SignatureType, sig: Uint8Array): number | null {
  if (type === SignatureType.cosignatureV1) return splitTimestamp(sig, ED25519_SIG_SIZE)?.ts ?? null;
  if (type === SignatureType.mldsa44Subtree) return splitTimestamp(sig, MLDSA44_SIG_SIZE)?.ts ?? null;
  return null;
}
