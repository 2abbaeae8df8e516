/**
 * The write and read API: append, append-batch, read_since and proofs. Routes exist under
 * /<tenant>/...; app.ts also mounts them un-prefixed for clients naming the tenant in X-Module-ID.
 */
import { Hono, type Context } from 'hono';
import { isCanonicalDecimal, parseCanonicalDecimal } from '../decimal.js';
import { TlogError, ErrorCode } from '../errors.js';
import type { AppendResult } from '../log/log.js';
import { encodeBase64, decodeBase64Strict, decodeNoteBytes, MAX_NOTE_BYTES } from '../note/note.js';
import { formatEntryBundle, MAX_ENTRY_SIZE, parseEntrySequence } from '../tiles/bundle.js';
import type { Tenant } from '../tenants/registry.js';
import { appendAnswer } from './answer.js';
import { authorizeRead, authorizeWrite } from './auth.js';
import type { BodyBudget, BodyLease } from './body-budget.js';
import { bodyUnread, closeAfterAnswer, incomingOf, readIncoming } from './node-io.js';
import type { Metrics } from './observe.js';
import type { TenantOf } from './app.js';

/** Entries one append-batch request may carry. */
export const MAX_BATCH_REQUEST = 65536;
/** Entries one read_since page may return, and the bytes it may hold. */
const MAX_READ_LIMIT = 4096;
const MAX_READ_BYTES = 8 << 20;
/** What c.json() sets. */
const JSON_TYPE = { 'Content-Type': 'application/json' };

function canonicalInt(v: string | undefined, name: string, dflt?: number): number {
  if (v === undefined && dflt !== undefined) return dflt;
  if (v === undefined || !isCanonicalDecimal(v, 16)) throw new TlogError(ErrorCode.badInput, `${name} must be a canonical non-negative integer`);
  const n = parseCanonicalDecimal(v);
  if (n === null) throw new TlogError(ErrorCode.badInput, `${name} is too large`);
  return n;
}

/** The most body bytes a route takes, and how to name that bound in a 413. */
export interface BodyLimit {
  readonly max: number;
  readonly name: string;
}

/** The tenant's body limit, or a tighter bound of the route (`cap`, named `capName`). */
function bodyLimit(t: Tenant, cap = Infinity, capName = ''): BodyLimit {
  const max = t.limits.maxBodyBytes;
  return cap < max ? { max: cap, name: capName } : { max, name: `this tenant's limit of ${max} bytes` };
}

/** An entry is at most 65535 bytes (c2sp.org/tlog-tiles entry bundles): /append takes no more. */
export const entryLimit = (t: Tenant) => bodyLimit(t, MAX_ENTRY_SIZE, `the largest entry, ${MAX_ENTRY_SIZE} bytes`);
/** A cosignature push is a signed note: no larger than the note parser takes. */
const noteLimit = (t: Tenant) => bodyLimit(t, MAX_NOTE_BYTES, `the largest note, ${MAX_NOTE_BYTES} bytes`);

export const tooManyBodies = () => new TlogError(ErrorCode.unavailable, 'too many request bodies in flight: try again shortly', { retryAfterSeconds: 1 });

/**
 * Reads the body, within the route's limit and the in-flight budget of all bodies, refusing as
 * soon as either is passed: a declared Content-Length over the limit (413) or over what the
 * budget has left (503 + Retry-After) before reading anything; a chunked body while it streams
 * in (reading stops and the connection is closed after the answer). So no client can make us
 * buffer more than the limit, nor all of them together more than the budget. The body's share
 * of the budget is held until `use` settles. On node the body comes straight from the
 * IncomingMessage (see node-io.ts); under app.request() from the web Request's stream.
 * Credentials are checked before this is called.
 */
