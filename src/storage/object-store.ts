/**
 * The storage driver boundary: what a log keeps, as named objects in a flat key space.
 *
 * Two kinds of object, with the guarantees the store itself must give (not the caller's luck):
 *  - immutable: tiles, entry bundles, checkpoint history, journal segments. Written once;
 *    putImmutable succeeds when the key is absent or already holds exactly these bytes, and
 *    refuses other bytes (code immutable_conflict). On S3 the write is `If-None-Match: *`
 *    (RFC 9110 13.1.2), so no writer can ever replace one, whatever it believes.
 *  - mutable: one per tenant for the published checkpoint (and the lease, src/cluster/lease.ts).
 *    putMutable replaces it only when it still is the version the caller read (`If-Match:
 *    <etag>`, RFC 9110 13.1.1) or, for the first write, when it is absent (`If-None-Match: *`);
 *    otherwise PreconditionFailed and nothing changed. So of two writers racing to extend the
 *    same checkpoint exactly one wins: never two roots for one size.
 *
 * Etags are opaque. Both drivers derive them from the content (S3: MD5 of a single-part PUT;
 * POSIX: SHA-256), so a mutable object rewritten with the same bytes has the same etag again:
 * every mutable write must carry something that changes (a size, an epoch, a time).
 *
 * A resolved write is durable in the store: on S3 once the PUT is answered 200; on POSIX once
 * the file and its directory are fsynced.
 *
 * What the engine (src/log) will need to write through this boundary (the split is not done
 * yet; today the engine writes files itself through DurableWriter):
 *  - its tiles, bundles and history as putImmutable, many at once (one batch: Promise.all);
 *    its immutable_conflict stays what it is today, a stop-the-log error;
 *  - the published checkpoint as putMutable with the etag of the checkpoint it extends, kept
 *    from its own last write or from get() at start; PreconditionFailed means another writer
 *    published: the batch is not acknowledged, the writer rereads (and, lease lost, stops);
 *  - the fencing epoch of its lease (src/cluster/lease.ts) inside the checkpoint object it
 *    publishes, and, on taking a lease over, one putMutable of the current checkpoint carrying
 *    the new epoch: that invalidates the etag the old holder kept, so a holder paused past its
 *    lease cannot publish even when the new one has published nothing yet;
 *  - an acknowledgement only once the batch is in the store (or in a journal object there);
 *  - reads by key (get) for tiles and the checkpoint, list(prefix) for recovery.
 */
import { TlogError, ErrorCode } from '../errors.js';

/** An object's bytes and the etag that names this version of it. */
export interface StoredObject {
  readonly bytes: Uint8Array;
  readonly etag: string;
}

/** A key as a listing gives it: its etag (the same string get() returns) and when it was last written. */
export interface ListedObject {
  readonly key: string;
  readonly etag: string;
  /** Its length in bytes. */
  readonly size: number;
  /** The store's clock at the write, for people: nothing decides on it (no two clocks are compared). */
  readonly lastModified?: Date;
}

/** What a mutable write expects to find: the version it read, or nothing at all. */
export type Expected = { readonly etag: string } | 'absent';

/**
 * How an object is to be served and kept, for stores that keep such things (S3; the POSIX
 * driver has no metadata and ignores it): the HTTP headers a CDN in front of the bucket sends
 * (the same as our own server's for the same path), and Object Lock retention.
 */
export interface PutOptions {
  readonly contentType?: string;
  readonly cacheControl?: string;
  /** S3 Object Lock for this object (putImmutable only); overrides the store's default. */
  readonly retention?: { readonly mode: 'COMPLIANCE' | 'GOVERNANCE'; readonly days: number };
}

export interface ObjectStore {
  /** Where the objects live, for messages: `s3://bucket/prefix/`, `posix:/dir/`. */
  readonly where: string;
  /**
   * Writes an immutable object. 'created' when this call wrote it, 'existed' when identical
   * bytes were already there; throws code immutable_conflict when other bytes are.
   */
  putImmutable(key: string, bytes: Uint8Array, opts?: PutOptions): Promise<'created' | 'existed'>;
  /** Writes a mutable object if it is as expected; returns the new etag. Throws PreconditionFailed otherwise. */
  putMutable(key: string, bytes: Uint8Array, expected: Expected, opts?: PutOptions): Promise<string>;
  /** The object, or null when there is none. */
  get(key: string): Promise<StoredObject | null>;
  /** Every key starting with prefix, sorted (bytewise, as S3 lists them). */
  list(prefix: string): Promise<string[]>;
  /**
   * Every key starting with prefix with its etag, sorted as list(), in as few requests as the
   * store allows (S3: one ListObjectsV2 per 1000 keys, the etags come with it). Optional: see
   * listWithEtags for the stores without it.
   */
  listObjects?(prefix: string): Promise<ListedObject[]>;
}

/**
 * Every key under prefix with its etag: one listing where the store has listObjects, else a
 * list() and a get() per key (POSIX: a read each; the etags there are content hashes).
 */
export async function listWithEtags(store: ObjectStore, prefix: string): Promise<ListedObject[]> {
  if (store.listObjects) return store.listObjects(prefix);
  const keys = await store.list(prefix);
  const objs = await Promise.all(keys.map(async (key) => ({ key, o: await store.get(key) })));
  return objs.flatMap(({ key, o }) => (o === null ? [] : [{ key, etag: o.etag, size: o.bytes.length }]));
}

/** A conditional write found another version than the one it expected: nothing was written. */
export class PreconditionFailed extends TlogError {
  constructor(
    readonly key: string,
    readonly where: string,
    readonly expected: Expected,
    detail: string,
  ) {
    super(ErrorCode.conflict, `${where}${key}: ${expected === 'absent' ? 'exists already' : `is no longer version ${expected.etag}`} (${detail})`);
    this.name = 'PreconditionFailed';
  }
}

export function isPreconditionFailed(e: unknown): e is PreconditionFailed {
  return e instanceof PreconditionFailed;
}

/** Refusal to replace an immutable object with other bytes. */
export function immutableConflict(where: string, key: string, have: number, want: number): TlogError {
  return new TlogError(ErrorCode.immutableConflict, `refusing to overwrite immutable ${where}${key} with different bytes (${have} bytes stored, ${want} new)`);
}

/**
 * Keys the drivers accept: "/"-separated segments of letters, digits, ".", "_" and "-", none
 * empty and none starting with "." (so no "..", and the POSIX driver's temp and lock files,
 * which start with ".", never collide with an object). Everything tlog-tiles names fits
 * (tile/0/x001/234.p/5, tile/entries/000, checkpoint).
 */
const SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

export function checkKey(key: string): void {
  if (key.length === 0 || key.length > 1024 || !key.split('/').every((s) => SEGMENT.test(s))) {
    throw new TlogError(
      ErrorCode.badInput,
      `bad object key ${JSON.stringify(key)}: want "/"-separated segments of A-Z a-z 0-9 . _ -, none empty or starting with "."`,
    );
  }
}

/** A list() prefix: a key, a key's start, or empty for everything. */
export function checkPrefix(prefix: string): void {
  if (prefix === '') return;
  // A prefix may end inside a segment ("tile/0/x0") or at a "/" ("tile/").
  checkKey(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix);
}
