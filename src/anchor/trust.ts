/**
 * Verifying anchoring receipts: the Sigstore bundle Rekor gave us, checked with @sigstore/verify
 * against trust material built from the configured Rekor public key (never fetched online), plus
 * the checks that tie it to our log: the anchored digest is SHA-256 of the exact checkpoint bytes,
 * that checkpoint is ours, and the proof really reaches Rekor's signed checkpoint.
 *
 * What @sigstore/verify checks (tlog/index.js): the signed entry timestamp (SET) when present;
 * the inclusion proof against the root of the checkpoint in the bundle and that checkpoint's
 * signature by the trusted log key; that the entry body carries our digest and signature; the
 * signature over the artifact with the key the hint names; and each RFC 3161 timestamp in
 * `timestampVerificationData`: its signature by the configured TSA certificate, that
 * certificate's chain up to the configured root and its validity at the signing time, and the
 * imprint over the signature. We add: an inclusion proof must be there, the proof's own root and
 * size fields must agree with the signed checkpoint, and every receipt carries attested time:
 * Rekor v1 its signed entry timestamp (SET), Rekor v2 exactly one RFC 3161 timestamp, with the
 * checks of tsa.ts (status granted, SHA-256 imprint over exactly the signature bytes, signed by
 * a configured TSA).
 */
import { createHash, createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { bundleFromJSON, type Bundle, type TransparencyLogEntry } from '@sigstore/bundle';
import { toSignedEntity, Verifier, type SignedEntity, type TrustMaterial } from '@sigstore/verify';
import { parseCanonicalDecimal } from '../decimal.js';
import { TlogError, ErrorCode } from '../errors.js';
import { leafHash } from '../merkle/hash.js';
import { verifyInclusion } from '../merkle/proof.js';
import { parseCheckpoint, type Checkpoint } from '../note/checkpoint.js';
import { openNote, parseNote, type NoteVerifier } from '../note/note.js';
import { checkTimestamp, parseTimestamp, type TsaTrust } from './tsa.js';

export interface RekorTrust {
  readonly publicKey: KeyObject;
  /** The log ID Rekor puts in entries and whose first 4 bytes are its checkpoint key hint. */
  readonly logID: Buffer;
  /** Matched (as a regular expression, by @sigstore/verify) against checkpoint signer names. */
  readonly baseURL: string;
}

/**
 * The log ID of a Rekor log key: SHA-256 of the SPKI DER for ECDSA (v1, and v2 ECDSA keys);
 * for Ed25519 (v2), the c2sp.org/signed-note key hash SHA-256(origin || 0x0A || 0x01 || key).
 */
export function rekorLogID(publicKey: KeyObject, origin?: string): Buffer {
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  if (publicKey.asymmetricKeyType === 'ed25519') {
    if (!origin) throw new TlogError(ErrorCode.badInput, 'an Ed25519 Rekor key needs the log origin to compute its log ID');
    const raw = spki.subarray(spki.length - 32);
    return createHash('sha256')
      .update(Buffer.concat([Buffer.from(origin + '\n'), Buffer.from([0x01]), raw]))
      .digest();
  }
  return createHash('sha256').update(spki).digest();
}

export function rekorTrust(publicKeyPem: string, url: string, origin?: string): RekorTrust {
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey(publicKeyPem);
  } catch (e) {
    throw new TlogError(ErrorCode.badInput, `rekor public key: ${(e as Error).message}`);
  }
  const host = (() => {
    try {
      return new URL(url).hostname;
    } catch {
      return url;
    }
  })();
  return { publicKey, logID: rekorLogID(publicKey, origin ?? host), baseURL: url };
}

const FOREVER = { start: new Date(0), end: new Date(8.64e15) };

/**
 * TrustMaterial with one transparency log (when given), the configured timestamp authorities
 * and one signing key (found by its hint), nothing else.
 */
