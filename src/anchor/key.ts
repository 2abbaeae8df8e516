/**
 * The anchoring key: a dedicated ECDSA P-256 key per tenant, used only to sign the hashedrekord
 * entries that anchor checkpoints in Rekor. Rekor accepts ECDSA P-256 for hashedrekord in v1 and
 * v2; it rejects ML-DSA everywhere and plain Ed25519 in v2, so the log's own keys cannot be used.
 *
 * On disk: <state>/<tenant>/keys/anchor-p256.pem, PKCS#8 PEM (readable by openssl and by Go's
 * x509.ParsePKCS8PrivateKey), created 0600 in the 0700 keys directory, never overwritten.
 *
 * Signatures are RFC 6979 deterministic (@noble/curves): the same digest always gets the same
 * signature bytes, so a job re-signed after a crash proposes the very same Rekor entry (which
 * Rekor then answers with 409, not a second entry). The outbox stores the signature anyway.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import path from 'node:path';
import { p256 } from '@noble/curves/nist.js';
import { TlogError, ErrorCode } from '../errors.js';
import { createSecretFile, ensureSecretDir, readSecretFile } from '../storage/secret-file.js';

export const ANCHOR_KEY_FILE = 'anchor-p256.pem';

export interface AnchorKey {
  /** The public key, SPKI PEM: what Rekor gets in the entry. */
  readonly publicKeyPem: string;
  /** The public key, SPKI DER. */
  readonly spki: Uint8Array;
  readonly publicKey: KeyObject;
  /** Hex SHA-256 of the SPKI DER: the bundle's public key hint. */
  readonly keyID: string;
  /** ECDSA P-256 over SHA-256(data), DER-encoded, deterministic (RFC 6979), low-S. */
  sign(data: Uint8Array): Uint8Array;
  /** The same over an already computed SHA-256 digest. */
  signDigest(digest: Uint8Array): Uint8Array;
}

export function anchorKeyPath(stateDir: string): string {
  return path.join(stateDir, 'keys', ANCHOR_KEY_FILE);
}

/**
 * Creates the tenant's anchoring key (0600, O_EXCL: an existing key is never replaced) and
 * returns it. Durable on return: the file and its directory entry are fsynced.
 */
export async function createAnchorKey(stateDir: string): Promise<AnchorKey> {
  await ensureSecretDir(path.join(stateDir, 'keys'));
  const p = anchorKeyPath(stateDir);
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  // Synced: a key lost after Rekor logged entries signed with it would leave receipts nobody can match.
  await createSecretFile(p, pem);
  return anchorKeyFromPem(pem, p);
}

/** Loads the anchoring key; refuses a file readable by group or others. */
export async function loadAnchorKey(stateDir: string): Promise<AnchorKey> {
  const p = anchorKeyPath(stateDir);
  let pem: string;
  try {
    pem = await readSecretFile(p);
  } catch (e) {
    if (e instanceof TlogError && e.code === ErrorCode.notFound) {
      throw new TlogError(ErrorCode.notFound, `no anchoring key at ${p}: create it with createAnchorKey (tlog init does)`);
    }
    throw e;
  }
  return anchorKeyFromPem(pem, p);
}

/** Loads the key, creating it first when it does not exist yet (logs made before anchoring existed). */
export async function loadOrCreateAnchorKey(stateDir: string): Promise<AnchorKey> {
  try {
    return await loadAnchorKey(stateDir);
  } catch (e) {
    if (e instanceof TlogError && e.code === ErrorCode.notFound) return createAnchorKey(stateDir);
    throw e;
  }
}

export function anchorKeyFromPem(pem: string, where = 'anchoring key'): AnchorKey {
  let priv: KeyObject;
  try {
    priv = createPrivateKey(pem);
  } catch (e) {
    // Never echo key material: name the file and the problem only.
    throw new TlogError(ErrorCode.corrupt, `key file ${where}: not a PEM private key (${(e as Error).message})`);
  }
  const jwk = priv.export({ format: 'jwk' });
  if (priv.asymmetricKeyType !== 'ec' || jwk.crv !== 'P-256' || typeof jwk.d !== 'string') {
    throw new TlogError(ErrorCode.corrupt, `key file ${where}: want an ECDSA P-256 key`);
  }
  const secret = Buffer.from(jwk.d, 'base64url');
  const publicKey = createPublicKey(priv);
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
  const keyID = createHash('sha256').update(spki).digest('hex');
  const signDigest = (digest: Uint8Array) => p256.sign(digest, secret, { prehash: false, format: 'der' });
  return {
    publicKeyPem,
    spki: new Uint8Array(spki),
    publicKey,
    keyID,
    signDigest,
    sign: (data) => signDigest(createHash('sha256').update(data).digest()),
  };
}
