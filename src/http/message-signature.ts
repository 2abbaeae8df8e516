/**
 * The service side of RFC 9421 signed writes (the profile is src/signed-write/profile.ts, the
 * signer src/client/signed-request.ts). Everything but the body is checked here, before the body
 * is read: the signature covers the Content-Digest header, not the body, so only that digest is
 * left for checkBody() once the body is in.
 *
 * Signature bases are built by the http-message-signatures library (checked against RFC 9421
 * Appendix B in test/http/message-signature.test.ts); choosing the signature, its parameters, the
 * time window, the covered components and the Ed25519 verification are ours, because the
 * library's verifyMessage() accepts any one of several signatures and bends `created` by its
 * tolerance in both directions.
 */
import { httpbis } from 'http-message-signatures';
import { createHash } from 'node:crypto';
import { isInnerList, parseDictionary, serializeItem, serializeList, type Dictionary, type InnerList } from 'structured-headers';
import { parseCanonicalDecimal } from '../decimal.js';
import { TlogError, ErrorCode } from '../errors.js';
import { MAX_COUNTER, SIGNATURE_TAG_PREFIX, signatureTag, verifyEd25519 } from '../signed-write/profile.js';

/** What a signed request's check needs of the request: its method, absolute URL and headers. */
export interface RequestView {
  readonly method: string;
  readonly url: string;
  readonly headers: Headers;
}

/** The tenant's side: its origin, its client keys and their last counters. */
export interface Signers {
  readonly origin: string;
  key(clientID: string): Uint8Array | undefined;
  lastCounter(clientID: string): number;
}

/** A signed request whose signature verified; its body is still to be checked. */
export interface SignedWrite {
  readonly clientID: string;
  readonly counter: number;
  /** Throws unauthorized unless `body` is what was signed. */
  checkBody(body: Uint8Array): void;
}

/** How far `created` may lie behind and ahead of the service's clock, in seconds. */
export const MAX_SIGNATURE_AGE = 300;
export const MAX_CLOCK_AHEAD = 60;
/** Bounds of the nonce's length (RFC 9421 leaves its form to the application). */
export const NONCE_MIN = 16;
export const NONCE_MAX = 128;

const unauthorized = (why: string) => new TlogError(ErrorCode.unauthorized, why);
const quoted = (s: string) => JSON.stringify(s.length > 80 ? s.slice(0, 80) + '…' : s);

/**
 * A replay or a stale request: its counter is not above the last one the client used here (kept
 * durably per client and tenant). Both signature schemes refuse it the same way.
 */
export function refuseStaleCounter(signers: Signers, client: string, counter: number): void {
  const last = signers.lastCounter(client);
  if (!(counter > last)) throw unauthorized(`counter ${counter} of client ${client} is not above its last counter ${last}: replayed or stale request`);
}

/**
 * Checks an RFC 9421 signed write to the tenant of `signers` at time `now` (Unix seconds): one
 * signature tagged `tlog-worm/<origin>` of this tenant, by a registered client, created within
 * the window, covering method, path and query (or the target URI), Content-Digest and
 * Tlog-Counter, with a counter above the client's last one. Throws unauthorized otherwise.
 */