export function trustMaterial(rekor: RekorTrust | null, signingKey: KeyObject, signingKeyHint: string, tsas: readonly TsaTrust[] = []): TrustMaterial {
  return {
    certificateAuthorities: [],
    timestampAuthorities: tsas.map((t) => ({ certChain: [...t.chain], validFor: FOREVER })),
    ctlogs: [],
    tlogs: rekor ? [{ logID: rekor.logID, baseURL: rekor.baseURL, publicKey: rekor.publicKey, validFor: FOREVER }] : [],
    publicKey: (hint: string) => {
      if (hint !== signingKeyHint) {
        throw new TlogError(ErrorCode.verification, `bundle names signing key ${hint.slice(0, 16)}..., want ${signingKeyHint.slice(0, 16)}...`);
      }
      return { publicKey: signingKey, validFor: () => true };
    },
  };
}

function fail(why: string): TlogError {
  return new TlogError(ErrorCode.verification, `anchor receipt: ${why}`);
}

/** The anchoring public key inside the Rekor entry body (hashedrekord 0.0.1 or 0.0.2). */
export function entryPublicKey(entry: TransparencyLogEntry): KeyObject {
  const body = JSON.parse(entry.canonicalizedBody.toString('utf8')) as {
    apiVersion?: string;
    spec?: {
      signature?: { publicKey?: { content?: string } };
      hashedRekordV002?: { signature?: { verifier?: { publicKey?: { rawBytes?: string } } } };
    };
  };
  const v1 = body.spec?.signature?.publicKey?.content;
  if (v1) return createPublicKey(Buffer.from(v1, 'base64').toString('utf8'));
  const v2 = body.spec?.hashedRekordV002?.signature?.verifier?.publicKey?.rawBytes;
  if (v2) return createPublicKey({ key: Buffer.from(v2, 'base64'), format: 'der', type: 'spki' });
  throw fail('entry body has no public key');
}

export interface ReceiptSummary {
  readonly treeSize: number;
  readonly origin: string;
  /** Hex SHA-256 of the anchored checkpoint bytes. */
  readonly digest: string;
  readonly rekorLogIndex: number;
  readonly rekorTreeSize: number;
  /** Seconds since the epoch, from the SET (v1); null when the log gives none (v2). */
  readonly integratedTime: number | null;
  readonly entryKind: string;
  /** Hex SHA-256 of the anchoring key's SPKI. */
  readonly anchorKeyID: string;
  readonly signedEntryTimestamp: boolean;
  /** The verified time of the anchor (ISO 8601): the SET's integrated time (v1) or the TSA's genTime (v2). */
  readonly attestedAt: string;
  /** Who attests it: `rekor <url>` for a SET, the TSA certificate's subject for a timestamp. */
  readonly attestedBy: string;
  readonly timeEvidence: TimeEvidence;
}

export type TimeEvidence = 'signed-entry-timestamp' | 'rfc3161-timestamp';

export interface VerifyOptions {
  readonly rekor: RekorTrust;
  /** The exact checkpoint bytes that were anchored. */
  readonly checkpointNote: string | Uint8Array;
  /** When given, the checkpoint must carry a valid signature by one of these (our log's keys). */
  readonly logVerifiers?: readonly NoteVerifier[];
  /** When given, the entry must be signed by this anchoring key (SPKI PEM). */
  readonly anchorPublicKey?: string;
  /** When given, the checkpoint must be of this tree size. */
  readonly treeSize?: number;
  /** The timestamp authorities trusted for RFC 3161 timestamps (a v2 receipt needs one). */
  readonly tsa?: readonly TsaTrust[];
}

/** Parses a bundle (JSON text or object) with @sigstore/bundle's validation. */
export function parseBundle(json: string | unknown): Bundle {
  try {
    return bundleFromJSON(typeof json === 'string' ? JSON.parse(json) : json);
  } catch (e) {
    throw fail(`not a Sigstore bundle: ${(e as Error).message}`);
  }
}

