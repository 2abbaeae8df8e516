/**
 * The signed-write profile both sides share: what a client signs and what the service checks
 * (the signer is src/client/signed-request.ts, the check src/http/message-signature.ts). Pure:
 * no I/O.
 *
 * Signed write requests are for clients that want no shared secret: an Ed25519 key registered
 * for a tenant signs each write, with a counter that must grow with every request (the service
 * keeps it durably per client, so a replayed or reordered request is refused) and the tenant's
 * origin (so a request signed for one tenant is refused by every other, even one that registers
 * the same key).
 *
 * The scheme is RFC 9421 HTTP Message Signatures with Content-Digest (RFC 9530), so any RFC 9421
 * client can write. The signature must be tagged `tag="tlog-worm/<origin>"` and cover at least
 *
 *   ("@method" "@path" "@query" "content-digest" "tlog-counter")   (or "@target-uri" for the last two URL parts)
 *
 * with the parameters created, keyid (the client id), nonce and, optionally, alg="ed25519".
 * `Content-Digest` carries `sha-256` of the body; `Tlog-Counter` carries the counter as a
 * canonical decimal. The counter is a covered header rather than a signature parameter because
 * RFC 9421 §2.3 leaves new parameters to its IANA registry, and every RFC 9421 client can cover
 * a header where not every one can add a parameter.
 *
 * The earlier X-Tlog-* headers still work for one release (deprecated): legacy-message.ts.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { createHash } from 'node:crypto';

/** The RFC 9421 `tag` of a write to the log with this origin. */
export const signatureTag = (origin: string): string => `tlog-worm/${origin}`;
/** What the tag starts with, whatever the tenant. */
export const SIGNATURE_TAG_PREFIX = 'tlog-worm/';
/** The header that carries the counter (covered by the signature). */
export const COUNTER_HEADER = 'Tlog-Counter';
/** The covered components of signHttpRequest(), in order. */
export const SIGNED_COMPONENTS = ['@method', '@path', '@query', 'content-digest', 'tlog-counter'] as const;
/** The largest counter: Tlog-Counter is also an RFC 8941 Integer, which has 15 digits. */
export const MAX_COUNTER = 999_999_999_999_999;

/** The `Content-Digest` field value (RFC 9530 §2) of a body: its SHA-256. */
export function contentDigest(body: Uint8Array): string {
  return `sha-256=:${createHash('sha256').update(body).digest('base64')}:`;
}

/** Ed25519 verification as the service does it (strict RFC 8032, not ZIP 215). */
export function verifyEd25519(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  try {
    return signature.length === 64 && ed25519.verify(signature, message, publicKey, { zip215: false });
  } catch {
    return false;
  }
}
