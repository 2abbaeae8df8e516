/**
 * The witness's own keys: a cosignature/v1 Ed25519 key (type 0x04) and an ML-DSA-44 subtree
 * cosignature key (type 0x06), both under the witness's name (their key IDs differ by the type
 * byte, c2sp.org/signed-note).
 *
 * Files: <data>/keys/cosignature-v1.key and <data>/keys/mldsa44.key, in the PRIVATE+KEY text
 * form (as src/log/keys.ts writes log keys), created 0600 in a 0700 directory on first start,
 * never overwritten, and refused when readable by others. Never logged.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { TlogError, ErrorCode } from '../src/errors.js';
import { formatPrivateKey, generatePrivateKey, parsePrivateKey, SignatureType, type PrivateKey } from '../src/note/keys.js';
import type { NoteSignature } from '../src/note/note.js';
import { derivePublicKey, keyPair, type KeyPair, type RawMldsaSigner, type TypedVerifier } from '../src/note/signers.js';
import { pathExists } from '../src/storage/durable.js';
import { createSecretFile, readSecretFile } from '../src/storage/secret-file.js';

export const WITNESS_KEY_FILES = {
  cosignatureV1: 'cosignature-v1.key',
  mldsa44: 'mldsa44.key',
} as const;

/** c2sp.org/tlog-cosignature: a timestamp is POSIX seconds, non-zero from add-checkpoint. */
export type Clock = () => number;

export interface WitnessKeys {
  readonly name: string;
  /** vkeys to give to log operators: the 0x04 one first. */
  readonly vkeys: { readonly cosignatureV1: string; readonly mldsa44: string };
  readonly verifiers: { readonly cosignatureV1: TypedVerifier; readonly mldsa44: TypedVerifier };
  /**
   * Cosigns a checkpoint text at timestamp ts: the 0x04 signature, then the 0x06 one when
   * `mldsa44` is set. Both carry the same ts. Synchronous, so the shared clock below is safe.
   */
  cosign(text: string, ts: number, mldsa44: boolean): NoteSignature[];
}

export function keysDir(dataDir: string): string {
  return path.join(dataDir, 'keys');
}

async function createKey(file: string, key: PrivateKey): Promise<void> {
  await createSecretFile(file, formatPrivateKey(key, derivePublicKey(key)) + '\n');
}

async function readKey(file: string, type: SignatureType, name: string): Promise<PrivateKey> {
  const text = await readSecretFile(file);
  let key: PrivateKey;
  try {
    key = parsePrivateKey(text, derivePublicKey);
  } catch (e) {
    // Never echo key material: name the file and the problem only.
    throw new TlogError(ErrorCode.corrupt, `key file ${file}: ${(e as Error).message}`);
  }
  if (key.type !== type) throw new TlogError(ErrorCode.corrupt, `key file ${file} holds a key of type 0x0${key.type}, want 0x0${type}`);
  if (key.name !== name) {
    throw new TlogError(ErrorCode.corrupt, `key file ${file} is named ${key.name}, but the config names the witness ${name}`);
  }
  return key;
}

/**
 * Loads the witness keys, creating the missing ones first. The caller holds the data
 * directory's lock, so two processes never race to create them.
 */
export async function loadOrCreateWitnessKeys(dataDir: string, name: string, mldsa?: RawMldsaSigner): Promise<{ keys: WitnessKeys; created: string[] }> {
  const dir = keysDir(dataDir);
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  await fsp.chmod(dir, 0o700);
  const wanted = [
    [WITNESS_KEY_FILES.cosignatureV1, SignatureType.cosignatureV1],
    [WITNESS_KEY_FILES.mldsa44, SignatureType.mldsa44Subtree],
  ] as const;
  const created: string[] = [];
  for (const [file, type] of wanted) {
    const p = path.join(dir, file);
    if (!(await pathExists(p))) {
      await createKey(p, generatePrivateKey(name, type));
      created.push(p);
    }
  }
  const ed = await readKey(path.join(dir, WITNESS_KEY_FILES.cosignatureV1), SignatureType.cosignatureV1, name);
  const ml = await readKey(path.join(dir, WITNESS_KEY_FILES.mldsa44), SignatureType.mldsa44Subtree, name);
  return { keys: witnessKeysFrom(ed, ml, mldsa), created };
}

/**
 * Builds WitnessKeys from private keys (the files' contents; tests use it directly). ML-DSA-44
 * signs with `mldsa` when given (the process's fastest implementation), else with noble.
 */
export function witnessKeysFrom(ed: PrivateKey, ml: PrivateKey, mldsa?: RawMldsaSigner): WitnessKeys {
  if (ed.type !== SignatureType.cosignatureV1 || ml.type !== SignatureType.mldsa44Subtree || ed.name !== ml.name) {
    throw new Error('witnessKeysFrom: want a 0x04 and a 0x06 key with the same name');
  }
  // The signers read the timestamp from this variable, set only for the duration of a
  // synchronous cosign() call: both lines of one reply carry the same ts.
  let at = 0;
  const clock = () => {
    if (!(at > 0)) throw new Error('witness signer used outside cosign()');
    return at;
  };
  const edPair: KeyPair = keyPair(ed, clock);
  const mlPair: KeyPair = keyPair(ml, clock, undefined, mldsa);
  return {
    name: ed.name,
    vkeys: { cosignatureV1: edPair.vkey, mldsa44: mlPair.vkey },
    verifiers: { cosignatureV1: edPair.verifier, mldsa44: mlPair.verifier },
    cosign(text, ts, mldsa44) {
      // c2sp.org/tlog-witness: add-checkpoint cosignatures MUST have a non-zero timestamp.
      if (!Number.isSafeInteger(ts) || ts <= 0) throw new Error(`cosign: bad timestamp ${ts}`);
      at = ts;
      try {
        const out: NoteSignature[] = [{ name: edPair.signer.name, keyID: edPair.signer.keyID, signature: edPair.signer.sign(text) }];
        if (mldsa44) out.push({ name: mlPair.signer.name, keyID: mlPair.signer.keyID, signature: mlPair.signer.sign(text) });
        return out;
      } finally {
        at = 0;
      }
    },
  };
}
