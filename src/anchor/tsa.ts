/**
 * Attested time for Rekor v2 receipts: an RFC 3161 timestamp over the anchoring signature from a
 * configured timestamp authority (Sigstore's TSA protocol), carried in the bundle's
 * `timestampVerificationData` as Sigstore's verifiers expect.
 *
 * - The TSA is trusted through its certificate chain, given in the configuration and never
 *   fetched: `tsaTrust` reads it and checks what RFC 3161 and RFC 5280 ask of it (below).
 * - The client is @sigstore/sign's TSAWitness: POST <url>/api/v1/timestamp with the SHA-256 of
 *   the signature; its retries are off (the outbox owns retrying, across restarts).
 * - `checkTimestamp` is what we require beyond @sigstore/verify, which checks the TSA's signature,
 *   the chain up to the configured certificates and their validity at the signing time, but takes
 *   the imprint's hash algorithm from the timestamp and looks at neither the status nor the EKU.
 */
import { createHash, X509Certificate as NodeX509 } from 'node:crypto';
import { ASN1Obj, RFC3161Timestamp, X509Certificate } from '@sigstore/core';
import type { SignatureBundle } from '@sigstore/sign';
import { TlogError, ErrorCode } from '../errors.js';
import { classifySigstoreError, RekorError, withDeadline } from './remote.js';
import { sigstoreSign } from './sigstore-sign.js';

/** id-kp-timeStamping (RFC 5280 4.2.1.12). */
export const OID_KP_TIMESTAMPING = '1.3.6.1.5.5.7.3.8';
/** id-ce-extKeyUsage (RFC 5280 4.2.1.12). */
const OID_EXT_KEY_USAGE = '2.5.29.37';
/** id-sha256 (RFC 5754 2.2): the only imprint algorithm we accept. */
const SHA256 = 'sha256';

/** A timestamp authority we trust: its certificate chain, leaf (the timestamping certificate) first. */
export interface TsaTrust {
  /** The chain as @sigstore/verify's trust material takes it: leaf first, root last. */
  readonly chain: readonly X509Certificate[];
  /** The timestamping certificate's subject, e.g. "O=Example, CN=Example TSA": "attested by". */
  readonly name: string;
}

function bad(why: string): TlogError {
  return new TlogError(ErrorCode.badInput, `bad TSA certificate chain: ${why}`);
}