/** Verifies a receipt offline; throws `verification_failed` saying what did not hold. */
export function verifyAnchorBundle(bundle: Bundle, o: VerifyOptions): ReceiptSummary {
  const note = typeof o.checkpointNote === 'string' ? Buffer.from(o.checkpointNote, 'utf8') : Buffer.from(o.checkpointNote);
  let cp: Checkpoint;
  try {
    cp = parseCheckpoint(parseNote(note.toString('utf8')).text);
  } catch (e) {
    throw fail(`the anchored checkpoint is unreadable: ${(e as Error).message}`);
  }
  if (o.treeSize !== undefined && cp.treeSize !== o.treeSize) throw fail(`checkpoint has size ${cp.treeSize}, want ${o.treeSize}`);
  if (o.logVerifiers) {
    try {
      openNote(note.toString('utf8'), o.logVerifiers);
    } catch (e) {
      throw fail(`the anchored checkpoint is not signed by this log: ${(e as Error).message}`);
    }
  }
  const digest = createHash('sha256').update(note).digest();
  if (bundle.content.$case !== 'messageSignature') throw fail('want a message-signature bundle');
  const md = bundle.content.messageSignature.messageDigest;
  if (!md || !Buffer.from(md.digest).equals(digest)) throw fail('the anchored digest is not SHA-256 of this checkpoint');
  const entries = bundle.verificationMaterial.tlogEntries;
  if (entries.length !== 1) throw fail(`want one tlog entry, got ${entries.length}`);
  const entry = entries[0]!;
  if (entry.kindVersion.kind !== 'hashedrekord') throw fail(`entry kind ${entry.kindVersion.kind}, want hashedrekord`);
  const proof = entry.inclusionProof;
  if (!proof || !proof.checkpoint?.envelope) throw fail('no inclusion proof with a checkpoint');
  // Rekor v1 (hashedrekord 0.0.1) always gives a signed entry timestamp: its absence is tampering.
  const isV1 = entry.kindVersion.version === '0.0.1';
  if (isV1 && !entry.inclusionPromise) throw fail('rekor v1 entry without its signed entry timestamp');
  // Rekor v2 gives no SET: its time is attested by one RFC 3161 timestamp over the signature.
  const stamps = bundle.verificationMaterial.timestampVerificationData?.rfc3161Timestamps ?? [];
  if (!isV1 && stamps.length !== 1) {
    throw fail(
      stamps.length === 0 ? 'a Rekor v2 receipt without an RFC 3161 timestamp has no attested time' : `want one RFC 3161 timestamp, got ${stamps.length}`,
    );
  }
  if (stamps.length > 0 && !o.tsa?.length)
    throw fail('the receipt carries an RFC 3161 timestamp: give the certificate chain of the timestamp authority to verify it');
  const signature = Buffer.from(bundle.content.messageSignature.signature);
  const stamped = stamps.map((t) => {
    try {
      return checkTimestamp(t.signedTimestamp, signature, o.tsa ?? []);
    } catch (e) {
      throw fail((e as Error).message);
    }
  });

  let signingKey: KeyObject;
  try {
    signingKey = entryPublicKey(entry);
  } catch (e) {
    throw e instanceof TlogError ? e : fail(`entry body: ${(e as Error).message}`);
  }
  const spki = signingKey.export({ type: 'spki', format: 'der' });
  const keyID = createHash('sha256').update(spki).digest('hex');
  if (o.anchorPublicKey) {
    const want = createPublicKey(o.anchorPublicKey).export({ type: 'spki', format: 'der' });
    if (!want.equals(spki)) throw fail('the entry is signed by another anchoring key');
  }
  const pk = bundle.verificationMaterial.content;
  const hint = pk.$case === 'publicKey' ? pk.publicKey.hint : '';
  if (hint !== keyID) throw fail('the bundle key hint does not name the entry key');

  try {
    const verifier = new Verifier(trustMaterial(o.rekor, signingKey, keyID, o.tsa), {
      tlogThreshold: 1,
      ctlogThreshold: 0,
      timestampThreshold: (isV1 ? 1 : 0) + stamps.length,
    });
    verifier.verify(toSignedEntity(bundle, note));
  } catch (e) {
    throw fail(`@sigstore/verify: ${(e as Error).message}`);
  }

  // Our own second look at the proof: its root and size fields must be the signed checkpoint's.
  const rekorCp = parseRekorCheckpoint(proof.checkpoint.envelope);
  const index = Number(proof.logIndex);
  const size = Number(proof.treeSize);
  if (size !== rekorCp.size || !Buffer.from(proof.rootHash).equals(rekorCp.root)) {
    throw fail('the inclusion proof names another tree than the signed checkpoint');
  }
  if (!verifyInclusion(index, size, leafHash(entry.canonicalizedBody), proof.hashes, rekorCp.root)) {
    throw fail('the inclusion proof does not reach the checkpoint root');
  }
  return {
    treeSize: cp.treeSize,
    origin: cp.origin,
    digest: digest.toString('hex'),
    rekorLogIndex: Number(entry.logIndex),
    rekorTreeSize: size,
    integratedTime: entry.inclusionPromise ? Number(entry.integratedTime) : null,
    entryKind: `${entry.kindVersion.kind}/${entry.kindVersion.version}`,
    anchorKeyID: keyID,
    signedEntryTimestamp: !!entry.inclusionPromise,
    ...(isV1
      ? {
          attestedAt: new Date(Number(entry.integratedTime) * 1000).toISOString(),
          attestedBy: `rekor ${o.rekor.baseURL}`,
          timeEvidence: 'signed-entry-timestamp' as const,
        }
      : { attestedAt: stamped[0]!.time.toISOString(), attestedBy: stamped[0]!.tsa.name, timeEvidence: 'rfc3161-timestamp' as const }),
  };
}

