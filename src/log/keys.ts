/**
 * A log's signing keys on disk: an Ed25519 key (type 0x01, required by c2sp.org/tlog-tiles for
 * public logs) and an ML-DSA-44 key (type 0x06 subtree cosignature, the post-quantum signature),
 * both named after the origin, as c2sp.org/tlog-checkpoint recommends.
 *
 * Key files hold the PRIVATE+KEY text form, are created 0600 in a 0700 directory, and are
 * never logged.
 */
import path from 'node:path';
import { TlogError, ErrorCode } from '../errors.js';
import { formatPrivateKey, generatePrivateKey, parsePrivateKeyText, SignatureType, type PrivateKey } from '../note/keys.js';
import { derivePublicKey, keyPair, type Clock, type KeyPair, type SignOffload } from '../note/signers.js';
import { createSecretFile, ensureSecretDir, readSecretFile } from '../storage/secret-file.js';

export const KEY_FILES = {
  ed25519: 'ed25519.key',
  mldsa44: 'mldsa44.key',
} as const;

export interface LogKeys {
  readonly ed25519: KeyPair;
  readonly mldsa44: KeyPair;
}

function keysDir(stateDir: string): string {
  return path.join(stateDir, 'keys');
}

/** Creates both keys. Fails if a key file already exists: keys are never overwritten. */
export async function createLogKeys(stateDir: string, origin: string): Promise<void> {
  const dir = keysDir(stateDir);
  await ensureSecretDir(dir);
  const keys: [string, PrivateKey][] = [
    [KEY_FILES.ed25519, generatePrivateKey(origin, SignatureType.ed25519)],
    [KEY_FILES.mldsa44, generatePrivateKey(origin, SignatureType.mldsa44Subtree)],
  ];
  for (const [file, key] of keys) await createSecretFile(path.join(dir, file), formatPrivateKey(key, derivePublicKey(key)) + '\n');
}

async function loadKey(p: string, type: SignatureType, origin: string, clock?: Clock, offload?: SignOffload): Promise<KeyPair> {
  const text = await readSecretFile(p);
  let parsed: { key: PrivateKey; keyID: number };
  try {
    parsed = parsePrivateKeyText(text);
  } catch (e) {
    // Never echo key material: name the file and the problem only.
    throw new TlogError(ErrorCode.corrupt, `key file ${p}: ${(e as Error).message}`);
  }
  const { key } = parsed;
  if (key.type !== type) throw new TlogError(ErrorCode.corrupt, `key file ${p} holds a key of type 0x0${key.type}, want 0x0${type}`);
  if (key.name !== origin) throw new TlogError(ErrorCode.corrupt, `key file ${p} is named ${key.name}, want the origin ${origin}`);
  // Derive the public key once, and check the file's key ID against it.
  const pair = keyPair(key, clock, offload);
  if (pair.signer.keyID !== parsed.keyID) throw new TlogError(ErrorCode.corrupt, `key file ${p}: key ID does not match the key`);
  return pair;
}

/**
 * Loads both keys. With an offload (a SignPool's), the signers also have signAsync, which
 * signTreeAsync uses to sign off the calling thread.
 */
export async function loadLogKeys(stateDir: string, origin: string, clock?: Clock, offload?: SignOffload): Promise<LogKeys> {
  return loadLogKeysFrom(keysDir(stateDir), origin, clock, offload);
}

/** Loads both keys from a directory holding the key files (a log's keys/, or a copy deployed to every node of a cluster). */
export async function loadLogKeysFrom(dir: string, origin: string, clock?: Clock, offload?: SignOffload): Promise<LogKeys> {
  return {
    ed25519: await loadKey(path.join(dir, KEY_FILES.ed25519), SignatureType.ed25519, origin, clock, offload),
    mldsa44: await loadKey(path.join(dir, KEY_FILES.mldsa44), SignatureType.mldsa44Subtree, origin, clock, offload),
  };
}
