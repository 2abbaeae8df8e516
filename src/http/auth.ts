/**
 * Who may write and read. Per tenant: bearer tokens (stored as SHA-256 hex in the
 * configuration) and signed requests (Ed25519 client keys, a durable per-client counter).
 * The embedded default tenant on loopback is open for writes. Reads are public unless the
 * tenant lists read tokens.
 */
import type { Context } from 'hono';
import { createHash, timingSafeEqual } from 'node:crypto';
import { TlogError, ErrorCode } from '../errors.js';
import { verifySignedRequest } from '../client/signed-request.js';
import type { Tenant } from '../tenants/registry.js';

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

function bearer(c: Context): string | null {
  const h = c.req.header('authorization');
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
   * Uses up a signed request's counter (durably; refuses a replay). Called after the rate and
   * back-pressure checks, so a refused request does not cost the client its counter.
   */
  claim(): Promise<void>;
}

const nothingToClaim = async () => {};

/**
 * Checks the credentials of a write to `t` with body `body`: a bearer token, a signed request
 * whose signature verifies, or the open default tenant. Throws unauthorized otherwise.
 */
export async function authorizeWrite(c: Context, t: Tenant, body: Uint8Array): Promise<WriteAuthorization> {
  const token = bearer(c);
  if (token !== null) {
    const h = hashToken(token);
    if (tokenIn(h, t.auth.tokens)) return { credential: `token:${h.slice(0, 16)}`, claim: nothingToClaim };
    throw unauthorized('bearer token not accepted for writes to this tenant');
  }
  const client = c.req.header('x-tlog-client');
  if (client !== undefined) {
    const key = t.auth.clients.get(client);
    const counterText = c.req.header('x-tlog-counter') ?? '';
    const nonce = c.req.header('x-tlog-nonce') ?? '';
    const sigText = c.req.header('x-tlog-signature') ?? '';
    if (!key) throw unauthorized(`unknown client ${JSON.stringify(client.slice(0, 64))}`);
    if (!/^(0|[1-9][0-9]{0,15})$/.test(counterText)) throw unauthorized('X-Tlog-Counter must be a canonical decimal');
    if (!/^[0-9a-f]{32,128}$/.test(nonce)) throw unauthorized('X-Tlog-Nonce must be 32 to 128 lowercase hex digits');
    const sig = Buffer.from(sigText, 'base64');
    const counter = Number(counterText);
    const url = new URL(c.req.url);
    const ok = verifySignedRequest(key, { method: c.req.method, path: url.pathname + url.search, body, nonce, counter }, sig);
    if (!ok) throw unauthorized('request signature does not verify');
    // A stale counter is refused before any other check; claiming it happens last.
    if (!(counter > t.counters.last(client))) {
      throw unauthorized(`counter ${counter} of client ${client} is not above its last counter ${t.counters.last(client)}: replayed or stale request`);
    }
    const claim = async () => {
      try {
        await t.counters.claim(client, counter);
      } catch (e) {
        if (e instanceof TlogError && e.code === ErrorCode.badInput) throw unauthorized(e.message);
        throw e;
      }
    };
    return { credential: `client:${client}`, claim };
  }
  if (t.auth.open) return { credential: `open:${c.env?.incoming?.socket?.remoteAddress ?? 'local'}`, claim: nothingToClaim };
  throw unauthorized('this tenant needs a bearer token or a signed request to append');
}

/** Reads are public unless the tenant lists read tokens. */
export function authorizeRead(c: Context, t: Tenant): void {
  if (!t.auth.readTokens) return;
  const token = bearer(c);
  if (token === null) throw unauthorized('this tenant needs a bearer token to read');
  if (!tokenIn(hashToken(token), t.auth.readTokens)) throw unauthorized('bearer token not accepted for reads of this tenant');
}
