/**
 * The client side of signed write requests: signHttpRequest() signs a write as RFC 9421 HTTP
 * Message Signatures with Content-Digest (RFC 9530), so any RFC 9421 client could do the same;
 * the profile it follows (tag, covered components, counter) is src/signed-write/profile.ts.
 *
 * The earlier X-Tlog-* headers still work for one release (deprecated), with the signed message
 * now at version 2, which names the tenant's origin; see signLegacyRequest().
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { httpbis } from 'http-message-signatures';
import { randomBytes } from 'node:crypto';
import { signedRequestMessage, type LegacySignedFields } from '../signed-write/legacy-message.js';
import { COUNTER_HEADER, MAX_COUNTER, SIGNED_COMPONENTS, contentDigest, signatureTag } from '../signed-write/profile.js';

// For writers that build the request themselves (the `./signed-request` subpath of both packages).
export { contentDigest, signatureTag };

export interface HttpRequestToSign {
  /** The id the tenant registers the client's public key under (the RFC 9421 keyid). */
  readonly clientID: string;
  /** The client's Ed25519 private key (32-byte seed). */
  readonly seed: Uint8Array;
  /** The origin of the tenant's log (its checkpoint's first line): the signature names it. */
  readonly origin: string;
  readonly method: string;
  /** The request URL, or its path and query (`/audit/append-batch?proofs=1`). */
  readonly url: string | URL;
  readonly body: Uint8Array;
  /** Above every counter this client sent to this tenant before. */
  readonly counter: number;
  /** RFC 9421 nonce; random by default. */
  readonly nonce?: string;
  /** Unix seconds; now by default. */
  readonly created?: number;
}

/**
 * The headers of an RFC 9421 signed write: Content-Digest, Tlog-Counter, Signature-Input and
 * Signature (label `tlog`). Send them with exactly `body`, to exactly `url` with `method`.
 */
export async function signHttpRequest(p: HttpRequestToSign): Promise<Record<string, string>> {
  if (!Number.isSafeInteger(p.counter) || p.counter < 0 || p.counter > MAX_COUNTER) throw new RangeError(`counter must be an integer from 0 to ${MAX_COUNTER}`);
  const url = typeof p.url === 'string' ? new URL(p.url, 'http://localhost') : p.url;
  const headers = { 'Content-Digest': contentDigest(p.body), [COUNTER_HEADER]: String(p.counter) };
  const signed = await httpbis.signMessage(
    {
      key: { id: p.clientID, alg: 'ed25519', sign: async (data: Buffer) => Buffer.from(ed25519.sign(data, p.seed)) },
      name: 'tlog',
      fields: [...SIGNED_COMPONENTS],
      params: ['created', 'keyid', 'alg', 'nonce', 'tag'],
      paramValues: {
        created: new Date((p.created ?? Math.floor(Date.now() / 1000)) * 1000),
        nonce: p.nonce ?? randomBytes(16).toString('base64url'),
        tag: signatureTag(p.origin),
      },
    },
    { method: p.method.toUpperCase(), url, headers },
  );
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(signed.headers)) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

// ---- The deprecated X-Tlog-* scheme (kept for one release) ----

/**
 * The X-Tlog-* headers of a v2 signed request (deprecated: use signHttpRequest). `path` includes
 * the query string.
 */
export function signLegacyRequest(p: Omit<LegacySignedFields, 'nonce'> & { clientID: string; seed: Uint8Array; nonce?: string }): Record<string, string> {
  const nonce = p.nonce ?? randomBytes(16).toString('hex');
  const sig = ed25519.sign(signedRequestMessage({ ...p, nonce }), p.seed);
  return {
    'X-Tlog-Client': p.clientID,
    'X-Tlog-Counter': String(p.counter),
    'X-Tlog-Nonce': nonce,
    'X-Tlog-Signature': Buffer.from(sig).toString('base64'),
  };
}
