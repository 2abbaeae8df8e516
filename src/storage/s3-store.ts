/**
 * The S3 driver of ObjectStore (object-store.ts), through the AWS SDK for JavaScript against any
 * S3-compatible endpoint (AWS, versitygw, MinIO, Ceph RGW, ...).
 *
 * Conditional writes (Amazon S3 User Guide, "Add preconditions to S3 operations with
 * conditional requests"): an immutable object is PUT with `If-None-Match: *`, a mutable one
 * with `If-Match: <etag>` (or `If-None-Match: *` for its first version). The store answers
 * 412 Precondition Failed when the condition does not hold, and 409 ConditionalRequestConflict
 * when another conditional write of the key is in flight; a 409 is retried (the condition is
 * evaluated again), a 412 is final. A missing key under If-Match is a 404 NoSuchKey: it too
 * means "not the version you expected".
 *
 * A conditional PUT whose answer was lost (the SDK retries, or the caller does) comes back as
 * 412 although it landed. So on 412 the object is read: identical bytes mean our write is the
 * stored one (for immutable objects, the normal "already there"; for mutable ones, every write
 * carries bytes no other writer produces, see object-store.ts), other bytes mean we lost.
 *
 * Every PUT carries Content-MD5 (RFC 1864): S3 refuses a retention PUT without an integrity
 * header, and a body damaged in transit is refused rather than stored.
 */
import { createHash } from 'node:crypto';
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  PutObjectRetentionCommand,
  S3Client,
  S3ServiceException,
  type ObjectLockMode,
  type PutObjectCommandInput,
} from '@aws-sdk/client-s3';
import { TlogError, ErrorCode } from '../errors.js';
import { LeanS3 } from './s3-lean.js';
import {
  checkKey,
  checkPrefix,
  immutableConflict,
  PreconditionFailed,
  type Expected,
  type ObjectStore,
  type PutOptions,
  type StoredObject,
} from './object-store.js';

