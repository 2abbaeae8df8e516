/**
 * Signed write requests, for clients that want no shared secret: an Ed25519 key registered for
 * the tenant signs the method, the path (with query), the SHA-256 of the body, a random nonce and
 * a counter that must grow with every request. The server keeps the counter durably per client,
 * so a replayed or reordered request is refused.
 *
 * Headers: X-Tlog-Client, X-Tlog-Counter (canonical decimal), X-Tlog-Nonce (32-128 lowercase hex),
 * X-Tlog-Signature (base64 Ed25519 signature of signedRequestMessage()).
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { randomBytes } from 'node:crypto';
import { sha256 } from '../merkle/hash.js';

export const SIGNED_REQUEST_LABEL = 'tlog-signed-request/v1';

export function signedRequestMessage(p: { method: string; path: string; body: Uint8Array; nonce: string; counter: number }): Uint8Array {
  const digest = Buffer.from(sha256(p.body)).toString('hex');
  return Buffer.from(`${SIGNED_REQUEST_LABEL}\n${p.method.toUpperCase()}\n${p.path}\n${digest}\n${p.nonce}\n${p.counter}\n`, 'utf8');
}

/** The headers a client sends with a signed request. `path` includes the query string. */
export function signRequest(p: { clientID: string; seed: Uint8Array; method: string; path: string; body: Uint8Array; counter: number; nonce?: string }): Record<string, string> {
  const nonce = p.nonce ?? randomBytes(16).toString('hex');
  const sig = ed25519.sign(signedRequestMessage({ ...p, nonce }), p.seed);
  return {
    'X-Tlog-Client': p.clientID,
    'X-Tlog-Counter': String(p.counter),
    'X-Tlog-Nonce': nonce,
    'X-Tlog-Signature': Buffer.from(sig).toString('base64'),
  };
}

export function verifySignedRequest(publicKey: Uint8Array, p: { method: string; path: string; body: Uint8Array; nonce: string; counter: number }, signature: Uint8Array): boolean {
  try {
    return signature.length === 64 && ed25519.verify(signature, signedRequestMessage(p), publicKey, { zip215: false });
  } catch {
    return false;
  }
}
