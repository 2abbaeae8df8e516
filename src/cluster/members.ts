/**
 * The nodes of a cluster, as seen through the object store: each node rewrites its member
 * object `nodes/<id>` every pass (a heartbeat), and counts as live every node whose member
 * object changed within a ttl, by this node's own monotonic clock (the rule of lease.ts: no two
 * clocks are compared). A node is identified by its advertised URL, which is stable across its
 * restarts, so the tenants it prefers (rendezvous.ts) stay the same when it comes back.
 *
 * Liveness is only a hint for spreading the tenants: who may write a tenant is decided by its
 * lease alone (lease.ts), so two nodes that disagree about who is live never write together.
 */
import { createHash, randomBytes } from 'node:crypto';
import { TlogError, ErrorCode } from '../errors.js';
import { isPreconditionFailed, listWithEtags, type ObjectStore } from '../storage/object-store.js';

/** The member object as stored. */
export interface MemberRecord {
  /** The URL other nodes forward requests to. */
  readonly url: string;
  /** The lease holder name of this incarnation of the node (lease.ts). */
  readonly holder: string;
  /** The node's wall clock at the write, for people only. */
  readonly at: string;
  /** Makes every write's bytes unique (object-store.ts: etags come from the content). */
  readonly nonce: string;
}

/** A live node: its URL, and since when (monotonic ms) it has been live without a break. */
export interface LiveMember {
  readonly url: string;
  readonly liveSince: number;
}

export function memberKey(url: string): string {
  return `nodes/${createHash('sha256').update(url).digest('hex').slice(0, 32)}`;
}

function parseMember(bytes: Uint8Array): MemberRecord | null {
  try {
    const r = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) as Partial<MemberRecord>;
    if (typeof r?.url === 'string' && typeof r.holder === 'string') return r as MemberRecord;
  } catch {
    // a damaged member object: that node is not counted until it writes a good one
  }
  return null;
}

export class Membership {
  private etag: string | null = null;
  /** Per member key: the version last seen, since when, and since when the node has been live. */
  private readonly seen = new Map<string, { etag: string; since: number; url: string; liveSince: number }>();

  constructor(
    private readonly store: ObjectStore,
    readonly url: string,
    readonly holder: string,
    private readonly ttlMs: number,
    private readonly clock: () => number = () => performance.now(),
  ) {
    if (!/^https?:\/\/[^\s]+$/.test(url)) throw new TlogError(ErrorCode.badInput, `advertised URL ${JSON.stringify(url)}: want http(s)://host:port`);
  }

  /** Rewrites this node's member object; a version we did not expect (our previous incarnation's) is read and replaced. */
  async heartbeat(): Promise<void> {
    const key = memberKey(this.url);
    const rec: MemberRecord = { url: this.url, holder: this.holder, at: new Date().toISOString(), nonce: randomBytes(12).toString('hex') };
    const bytes = new TextEncoder().encode(`${JSON.stringify(rec)}\n`);
    for (let attempt = 0; ; attempt++) {
      if (this.etag === null) {
        const cur = await this.store.get(key);
        this.etag = cur ? cur.etag : '';
      }
      try {
        this.etag = await this.store.putMutable(key, bytes, this.etag === '' ? 'absent' : { etag: this.etag });
        return;
      } catch (e) {
        this.etag = null;
        if (!isPreconditionFailed(e) || attempt >= 2) throw e;
      }
    }
  }

  /**
   * Lists the member objects (one listing: their etags come with it); the live nodes, this one
   * included, sorted by URL. A member object is read only when its key is new here: a key is the
   * hash of its node's URL, so what it says that counts (the URL) never changes, and a changed
   * etag is all a heartbeat needs to show.
   */
  async live(): Promise<LiveMember[]> {
    const listed = await listWithEtags(this.store, 'nodes/');
    const fresh = await Promise.all(listed.filter((l) => !this.seen.has(l.key)).map(async (l) => ({ l, o: await this.store.get(l.key) })));
    const now = this.clock();
    const urls = new Map<string, { url: string; etag: string }>();
    for (const { l, o } of fresh) {
      const rec = o === null ? null : parseMember(o.bytes);
      // A damaged member object: that node is not counted until it writes a good one.
      if (o !== null && rec !== null && memberKey(rec.url) === l.key) urls.set(l.key, { url: rec.url, etag: o.etag });
    }
    const out: LiveMember[] = [];
    const present = new Set<string>();
    for (const { key: k, etag } of listed) {
      let s = this.seen.get(k);
      if (s === undefined) {
        const f = urls.get(k);
        if (f === undefined) continue;
        s = { etag: f.etag, since: now, url: f.url, liveSince: now };
        this.seen.set(k, s);
      } else if (s.etag !== etag) {
        // Changed: live again from now if it had gone quiet for a ttl.
        if (now - s.since >= this.ttlMs) s.liveSince = now;
        s.etag = etag;
        s.since = now;
      }
      present.add(k);
      if (s.url === this.url || now - s.since < this.ttlMs) out.push({ url: s.url, liveSince: s.liveSince });
    }
    for (const k of this.seen.keys()) if (!present.has(k)) this.seen.delete(k);
    if (!out.some((m) => m.url === this.url)) out.push({ url: this.url, liveSince: now });
    return out.sort((a, b) => (a.url < b.url ? -1 : a.url > b.url ? 1 : 0));
  }
}

/**
 * Rendezvous (highest random weight) hashing: the node of `urls` that prefers `tenant`. Every
 * node computes the same answer from the same live set, and a node joining or leaving moves
 * only the tenants it gains or had (about 1/n of them).
 */
export function preferredNode(tenant: string, urls: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestScore = -1n;
  for (const u of urls) {
    const score = createHash('sha256').update(`${tenant}\n${u}`).digest().readBigUInt64BE(0);
    if (score > bestScore || (score === bestScore && best !== undefined && u < best)) {
      best = u;
      bestScore = score;
    }
  }
  return best;
}
