/**
 * The deprecated X-Tlog-* signed requests (kept for one release; RFC 9421 replaces them, see
 * message-signature.ts). The signed message is at version 2, which names the tenant's origin:
 * version 1 did not, so one v1 request was accepted by every tenant registering the same client
 * key. A v1 signature is refused with a 401 saying how to upgrade.
 *
 * The headers are checked before the body is read; the signature covers the body's hash, so it
 * is verified in checkBody().
 */
import { parseCanonicalDecimal } from '../decimal.js';
import { TlogError, ErrorCode } from '../errors.js';
import { signedRequestMessage, signedRequestMessageV1 } from '../signed-write/legacy-message.js';
import { verifyEd25519 } from '../signed-write/profile.js';
import { refuseStaleCounter, type RequestView, type SignedWrite, type Signers } from './message-signature.js';

const unauthorized = (why: string) => new TlogError(ErrorCode.unauthorized, why);

export function verifyLegacySignature(req: RequestView, signers: Signers): SignedWrite {
  const h = req.headers;
  const client = h.get('x-tlog-client') ?? '';
  const counterText = h.get('x-tlog-counter') ?? '';
  const nonce = h.get('x-tlog-nonce') ?? '';
  const sig = Buffer.from(h.get('x-tlog-signature') ?? '', 'base64');
  const key = signers.key(client);
  if (!key) throw unauthorized(`unknown client ${JSON.stringify(client.slice(0, 64))}`);
  const counter = parseCanonicalDecimal(counterText);
  if (counter === null) throw unauthorized('X-Tlog-Counter must be a canonical decimal');
  if (!/^[0-9a-f]{32,128}$/.test(nonce)) throw unauthorized('X-Tlog-Nonce must be 32 to 128 lowercase hex digits');
  const url = new URL(req.url);
  const signed = { method: req.method, path: url.pathname + url.search, nonce, counter };
  // A stale counter is refused before the body is read; claiming it happens last (auth.ts).
  refuseStaleCounter(signers, client, counter);
  return {
    clientID: client,
    counter,
    checkBody(body) {
      if (verifyEd25519(key, signedRequestMessage({ ...signed, origin: signers.origin, body }), sig)) return;
      if (verifyEd25519(key, signedRequestMessageV1({ ...signed, body }), sig)) {
        throw unauthorized(
          'this request is signed with the X-Tlog v1 message, which does not name the tenant and is no longer accepted: ' +
            'sign RFC 9421 HTTP Message Signatures (tag "tlog-worm/<origin>"), or the tlog-signed-request/v2 message with the origin on its second line',
        );
      }
      throw unauthorized('request signature does not verify');
    },
  };
}