/**
 * Verifies an RFC 3161 timestamp over an anchoring signature on its own, before anything goes to
 * Rekor: tsa.ts's checks, then @sigstore/verify's (the TSA's signature and chain, and our
 * signature over the checkpoint by the key the hint names). Returns the attested time and TSA.
 */
export function verifyAnchorTimestamp(
  der: Uint8Array,
  o: { readonly signature: Uint8Array; readonly checkpointNote: Uint8Array; readonly signingKey: KeyObject; readonly tsa: readonly TsaTrust[] },
): { readonly time: Date; readonly tsa: TsaTrust } {
  const summary = checkTimestamp(der, o.signature, o.tsa);
  const spki = o.signingKey.export({ type: 'spki', format: 'der' });
  const keyID = createHash('sha256').update(spki).digest('hex');
  const signature = Buffer.from(o.signature);
  const digest = createHash('sha256').update(o.checkpointNote).digest();
  const entity: SignedEntity = {
    signature: {
      signature,
      compareSignature: (s) => s.equals(signature),
      compareDigest: (d) => d.equals(digest),
      verifySignature: (key) => cryptoVerify('sha256', o.checkpointNote, key, signature),
    },
    key: { $case: 'public-key', hint: keyID },
    tlogEntries: [],
    timestamps: [{ $case: 'timestamp-authority', timestamp: parseTimestamp(der) }],
  };
  try {
    new Verifier(trustMaterial(null, o.signingKey, keyID, o.tsa), { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 1 }).verify(entity);
  } catch (e) {
    throw new TlogError(ErrorCode.verification, `timestamp: @sigstore/verify: ${(e as Error).message}`);
  }
  return summary;
}

/** Size and root of a Rekor checkpoint (v1 origins contain spaces, so not our strict parser). */
function parseRekorCheckpoint(envelope: string): { size: number; root: Buffer } {
  const lines = envelope.split('\n');
  const size = parseCanonicalDecimal(lines[1] ?? '');
  const root = Buffer.from(lines[2] ?? '', 'base64');
  if (size === null || root.length !== 32) {
    throw fail('the rekor checkpoint is malformed');
  }
  return { size, root };
}
