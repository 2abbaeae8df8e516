/**
 * The start-up Object Lock check (src/storage/object-lock.ts) against the real S3 server:
 * buckets with and without Object Lock, with default retentions at the boundaries.
 */
import { PutObjectLockConfigurationCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, isTlogError } from '../../src/errors.js';
import { checkObjectLock, compareObjectLock, readBucketLock } from '../../src/storage/object-lock.js';
import { S3Server } from './s3-server.js';
import { rejectionOf } from '../helpers/errors.js';

let server: S3Server;
let s3: S3Client;

beforeAll(async () => {
  server = new S3Server({ buckets: [{ name: 'plain' }, { name: 'locked', lock: true }, { name: 'strict', lock: true }, { name: 'yearly', lock: true }] });
  await server.start();
  s3 = server.client();
  await s3.send(
    new PutObjectLockConfigurationCommand({
      Bucket: 'strict',
      ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 30 } } },
    }),
  );
  await s3.send(
    new PutObjectLockConfigurationCommand({
      Bucket: 'yearly',
      ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Years: 1 } } },
    }),
  );
}, 900_000);

afterAll(async () => {
  s3?.destroy();
  await server?.close();
});

describe('checkObjectLock', () => {
  it("reads each bucket's configuration", async () => {
    expect(await readBucketLock(s3, 'plain')).toEqual({ enabled: false });
    expect(await readBucketLock(s3, 'locked')).toEqual({ enabled: true });
    expect(await readBucketLock(s3, 'strict')).toEqual({ enabled: true, defaultRetention: { mode: 'COMPLIANCE', days: 30 } });
    expect(await readBucketLock(s3, 'yearly')).toEqual({ enabled: true, defaultRetention: { mode: 'GOVERNANCE', days: 366 } });
  });

  it('a tenant asking for retention on a bucket without Object Lock: an error naming both', async () => {
    const e = await rejectionOf<Error>(checkObjectLock(s3, 'plain', 'audit', { mode: 'COMPLIANCE', days: 30 }));
    expect(isTlogError(e, ErrorCode.badInput)).toBe(true);
    expect(e.message).toBe('tenant audit asks for Object Lock retention (COMPLIANCE, 30 days) but bucket plain has no Object Lock enabled');
  });

  it('a tenant asking for none needs nothing of the bucket (and asks nothing)', async () => {
    expect(await checkObjectLock(s3, 'plain', 'audit', undefined)).toBeNull();
    expect(await checkObjectLock(s3, 'no-such-bucket', 'audit', undefined)).toBeNull();
  });

  it('either mode on a lock bucket without a default retention', async () => {
    expect(await checkObjectLock(s3, 'locked', 'audit', { mode: 'COMPLIANCE', days: 1 })).toEqual({ enabled: true });
    expect(await checkObjectLock(s3, 'locked', 'audit', { mode: 'GOVERNANCE', days: 1 })).toEqual({ enabled: true });
  });

  it('under a COMPLIANCE 30-day default: 30 and 31 days pass, 29 days or GOVERNANCE are weaker', async () => {
    expect(await checkObjectLock(s3, 'strict', 'audit', { mode: 'COMPLIANCE', days: 30 })).toBeTruthy();
    expect(await checkObjectLock(s3, 'strict', 'audit', { mode: 'COMPLIANCE', days: 31 })).toBeTruthy();
    const fewer = await rejectionOf<Error>(checkObjectLock(s3, 'strict', 'audit', { mode: 'COMPLIANCE', days: 29 }));
    expect(fewer.message).toBe(
      'tenant audit asks for Object Lock retention (COMPLIANCE, 29 days), weaker than the default retention of bucket strict (COMPLIANCE, 30 days) it would replace',
    );
    const mode = await rejectionOf<Error>(checkObjectLock(s3, 'strict', 'audit', { mode: 'GOVERNANCE', days: 3650 }));
    expect(mode.message).toContain('(GOVERNANCE, 3650 days), weaker than the default retention of bucket strict');
  });

  it('under a GOVERNANCE one-year default (366 days, a leap year): 366 days of either mode pass, 365 do not', async () => {
    expect(await checkObjectLock(s3, 'yearly', 'audit', { mode: 'GOVERNANCE', days: 366 })).toBeTruthy();
    expect(await checkObjectLock(s3, 'yearly', 'audit', { mode: 'COMPLIANCE', days: 366 })).toBeTruthy();
    expect((await rejectionOf<Error>(checkObjectLock(s3, 'yearly', 'audit', { mode: 'COMPLIANCE', days: 365 }))).message).toContain(
      'bucket yearly (GOVERNANCE, 366 days)',
    );
  });

  it('a bucket that does not exist: an io_error naming the bucket and the tenant', async () => {
    const e = await rejectionOf<Error>(checkObjectLock(s3, 'no-such-bucket', 'audit', { mode: 'COMPLIANCE', days: 1 }));
    expect(isTlogError(e, ErrorCode.io)).toBe(true);
    expect(e.message).toMatch(/^tenant audit: get Object Lock configuration of bucket no-such-bucket: NoSuchBucket/);
  });

  it('compareObjectLock: one day reads as "1 day"', () => {
    expect(() => compareObjectLock('b', 't', { enabled: false }, { mode: 'GOVERNANCE', days: 1 })).toThrow(
      'tenant t asks for Object Lock retention (GOVERNANCE, 1 day) but bucket b has no Object Lock enabled',
    );
  });
});
