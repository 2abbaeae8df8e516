/**
 * Signed write requests, for clients that want no shared secret: an Ed25519 key registered for
 * a tenant signs each write, with a counter that must grow with every request (the service keeps
 * it durably per client, so a replayed or reordered request is refused) and the tenant's origin
 * (so a request signed for one tenant is refused by every other, even one that registers the
 * same key).
 *
 * The scheme is RFC 9421 HTTP Message Signatures with Content-Digest (RFC 9530), so any RFC 9421
 * client can write; signHttpRequest() is ours. The signature must be tagged
 * `tag="tlog-worm/<origin>"` and cover at least
 *
 *   ("@method" "@path" "@query" "content-digest" "tlog-counter")   (or "@target-uri" for the last two URL parts)
 *
 * with the parameters created, keyid (the client id), nonce and, optionally, alg="ed25519".
 * `Content-Digest` carries `sha-256` of the body; `Tlog-Counter` carries the counter as a
 * canonical decimal. The counter is a covered header rather than a signature parameter because
 * RFC 9421 §2.3 leaves new parameters to its IANA registry, and every RFC 9421 client can cover
 * a header where not every one can add a parameter.
 *
 * The earlier X-Tlog-* headers still work for one release (deprecated), with the signed message
 * now at version 2, which names the tenant's origin; see signLegacyRequest().
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { httpbis } from 'http-message-signatures';
import { createHash, randomBytes } from 'node:crypto';
import { sha256 } from '../merkle/hash.js';

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

/** Ed25519 verification as the service does it (strict RFC 8032, not ZIP 215). */
export function verifyEd25519(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  try {
    return signature.length === 64 && ed25519.verify(signature, message, publicKey, { zip215: false });
  } catch {
    return false;
  }
}