/** The certificates of a PEM text, in order. */
function pemCertificates(pem: string): Buffer[] {
  const blocks = [...pem.matchAll(/-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/g)];
  return blocks.map((m) => Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
}

/** The extended key usage purposes of a certificate and whether the extension is critical, or null. */
function extKeyUsage(cert: X509Certificate): { critical: boolean; purposes: string[] } | null {
  const ext = cert.extension(OID_EXT_KEY_USAGE);
  if (!ext) return null;
  const seq = ASN1Obj.parseBuffer(Buffer.from(ext.value) as Buffer<ArrayBuffer>);
  return { critical: ext.critical, purposes: seq.subs.map((s) => s.toOID()) };
}

/**
 * Reads a TSA's certificate chain (PEM, the timestamping certificate first, its root last) and
 * checks it: each certificate is issued and signed by the next, every issuer is a CA, the last
 * is self-signed; the first carries exactly the critical extended key usage id-kp-timeStamping
 * (RFC 3161 2.3: "This extension MUST be critical" and id-kp-timeStamping its only KeyPurposeID).
 * Throws `bad_input` saying which certificate is wrong.
 */
export function tsaTrust(pem: string): TsaTrust {
  const ders = pemCertificates(pem);
  if (ders.length < 2) throw bad(`want the timestamping certificate and the certificates up to its root (PEM), got ${ders.length} certificate(s)`);
  const node: NodeX509[] = [];
  const chain: X509Certificate[] = [];
  for (const [i, der] of ders.entries()) {
    try {
      node.push(new NodeX509(der));
      chain.push(X509Certificate.parse(der as Buffer<ArrayBuffer>));
    } catch (e) {
      throw bad(`certificate ${i + 1} is unreadable: ${(e as Error).message}`);
    }
  }
  for (let i = 0; i + 1 < node.length; i++) {
    const [cert, issuer] = [node[i]!, node[i + 1]!];
    if (!issuer.ca) throw bad(`certificate ${i + 2} (${oneLine(issuer.subject)}) is not a CA`);
    if (!cert.checkIssued(issuer) || !cert.verify(issuer.publicKey)) {
      throw bad(`certificate ${i + 1} (${oneLine(cert.subject)}) is not issued by certificate ${i + 2} (${oneLine(issuer.subject)}): leaf first, root last`);
    }
  }
  const root = node[node.length - 1]!;
  if (!root.checkIssued(root) || !root.verify(root.publicKey)) throw bad(`the last certificate (${oneLine(root.subject)}) is not a self-signed root`);
  const eku = extKeyUsage(chain[0]!);
  if (!eku) throw bad(`the timestamping certificate (${oneLine(node[0]!.subject)}) has no extended key usage: RFC 3161 2.3 wants id-kp-timeStamping`);
  if (!eku.critical) throw bad('the extended key usage of the timestamping certificate is not critical (RFC 3161 2.3)');
  if (eku.purposes.length !== 1 || eku.purposes[0] !== OID_KP_TIMESTAMPING) {
    throw bad(`the timestamping certificate's extended key usage is ${eku.purposes.join(', ')}, want only id-kp-timeStamping (RFC 3161 2.3)`);
  }
  return { chain, name: oneLine(node[0]!.subject) };
}

/** Node's multi-line distinguished name as one line. */
function oneLine(dn: string): string {
  return dn.split('\n').filter(Boolean).join(', ');
}

function fail(why: string): TlogError {
  return new TlogError(ErrorCode.verification, `timestamp: ${why}`);
}

export function parseTimestamp(der: Uint8Array): RFC3161Timestamp {
  try {
    const ts = RFC3161Timestamp.parse(Buffer.from(der) as Buffer<ArrayBuffer>);
    void ts.tstInfo.genTime; // parse the parts we read now, not half-way through the checks
    void ts.signerSerialNumber;
    return ts;
  } catch (e) {
    throw fail(`not an RFC 3161 TimeStampResp: ${(e as Error).message}`);
  }
}

export interface TimestampSummary {
  /** The TSA's genTime. */
  readonly time: Date;
  /** The trusted TSA whose timestamping certificate issued it. */
  readonly tsa: TsaTrust;
}

/**
 * Our checks of a TimeStampResp over `signature` (@sigstore/verify then checks its signature and
 * chain): the status is granted (RFC 3161 2.4.2), the message imprint is SHA-256 over exactly the
 * signature bytes, and the signer (issuer and serial number, RFC 5652 5.3) is the timestamping
 * certificate of one of the trusted TSAs. Throws `verification_failed` saying what did not hold.
 */
export function checkTimestamp(der: Uint8Array, signature: Uint8Array, trusted: readonly TsaTrust[]): TimestampSummary {
  const ts = parseTimestamp(der);
  let status: bigint;
  let alg: string | undefined;
  let imprint: Buffer;
  try {
    status = ts.status;
    alg = ts.tstInfo.messageImprintHashAlgorithm;
    imprint = ts.tstInfo.messageImprintHashedMessage;
  } catch (e) {
    throw fail(`unreadable TSTInfo: ${(e as Error).message}`);
  }
  // PKIStatus granted (0) or grantedWithMods (1); anything else carries no token.
  if (status !== 0n && status !== 1n) throw fail(`the TSA refused (PKIStatus ${status})`);
  if (alg !== SHA256) throw fail(`the message imprint is ${alg ?? 'an unknown algorithm'}, want SHA-256`);
  if (!imprint.equals(createHash(SHA256).update(signature).digest()))
    throw fail('the message imprint is not SHA-256 of the anchoring signature: it timestamps other bytes');
  const tsa = trusted.find((t) => t.chain[0]!.serialNumber.equals(ts.signerSerialNumber) && t.chain[0]!.issuer.equals(ts.signerIssuer));
  if (!tsa) throw fail('signed by a TSA certificate that is not the configured one');
  return { time: ts.signingTime, tsa };
}

/** Whether a TSA's time is one a timestamp over a signature made at `signedAt` can truthfully carry. */
export function plausibleTime(time: Date, signedAt: number, now: number, skewMs: number): boolean {
  // The signature cannot have been timestamped before it was made, nor after now.
  return time.getTime() >= signedAt - skewMs && time.getTime() <= now + skewMs;
}

/**
 * Asks a timestamp authority for a TimeStampResp over a message signature (not checked here).
 * Errors are RekorErrors naming the TSA: retryable for network failures, timeouts, 408, 429, 5xx.
 */
export async function requestTimestamp(url: string, content: SignatureBundle, timeoutMs: number): Promise<Uint8Array> {
  const { TSAWitness } = await sigstoreSign();
  const witness = new TSAWitness({ tsaBaseURL: url, retry: 0, timeout: timeoutMs });
  let ts: Uint8Array | undefined;
  try {
    const { rfc3161Timestamps } = await withDeadline(witness.testify(content), timeoutMs + 1000, `tsa ${url}`);
    ts = rfc3161Timestamps[0]?.signedTimestamp;
  } catch (e) {
    throw classifySigstoreError(e, `tsa ${url}`);
  }
  if (!ts || ts.length === 0) throw new RekorError(`tsa ${url}: no timestamp in the answer`, true);
  return ts;
}