async function withBody<T>(c: Context, budget: BodyBudget, limit: BodyLimit, use: (body: Uint8Array) => Promise<T>): Promise<T> {
  const { max, name } = limit;
  const declared = Number(c.req.header('content-length') ?? NaN);
  if (declared > max) throw new TlogError(ErrorCode.tooLarge, `body is ${declared} bytes, over ${name}`);
  const lease = budget.lease();
  try {
    if (declared > 0 && !lease.cover(declared)) throw tooManyBodies();
    const growth = new BodyGrowth(limit, lease);
    const incoming = incomingOf(c);
    const body = incoming && bodyUnread(incoming) ? await readIncoming(incoming, growth.mayGrow) : await readStream(c.req.raw.body, growth.mayGrow);
    if (body === null) {
      closeAfterAnswer(c);
      throw growth.refusal!;
    }
    return await use(body);
  } finally {
    lease.release();
  }
}

/** Whether a body being read may grow to `total` bytes: within the route's limit and the lease; once not, why. */
export class BodyGrowth {
  refusal: TlogError | null = null;
  constructor(
    private readonly limit: BodyLimit,
    private readonly lease: BodyLease,
  ) {}

  readonly mayGrow = (total: number): boolean => {
    if (total > this.limit.max) this.refusal = new TlogError(ErrorCode.tooLarge, `body is over ${this.limit.name}`);
    else if (!this.lease.cover(total)) this.refusal = tooManyBodies();
    return this.refusal === null;
  };
}

/** A web body stream, whole, or null once `mayGrow` refuses the bytes read so far (the stream is cancelled). */
async function readStream(stream: ReadableStream<Uint8Array> | null, mayGrow: (total: number) => boolean): Promise<Uint8Array | null> {
  if (!stream) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (!mayGrow(total)) {
      await reader.cancel().catch(() => {});
      return null;
    }
    chunks.push(value);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
}

/**
 * A retired tenant takes no more appends (checked after the credentials, before the body): the
 * log stays, read-only, with everything it ever published.
 */
function refuseIfRetired(t: Tenant): void {
  if (t.retired) throw new TlogError(ErrorCode.retired, `tenant ${t.name} is retired: it takes no more entries; its log, proofs and tiles are still served`);
}

/**
 * Back-pressure and rate limits, checked before anything is queued. The entries' place is
 * reserved until they are queued (a signed request's counter is claimed in between), so
 * concurrent requests cannot all pass the check; the caller releases the reservation.
 */
export function admit(t: Tenant, credential: string, n: number): () => void {
  const waiting = t.log.pendingCount + t.reserved;
  if (waiting + n > t.limits.maxPending) {
    throw new TlogError(ErrorCode.unavailable, `tenant ${t.name} has ${waiting} entries waiting: try again shortly`, { retryAfterSeconds: 1 });
  }
  const wait = t.limiter.take(credential, n);
  if (wait > 0) throw new TlogError(ErrorCode.rateLimited, `rate limit of tenant ${t.name} exceeded for this credential`, { retryAfterSeconds: wait });
  t.reserved += n;
  let released = false;
  return () => {
    if (!released) t.reserved -= n;
    released = true;
  };
}

function parseBatchBody(c: Context, body: Uint8Array): Uint8Array[] {
  const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === 'application/json') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(body).toString('utf8'));
    } catch {
      throw new TlogError(ErrorCode.badInput, 'body is not JSON');
    }
    const list = Array.isArray(parsed) ? parsed : (parsed as { entries?: unknown })?.entries;
    if (!Array.isArray(list)) throw new TlogError(ErrorCode.badInput, 'want a JSON array of base64 entries, or {"entries": [...]}');
    if (list.length > MAX_BATCH_REQUEST) throw new TlogError(ErrorCode.tooLarge, `more than ${MAX_BATCH_REQUEST} entries in one request`);
    return list.map((e, i) => {
      const b = typeof e === 'string' ? decodeBase64Strict(e) : null;
      if (!b) throw new TlogError(ErrorCode.badInput, `entries[${i}] is not standard base64`);
      return b;
    });
  }
  if (type === 'application/octet-stream' || type === '') return parseEntrySequence(body, MAX_BATCH_REQUEST);
  throw new TlogError(ErrorCode.badInput, `append-batch takes application/octet-stream (entry bundle encoding) or application/json, not ${type}`);
}

