/**
 * Who may write and read. Per tenant: bearer tokens (stored as SHA-256 hex in the
 * configuration) and signed requests (Ed25519 client keys, RFC 9421 or the deprecated X-Tlog-*
 * headers, the tenant's origin signed, a durable per-client counter).
 * The embedded default tenant on loopback is open for writes. Reads are public unless the
 * tenant lists read tokens.
 */
import type { Context } from 'hono';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { TlogError, ErrorCode } from '../errors.js';
import { verifyLegacySignature } from './legacy-signature.js';
import { verifyMessageSignature, type SignedWrite } from './message-signature.js';
import type { Tenant } from '../tenants/registry.js';

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

function bearer(c: Context): string | null {
  return bearerToken(c.req.header('authorization'));
}

/** The token of an `Authorization: Bearer <token>` header value, or null. */
function bearerToken(h: string | undefined): string | null {
  const m = h ? /^Bearer ([\x21-\x7e]{1,512})$/.exec(h) : null;
  return m ? m[1]! : null;
}

/** Constant-time membership of a token hash in a set of hashes. */
function tokenIn(hash: string, set: ReadonlySet<string>): boolean {
  const a = Buffer.from(hash, 'hex');
  let found = false;
  for (const h of set) if (timingSafeEqual(a, Buffer.from(h, 'hex'))) found = true;
  return found;
}

const unauthorized = (why: string) => new TlogError(ErrorCode.unauthorized, why);

/** The caller's identity for rate limiting. */
export type Credential = string;

export interface WriteAuthorization {
  /** Who is writing, for rate limits. */
  readonly credential: Credential;
  /**
   * Throws unauthorized unless the body is the one a signed request signed (its Content-Digest,
   * or the X-Tlog signature). Called once the body is read, before anything uses it.
   */
  checkBody(body: Uint8Array): void;
  /**
   * Uses up a signed request's counter (durably; refuses a replay). Called after the rate and
   * back-pressure checks, so a refused request does not cost the client its counter.
   */
  claim(): Promise<void>;
}

const nothingToCheck = () => {};
const nothingToClaim = async () => {};

/**
 * Checks the credentials of a write to `t`, before its body is read: a bearer token, a signed
 * request (RFC 9421, or the deprecated X-Tlog-* headers) whose signature names this tenant's
 * origin, or the open default tenant. Throws unauthorized otherwise.
 */
export async function authorizeWrite(c: Context, t: Tenant): Promise<WriteAuthorization> {
  const token = bearer(c);
  if (token !== null) {
    const credential = tokenCredential(t, token);
    if (credential !== null) return { credential, checkBody: nothingToCheck, claim: nothingToClaim };
    throw unauthorized('bearer token not accepted for writes to this tenant');
  }
  const signed = signedWrite(c, t);
  if (signed) {
    const claim = async () => {
      try {
        await t.counters.claim(signed.clientID, signed.counter);
      } catch (e) {
        if (e instanceof TlogError && e.code === ErrorCode.badInput) throw unauthorized(e.message);
        throw e;
      }
    };
    return { credential: `client:${signed.clientID}`, checkBody: (body) => signed.checkBody(body), claim };
  }
  if (t.auth.open) return { credential: `open:${c.env?.incoming?.socket?.remoteAddress ?? 'local'}`, checkBody: nothingToCheck, claim: nothingToClaim };
  throw unauthorized('this tenant needs a bearer token or a signed request to append');
}

/** The rate-limit credential of a bearer token accepted for writes to `t`, or null. */
function tokenCredential(t: Tenant, token: string): Credential | null {
  const h = hashToken(token);
  return tokenIn(h, t.auth.tokens) ? `token:${h.slice(0, 16)}` : null;
}

/**
 * authorizeWrite for a write whose headers alone settle it, from node's request headers: the
 * credential of an accepted bearer token, or of the open tenant's caller without one. Null for
 * every other write (a signed request, a token not accepted, no credentials): authorizeWrite
 * decides those, with the same order of checks.
 */
export function headerOnlyWriteCredential(t: Tenant, headers: IncomingHttpHeaders, remoteAddress: string | undefined): Credential | null {
  const token = bearerToken(headers.authorization);
  if (token !== null) return tokenCredential(t, token);
  if (headers['signature-input'] !== undefined || headers['x-tlog-client'] !== undefined) return null;
  return t.auth.open ? `open:${remoteAddress ?? 'local'}` : null;
}

/** The request's signature, checked as far as it can be without the body; null if it has none. */
function signedWrite(c: Context, t: Tenant): SignedWrite | null {
  const req = { method: c.req.method, url: c.req.url, headers: c.req.raw.headers };
  const signers = { origin: t.log.origin, key: (id: string) => t.auth.clients.get(id), lastCounter: (id: string) => t.counters.last(id) };
  if (req.headers.has('signature-input')) return verifyMessageSignature(req, signers, Math.floor(Date.now() / 1000));
  if (req.headers.has('x-tlog-client')) return verifyLegacySignature(req, signers);
  return null;
}

/** Reads are public unless the tenant lists read tokens. */
export function authorizeRead(c: Context, t: Tenant): void {
  if (!t.auth.readTokens) return;
  const token = bearer(c);
  if (token === null) throw unauthorized('this tenant needs a bearer token to read');
  if (!tokenIn(hashToken(token), t.auth.readTokens)) throw unauthorized('bearer token not accepted for reads of this tenant');
}

/** True when the request may read `t` (see authorizeRead), without refusing it. */
export function mayRead(c: Context, t: Tenant): boolean {
  if (!t.auth.readTokens) return true;
  const token = bearer(c);
  return token !== null && tokenIn(hashToken(token), t.auth.readTokens);
}

/** True when the request carries the admin token, whose SHA-256 hex is `adminTokenHash`; compared in constant time. */
export function hasAdminToken(c: Context, adminTokenHash: string | undefined): boolean {
  const token = bearer(c);
  return adminTokenHash !== undefined && token !== null && tokenIn(hashToken(token), new Set([adminTokenHash]));
}
