/**
 * The deprecated X-Tlog-* signed message (kept for one release; RFC 9421 replaces it, see
 * profile.ts), shared by the signer (src/client/signed-request.ts) and the check
 * (src/http/legacy-signature.ts). Pure: no I/O.
 */
import { sha256 } from '../merkle/hash.js';

/**
 * Version 2 of the X-Tlog-* signed message names the tenant's origin; version 1 did not, so a
 * v1 request could be replayed into any tenant that registers the same client key. The service
 * refuses v1 signatures and says how to upgrade.
 */
export const SIGNED_REQUEST_LABEL = 'tlog-signed-request/v2';
export const SIGNED_REQUEST_LABEL_V1 = 'tlog-signed-request/v1';

export interface LegacySignedFields {
  readonly origin: string;
  readonly method: string;
  /** The path with its query. */
  readonly path: string;
  readonly body: Uint8Array;
  readonly nonce: string;
  readonly counter: number;
}

/** The v2 message: label, origin, method, path, body SHA-256 hex, nonce and counter, one a line. */
export function signedRequestMessage(p: LegacySignedFields): Uint8Array {
  const digest = Buffer.from(sha256(p.body)).toString('hex');
  return Buffer.from(`${SIGNED_REQUEST_LABEL}\n${p.origin}\n${p.method.toUpperCase()}\n${p.path}\n${digest}\n${p.nonce}\n${p.counter}\n`, 'utf8');
}

/** The v1 message, only so the service can tell an old client why it is refused. */
export function signedRequestMessageV1(p: Omit<LegacySignedFields, 'origin'>): Uint8Array {
  const digest = Buffer.from(sha256(p.body)).toString('hex');
  return Buffer.from(`${SIGNED_REQUEST_LABEL_V1}\n${p.method.toUpperCase()}\n${p.path}\n${digest}\n${p.nonce}\n${p.counter}\n`, 'utf8');
}
