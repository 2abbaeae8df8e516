/**
 * The start-up check of a tenant's WORM retention against its bucket's S3 Object Lock
 * configuration (GetObjectLockConfiguration). Needed because a store may accept a retention PUT
 * to a bucket without Object Lock and keep the object unprotected (versitygw 1.8.0 stores it,
 * then answers 400; see test/storage/s3-guarantees.test.ts): the configuration is refused
 * before the first write, naming both the bucket and the tenant.
 *
 * Refused:
 *  - a tenant asking for retention on a bucket without Object Lock (it can only be enabled on a
 *    versioned bucket, and on AWS once enabled never turned off);
 *  - a tenant retention weaker than the bucket's default retention: a retention given with a
 *    PUT replaces the bucket's default for that object (Amazon S3 User Guide, "Locking objects
 *    with Object Lock"), so the tenant would lower what the bucket's owner set. Weaker means
 *    GOVERNANCE under a COMPLIANCE default, or fewer days (a default year counts as 366 days,
 *    the longest a calendar year can be, so a weaker tenant is never let through).
 */
import { GetObjectLockConfigurationCommand, type S3Client } from '@aws-sdk/client-s3';
import { TlogError, ErrorCode } from '../errors.js';
import { s3Code, s3Error, type Retention } from './s3-store.js';

/** What a bucket says about Object Lock. */
export interface BucketLock {
  readonly enabled: boolean;
  /** The retention objects get when their PUT names none. */
  readonly defaultRetention?: { readonly mode: 'COMPLIANCE' | 'GOVERNANCE'; readonly days: number };
}

/** The bucket's Object Lock configuration; a bucket without one is `{ enabled: false }`. */
export async function readBucketLock(client: S3Client, bucket: string): Promise<BucketLock> {
  let out;
  try {
    out = await client.send(new GetObjectLockConfigurationCommand({ Bucket: bucket }));
  } catch (e) {
    if (s3Code(e) === 'ObjectLockConfigurationNotFoundError') return { enabled: false };
    throw s3Error('get Object Lock configuration of', `bucket ${bucket}`, e);
  }
  const c = out.ObjectLockConfiguration;
  if (c?.ObjectLockEnabled !== 'Enabled') return { enabled: false };
  const d = c.Rule?.DefaultRetention;
  if (!d?.Mode) return { enabled: true };
  return { enabled: true, defaultRetention: { mode: d.Mode, days: (d.Days ?? 0) + (d.Years ?? 0) * 366 } };
}

const describe = (r: { mode: string; days: number }) => `${r.mode}, ${r.days} day${r.days === 1 ? '' : 's'}`;

/** Throws when `wanted` cannot be honoured by a bucket configured as `lock`; see the file comment. */
export function compareObjectLock(bucket: string, tenant: string, lock: BucketLock, wanted: Retention | undefined): void {
  if (!wanted) return;
  if (!lock.enabled) {
    throw new TlogError(
      ErrorCode.badInput,
      `tenant ${tenant} asks for Object Lock retention (${describe(wanted)}) but bucket ${bucket} has no Object Lock enabled`,
    );
  }
  const d = lock.defaultRetention;
  if (d && ((d.mode === 'COMPLIANCE' && wanted.mode === 'GOVERNANCE') || wanted.days < d.days)) {
    throw new TlogError(
      ErrorCode.badInput,
      `tenant ${tenant} asks for Object Lock retention (${describe(wanted)}), weaker than the default retention of bucket ${bucket} (${describe(d)}) it would replace`,
    );
  }
}

/**
 * Reads the bucket's configuration and checks the tenant's wanted retention against it; null
 * (and no request) for a tenant that wants none.
 */
export async function checkObjectLock(client: S3Client, bucket: string, tenant: string, wanted: Retention | undefined): Promise<BucketLock | null> {
  if (!wanted) return null;
  let lock: BucketLock;
  try {
    lock = await readBucketLock(client, bucket);
  } catch (e) {
    throw new TlogError(ErrorCode.io, `tenant ${tenant}: ${(e as Error).message}`, { cause: e });
  }
  compareObjectLock(bucket, tenant, lock, wanted);
  return lock;
}