/** How to reach an S3-compatible endpoint. */
export interface S3Endpoint {
  /** e.g. https://s3.eu-west-1.amazonaws.com or http://127.0.0.1:7070; absent: AWS by region. */
  readonly endpoint?: string;
  readonly region: string;
  /**
   * How long one request may take, answer included, before it fails (default 30 s): a store
   * that hangs rather than refusing (a silent network partition) must fail the batch (the log
   * stops, the node lets the tenant go) instead of holding it forever. Connecting: 5 s at most.
   */
  readonly requestTimeoutMs?: number;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

/** S3 Object Lock retention for every immutable object a tenant writes. */
export interface Retention {
  /** COMPLIANCE: nobody can shorten or remove it; GOVERNANCE: users with s3:BypassGovernanceRetention can. */
  readonly mode: 'COMPLIANCE' | 'GOVERNANCE';
  /** Whole days from the write. */
  readonly days: number;
}

export interface S3StoreOptions {
  readonly bucket: string;
  /** Key prefix of this store inside the bucket: "" or ending in "/" (e.g. "tenants/audit/"). */
  readonly prefix?: string;
  /** Object Lock retention for putImmutable; check the bucket first with checkObjectLock (object-lock.ts). */
  readonly retention?: Retention;
  /** Times a 409 ConditionalRequestConflict is retried before it is reported (default 8). */
  readonly conflictRetries?: number;
  /** Test hook: the clock retention dates are computed from (default Date.now). */
  readonly now?: () => number;
}

const DAY_MS = 86_400_000;

/** Refuses a retention S3 would not take: a mode other than the two, or not a whole number of days >= 1. */
export function checkRetention(r: Retention): void {
  if (!Number.isSafeInteger(r.days) || r.days < 1 || !['COMPLIANCE', 'GOVERNANCE'].includes(r.mode)) {
    throw new TlogError(
      ErrorCode.badInput,
      `bad Object Lock retention ${JSON.stringify(r)}: want mode COMPLIANCE or GOVERNANCE and a whole number of days >= 1`,
    );
  }
}

/** The object's Content-Type and Cache-Control (returned by GET, so a CDN passes them on). */
function servedAs(o: PutOptions): Partial<PutObjectCommandInput> {
  return { ...(o.contentType ? { ContentType: o.contentType } : {}), ...(o.cacheControl ? { CacheControl: o.cacheControl } : {}) };
}

/**
 * A client for S3-compatible servers: path-style addressing (http://host/bucket/key; no DNS per
 * bucket), static credentials, and checksums only where an operation requires one: the SDK's
 * default since 3.729 adds a CRC32 trailer in aws-chunked encoding to every PUT, which several
 * S3-compatible servers refuse. Content-MD5, set by the store, covers integrity.
 */
export function s3Client(e: S3Endpoint): S3Client {
  const client = new S3Client({
    ...(e.endpoint ? { endpoint: e.endpoint } : {}),
    region: e.region,
    credentials: { accessKeyId: e.accessKeyId, secretAccessKey: e.secretAccessKey, ...(e.sessionToken ? { sessionToken: e.sessionToken } : {}) },
    forcePathStyle: true,
    requestHandler: { connectionTimeout: 5_000, requestTimeout: e.requestTimeoutMs ?? 30_000, throwOnRequestTimeout: true },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  // The hot requests (conditional PUT, GET) of an S3Store on this client go the lean way (s3-lean.ts).
  const lean = new LeanS3(e);
  LEAN.set(client, lean);
  const destroy = client.destroy.bind(client);
  client.destroy = () => {
    lean.destroy();
    destroy();
  };
  return client;
}

/** The lean sender of each client s3Client() made (a client made otherwise, e.g. a test's stub, goes through the SDK). */
const LEAN = new WeakMap<S3Client, LeanS3>();

/** The HTTP status of an S3 error (undefined for network errors). */
export function s3Status(e: unknown): number | undefined {
  return (e as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

/** The S3 error code ("PreconditionFailed", "NoSuchKey", ...) of an error, if it is one. */
export function s3Code(e: unknown): string | undefined {
  return e instanceof S3ServiceException ? e.name : (e as { name?: string })?.name;
}

/** Wraps a failed S3 call as an io_error naming the operation and the object. */
export function s3Error(op: string, where: string, e: unknown): TlogError {
  const status = s3Status(e);
  const code = s3Code(e) ?? String(e);
  return new TlogError(
    ErrorCode.io,
    `${op} ${where}: ${code}${status ? ` (HTTP ${status})` : ''}${e instanceof Error && e.message && e.message !== code ? `: ${e.message}` : ''}`,
    { cause: e },
  );
}

function md5Base64(bytes: Uint8Array): string {
  return createHash('md5').update(bytes).digest('base64');
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
}

export class S3Store implements ObjectStore {
  readonly where: string;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly lean: LeanS3 | undefined;

  constructor(
    private readonly client: S3Client,
    private readonly opts: S3StoreOptions,
  ) {
    const prefix = opts.prefix ?? '';
    if (prefix !== '') {
      if (!prefix.endsWith('/')) throw new TlogError(ErrorCode.badInput, `S3 key prefix ${JSON.stringify(prefix)} must end with "/"`);
      checkKey(prefix.slice(0, -1));
    }
    if (opts.retention) checkRetention(opts.retention);
    this.bucket = opts.bucket;
    this.prefix = prefix;
    this.lean = LEAN.get(client);
    this.where = `s3://${opts.bucket}/${prefix}`;
  }

  async putImmutable(key: string, bytes: Uint8Array, opts: PutOptions = {}): Promise<'created' | 'existed'> {
    checkKey(key);
    const r = opts.retention ?? this.opts.retention;
    if (opts.retention) checkRetention(opts.retention);
    const lock: Partial<PutObjectCommandInput> = r
      ? { ObjectLockMode: r.mode as ObjectLockMode, ObjectLockRetainUntilDate: new Date((this.opts.now ?? Date.now)() + r.days * DAY_MS) }
      : {};
    const won = await this.conditionalPut(key, bytes, { IfNoneMatch: '*', ...lock, ...servedAs(opts) });
    if (won !== null) return 'created';
    const have = await this.get(key);
    // 412 and then nothing: the object was there and has been deleted since (only an
    // administrator can; with Object Lock, only as a delete marker). Report, do not rewrite.
    if (have === null) throw new TlogError(ErrorCode.io, `put ${this.where}${key}: If-None-Match failed but the object is gone`);
    if (!sameBytes(have.bytes, bytes)) throw immutableConflict(this.where, key, have.bytes.length, bytes.length);
    if (r) await this.ensureRetention(key, r);
    return 'existed';
  }

  /**
   * Gives an object found already present the tenant's retention when it has none: the write
   * that stored it may have been answered with an error (or not at all) before the server set
   * the retention (versitygw links the file first, then sets it; see test/storage/s3-guarantees).
   */
  private async ensureRetention(key: string, r: Retention): Promise<void> {
    const Key = this.prefix + key;
    let head;
    try {
      head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key }));
    } catch (e) {
      throw s3Error('head', `${this.where}${key}`, e);
    }
    if (head.ObjectLockMode && head.ObjectLockRetainUntilDate) return;
    try {
      await this.client.send(
        new PutObjectRetentionCommand({
          Bucket: this.bucket,
          Key,
          VersionId: head.VersionId,
          Retention: { Mode: r.mode, RetainUntilDate: new Date((this.opts.now ?? Date.now)() + r.days * DAY_MS) },
        }),
      );
    } catch (e) {
      throw s3Error('put retention of', `${this.where}${key}`, e);
    }
  }

  async putMutable(key: string, bytes: Uint8Array, expected: Expected, opts: PutOptions = {}): Promise<string> {
    checkKey(key);
    const condition = expected === 'absent' ? { IfNoneMatch: '*' } : { IfMatch: expected.etag };
    const etag = await this.conditionalPut(key, bytes, { ...condition, ...servedAs(opts) });
    if (etag !== null) return etag;
    const have = await this.get(key);
    if (have !== null && sameBytes(have.bytes, bytes)) return have.etag; // our own write, answered late
    throw new PreconditionFailed(key, this.where, expected, have === null ? 'there is none' : `the store has version ${have.etag}`);
  }

  /** PUT with a condition: the new etag, or null when the condition failed (412, or 404 under If-Match). */
  private async conditionalPut(key: string, bytes: Uint8Array, extra: Partial<PutObjectCommandInput>): Promise<string | null> {
    const retries = this.opts.conflictRetries ?? 8;
    for (let attempt = 0; ; attempt++) {
      try {
        const etag = this.lean
          ? await this.leanPut(this.lean, key, bytes, extra)
          : (
              await this.client.send(
                new PutObjectCommand({
                  Bucket: this.bucket,
                  Key: this.prefix + key,
                  Body: bytes,
                  ContentLength: bytes.length,
                  ContentMD5: md5Base64(bytes),
                  ...extra,
                }),
              )
            ).ETag;
        if (!etag) throw new TlogError(ErrorCode.io, `put ${this.where}${key}: the store answered without an ETag`);
        return etag;
      } catch (e) {
        if (e instanceof TlogError) throw e;
        const status = s3Status(e);
        if (status === 412 || (status === 404 && extra.IfMatch !== undefined && s3Code(e) !== 'NoSuchBucket')) return null;
        // 409 ConditionalRequestConflict: another conditional write of this key is in flight.
        if (status === 409 && attempt < retries) {
          await new Promise((r) => setTimeout(r, 5 * 2 ** Math.min(attempt, 6) * (0.5 + Math.random())));
          continue;
        }
        throw s3Error('put', `${this.where}${key}`, e);
      }
    }
  }

  /** The PUT of conditionalPut, the lean way: the same headers the SDK would send for `extra`. */
  private async leanPut(lean: LeanS3, key: string, bytes: Uint8Array, extra: Partial<PutObjectCommandInput>): Promise<string | undefined> {
    const h: Record<string, string> = { 'content-md5': md5Base64(bytes) };
    if (extra.IfNoneMatch) h['if-none-match'] = extra.IfNoneMatch;
    if (extra.IfMatch) h['if-match'] = extra.IfMatch;
    if (extra.ContentType) h['content-type'] = extra.ContentType;
    if (extra.CacheControl) h['cache-control'] = extra.CacheControl;
    if (extra.ObjectLockMode) h['x-amz-object-lock-mode'] = extra.ObjectLockMode;
    if (extra.ObjectLockRetainUntilDate) h['x-amz-object-lock-retain-until-date'] = new Date(extra.ObjectLockRetainUntilDate).toISOString();
    const a = await lean.send('PUT', this.bucket, this.prefix + key, h, bytes);
    return a.headers.etag;
  }

  async get(key: string): Promise<StoredObject | null> {
    checkKey(key);
    if (this.lean) {
      try {
        const a = await this.lean.send('GET', this.bucket, this.prefix + key, {});
        if (!a.headers.etag) throw new TlogError(ErrorCode.io, `get ${this.where}${key}: the store answered without an ETag`);
        return { bytes: new Uint8Array(a.body.buffer, a.body.byteOffset, a.body.byteLength), etag: a.headers.etag };
      } catch (e) {
        if (e instanceof TlogError) throw e;
        if (s3Status(e) === 404 && s3Code(e) === 'NoSuchKey') return null;
        throw s3Error('get', `${this.where}${key}`, e);
      }
    }
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }));
      const bytes = await out.Body!.transformToByteArray();
      if (!out.ETag) throw new TlogError(ErrorCode.io, `get ${this.where}${key}: the store answered without an ETag`);
      return { bytes, etag: out.ETag };
    } catch (e) {
      if (e instanceof TlogError) throw e;
      if (s3Status(e) === 404 && s3Code(e) === 'NoSuchKey') return null;
      throw s3Error('get', `${this.where}${key}`, e);
    }
  }

  async list(prefix: string): Promise<string[]> {
    checkPrefix(prefix);
    const keys: string[] = [];
    let token: string | undefined;
    do {
      let out;
      try {
        out = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.prefix + prefix, ContinuationToken: token }));
      } catch (e) {
        throw s3Error('list', `${this.where}${prefix}`, e);
      }
      for (const o of out.Contents ?? []) if (o.Key !== undefined) keys.push(o.Key.slice(this.prefix.length));
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
    // S3 lists in UTF-8 binary order; sorting again keeps the contract for servers that do not.
    return keys.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  }
}