/**
 * The append-batch answer without proofs, `{"treeSize","checkpoint","results":[{"index",
 * "leafHash","duplicate"}...]}`: the bytes JSON.stringify makes of those objects, written
 * directly (a batch is up to 65536 results; base64 and numbers need no escaping).
 */
export function batchAnswer(treeSize: number, note: string, rs: readonly AppendResult[]): string {
  let out = `{"treeSize":${treeSize},"checkpoint":${JSON.stringify(note)},"results":[`;
  for (let i = 0; i < rs.length; i++) {
    const r = rs[i]!;
    out += `${i === 0 ? '' : ','}{"index":${r.index},"leafHash":"${encodeBase64(r.leafHash)}","duplicate":${r.duplicate}}`;
  }
  return `${out}]}`;
}

export function apiRoutes(tenantOf: TenantOf, metrics: Metrics, bodies: BodyBudget): Hono {
  const app = new Hono();
  /** The request's tenant, once the caller may read it. */
  const readable = (c: Context): Tenant => {
    const t = tenantOf(c);
    authorizeRead(c, t);
    return t;
  };

  const countResults = (t: Tenant, rs: AppendResult[]) => {
    let dups = 0;
    for (const r of rs) if (r.duplicate) dups++;
    metrics.countAppends(t.name, rs.length - dups, dups);
  };

  // POST /add is the write route of Tessera's conformance servers (body = the entry, answer = its
  // decimal index as text), so load generators written for them (Tessera's hammer, bench/peer)
  // drive this log too. Same path as /append: same credentials, limits and dedup.
  app.on('POST', ['/append', '/add'], async (c) => {
    const t = tenantOf(c);
    const auth = await authorizeWrite(c, t);
    refuseIfRetired(t);
    return withBody(c, bodies, entryLimit(t), async (body) => {
      auth.checkBody(body);
      const release = admit(t, auth.credential, 1);
      let pending: Promise<AppendResult>;
      let queuedAt: number;
      try {
        await auth.claim();
        queuedAt = performance.now();
        pending = t.log.append(body);
      } finally {
        release();
      }
      const r = await pending;
      metrics.observeAppend((performance.now() - queuedAt) / 1000);
      countResults(t, [r]);
      if (c.req.routePath.endsWith('/add')) return c.text(String(r.index));
      return c.body(appendAnswer(r), 200, JSON_TYPE);
    });
  });

  app.post('/append-batch', async (c) => {
    const t = tenantOf(c);
    const auth = await authorizeWrite(c, t);
    refuseIfRetired(t);
    return withBody(c, bodies, bodyLimit(t), async (body) => {
      auth.checkBody(body);
      const entries = parseBatchBody(c, body);
      if (entries.length === 0) throw new TlogError(ErrorCode.badInput, 'append-batch needs at least one entry');
      const release = admit(t, auth.credential, entries.length);
      let pending: Promise<AppendResult[]>;
      let queuedAt: number;
      try {
        await auth.claim();
        queuedAt = performance.now();
        pending = t.log.appendAll(entries);
      } finally {
        release();
      }
      const rs = await pending;
      metrics.observeAppend((performance.now() - queuedAt) / 1000);
      countResults(t, rs);
      // One checkpoint for the whole answer: the newest, and proofs against it when asked.
      const cp = t.log.committed;
      const withProofs = c.req.query('proofs') === '1';
      // Without proofs, no promise per entry (a batch is up to 65536 of them).
      if (!withProofs) return c.body(batchAnswer(cp.treeSize, cp.note, rs), 200, JSON_TYPE);
      const results = await Promise.all(
        rs.map(async (r) => ({
          index: r.index,
          leafHash: encodeBase64(r.leafHash),
          duplicate: r.duplicate,
          inclusionProof: (await t.log.inclusionProof(r.index, cp.treeSize)).map(encodeBase64),
        })),
      );
      return c.json({ treeSize: cp.treeSize, checkpoint: cp.note, results });
    });
  });

  // Cosignatures pushed by witnesses: stored and served only when they verify against a
  // configured witness key; anything else is a 4xx that changes nothing.
  app.post('/cosignature', async (c) => {
    const t = tenantOf(c);
    if (!t.cosigner) throw new TlogError(ErrorCode.notFound, `tenant ${t.name} has no witnesses configured`);
    const cosigner = t.cosigner;
    return withBody(c, bodies, noteLimit(t), async (body) => c.json(await cosigner.accept(decodeNoteBytes(body))));
  });

  app.get('/read_since', async (c) => {
    const t = readable(c);
    const index = canonicalInt(c.req.query('index'), 'index', 0);
    const limit = Math.min(canonicalInt(c.req.query('limit'), 'limit', 256), MAX_READ_LIMIT);
    if (limit === 0) throw new TlogError(ErrorCode.badInput, 'limit must be at least 1');
    const page = await t.log.readEntries(index, limit);
    // Bound the page by bytes too: large entries make short pages, and the cursor says where to go on.
    let bytes = 0;
    let n = 0;
    while (n < page.entries.length && (n === 0 || bytes + page.entries[n]!.length <= MAX_READ_BYTES)) bytes += page.entries[n++]!.length;
    const entries = page.entries.slice(0, n);
    const next = index + n;
    c.header('Cache-Control', 'no-store');
    if ((c.req.header('accept') ?? '').includes('application/octet-stream')) {
      c.header('Content-Type', 'application/octet-stream');
      c.header('X-Tlog-Next', String(next));
      c.header('X-Tlog-Tree-Size', String(t.log.treeSize));
      const out = entries.length ? formatEntryBundle(entries) : new Uint8Array(0);
      return c.body(new Uint8Array(out.buffer as ArrayBuffer, out.byteOffset, out.byteLength));
    }
    return c.json({ index, next, treeSize: t.log.treeSize, entries: entries.map(encodeBase64) });
  });

  app.get('/proof/inclusion', async (c) => {
    const t = readable(c);
    const index = canonicalInt(c.req.query('index'), 'index');
    const treeSize = canonicalInt(c.req.query('tree_size'), 'tree_size', t.log.treeSize);
    const proof = await t.log.inclusionProof(index, treeSize);
    return c.json({ index, treeSize, leafHash: encodeBase64(await t.log.leafHashAt(index)), inclusionProof: proof.map(encodeBase64) });
  });

  app.get('/proof/by-hash/:hash', async (c) => {
    const t = readable(c);
    const hex = c.req.param('hash');
    if (!/^[0-9a-f]{64}$/.test(hex)) throw new TlogError(ErrorCode.badInput, 'want the leaf hash as 64 lowercase hex digits');
    const found = await t.log.findByLeafHash(Buffer.from(hex, 'hex'));
    if (!found) throw new TlogError(ErrorCode.notFound, 'no entry with this leaf hash');
    return c.json({
      index: found.index,
      treeSize: found.treeSize,
      leafHash: encodeBase64(Buffer.from(hex, 'hex')),
      checkpoint: found.checkpoint,
      inclusionProof: found.proof.map(encodeBase64),
    });
  });

  app.get('/proof/consistency', async (c) => {
    const t = readable(c);
    const oldSize = canonicalInt(c.req.query('old'), 'old');
    const newSize = canonicalInt(c.req.query('new'), 'new', t.log.treeSize);
    const proof = await t.log.consistencyProof(oldSize, newSize);
    return c.json({ old: oldSize, new: newSize, consistencyProof: proof.map(encodeBase64) });
  });

  return app;
}