export function verifyMessageSignature(req: RequestView, signers: Signers, now: number): SignedWrite {
  const inputText = req.headers.get('signature-input');
  const sigText = req.headers.get('signature');
  if (inputText === null || sigText === null) throw unauthorized('an RFC 9421 signed request needs both Signature-Input and Signature');
  let inputs: Dictionary;
  let sigs: Dictionary;
  try {
    inputs = parseDictionary(inputText);
    sigs = parseDictionary(sigText);
  } catch (e) {
    throw unauthorized(`Signature-Input and Signature must be structured-field dictionaries (RFC 9421 §4): ${(e as Error).message}`);
  }
  // A request may carry other parties' signatures (a proxy's, RFC 9421 §4.3); ours is the one
  // whose tag names this application.
  const expectedTag = signatureTag(signers.origin);
  const ours = [...inputs].filter(([, v]) => {
    const tag = isInnerList(v) ? v[1].get('tag') : undefined;
    return typeof tag === 'string' && tag.startsWith(SIGNATURE_TAG_PREFIX);
  });
  if (ours.length === 0) throw unauthorized(`no signature in Signature-Input is tagged ${quoted(expectedTag)}`);
  if (ours.length > 1) throw unauthorized(`more than one signature in Signature-Input is tagged ${SIGNATURE_TAG_PREFIX}...`);
  const [label, member] = ours[0]!;
  const input = member as InnerList;
  const [items, params] = input;

  const tag = params.get('tag') as string;
  if (tag !== expectedTag)
    throw unauthorized(`the signature is tagged ${quoted(tag)}: it was made for another tenant (this tenant's tag is ${quoted(expectedTag)})`);
  const keyid = params.get('keyid');
  if (typeof keyid !== 'string') throw unauthorized('the signature has no keyid (the client id) string parameter');
  const key = signers.key(keyid);
  if (!key) throw unauthorized(`unknown client ${quoted(keyid)}`);
  const alg = params.get('alg');
  if (alg !== undefined && alg !== 'ed25519') throw unauthorized(`alg ${quoted(String(alg))} is not ed25519, the algorithm of client keys`);
  const nonce = params.get('nonce');
  if (typeof nonce !== 'string' || nonce.length < NONCE_MIN || nonce.length > NONCE_MAX)
    throw unauthorized(`the signature needs a nonce string of ${NONCE_MIN} to ${NONCE_MAX} characters`);
  const created = params.get('created');
  if (typeof created !== 'number' || !Number.isInteger(created)) throw unauthorized('the signature needs a created integer parameter');
  if (created > now + MAX_CLOCK_AHEAD) throw unauthorized(`created ${created} is more than ${MAX_CLOCK_AHEAD} s ahead of the service's clock (${now})`);
  if (now - created > MAX_SIGNATURE_AGE) throw unauthorized(`created ${created} is more than ${MAX_SIGNATURE_AGE} s before the service's clock (${now})`);
  const expires = params.get('expires');
  if (expires !== undefined && (typeof expires !== 'number' || !Number.isInteger(expires))) throw unauthorized('expires must be an integer');
  if (expires !== undefined && now > expires) throw unauthorized(`the signature expired at ${expires} (the service's clock says ${now})`);

  checkCoveredComponents(items);

  const counterText = req.headers.get('tlog-counter') ?? '';
  const counter = parseCanonicalDecimal(counterText, MAX_COUNTER);
  if (counter === null) throw unauthorized(`Tlog-Counter must be a canonical decimal from 0 to ${MAX_COUNTER}`);
  const digests = parseContentDigest(req.headers.get('content-digest') ?? '');
  const sig = sigs.get(label);
  if (!sig || isInnerList(sig) || !(sig[0] instanceof ArrayBuffer) || sig[0].byteLength !== 64) {
    throw unauthorized(`Signature has no 64-byte byte sequence labelled ${quoted(label)}`);
  }
  if (!verifyEd25519(key, signatureBase(req, input), new Uint8Array(sig[0]))) throw unauthorized('the request signature does not verify');
  // After the signature, so only the key's holder learns the last counter. Claiming the new one
  // durably happens later (auth.ts), after the rate and back-pressure checks.
  refuseStaleCounter(signers, keyid, counter);

  return {
    clientID: keyid,
    counter,
    checkBody(body) {
      for (const [alg, want] of digests) {
        if (!createHash(alg).update(body).digest().equals(want)) throw unauthorized(`Content-Digest ${alg} does not match the body (RFC 9530)`);
      }
    },
  };
}

/**
 * Covered components: strings, lowercase (RFC 9421 §2.1), none twice, no @signature-params
 * (§2.3), and ours among them without parameters (a parameter such as `key` could leave the
 * value we check uncovered).
 */
function checkCoveredComponents(items: InnerList[0]): void {
  const seen = new Set<string>();
  for (const item of items) {
    const [name] = item;
    if (typeof name !== 'string') throw unauthorized('a covered component identifier is not a string (RFC 9421 §2)');
    if (name !== name.toLowerCase()) throw unauthorized(`covered component ${quoted(name)} is not lowercase (RFC 9421 §2.1)`);
    if (name === '@signature-params') throw unauthorized('@signature-params cannot be a covered component (RFC 9421 §2.3)');
    const id = serializeItem(item);
    if (seen.has(id)) throw unauthorized(`covered component ${id} is listed twice (RFC 9421 §2.5)`);
    seen.add(id);
  }
  const covers = (name: string) => seen.has(`"${name}"`);
  const missing = ['@method', 'content-digest', 'tlog-counter'].filter((n) => !covers(n));
  if (!covers('@target-uri') && !(covers('@path') && covers('@query'))) missing.push('@path and @query (or @target-uri)');
  if (missing.length > 0) throw unauthorized(`the signature must cover ${missing.join(', ')}`);
}

/** The digests of a Content-Digest field (RFC 9530 §2) that we check: sha-256 (required) and sha-512. */
function parseContentDigest(text: string): [string, Buffer][] {
  let dict: Dictionary;
  try {
    dict = parseDictionary(text);
  } catch {
    throw unauthorized('Content-Digest is not a structured-field dictionary (RFC 9530 §2)');
  }
  const out: [string, Buffer][] = [];
  for (const [name, alg, size] of [
    ['sha-256', 'sha256', 32],
    ['sha-512', 'sha512', 64],
  ] as const) {
    const member = dict.get(name);
    if (member === undefined) continue;
    if (isInnerList(member) || !(member[0] instanceof ArrayBuffer) || member[0].byteLength !== size) {
      throw unauthorized(`Content-Digest ${name} must be a ${size}-byte byte sequence`);
    }
    out.push([alg, Buffer.from(member[0])]);
  }
  if (!dict.has('sha-256')) throw unauthorized('Content-Digest must carry sha-256 (RFC 9530)');
  return out;
}

/** The RFC 9421 §2.5 signature base of `input` over the request. */
export function signatureBase(req: RequestView, input: InnerList): Uint8Array {
  const headers: Record<string, string> = {};
  req.headers.forEach((v, k) => {
    headers[k] = v;
  });
  try {
    const base = httpbis.createSignatureBase({ fields: input[0].map((i) => serializeItem(i)) }, { method: req.method, url: req.url, headers });
    base.push(['"@signature-params"', [serializeList([input])]]);
    return Buffer.from(httpbis.formatSignatureBase(base), 'utf8');
  } catch (e) {
    throw unauthorized(`cannot build the signature base: ${(e as Error).message}`);
  }
}
