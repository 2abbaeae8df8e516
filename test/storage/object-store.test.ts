/**
 * One contract, two drivers: the POSIX store on a temp directory and the S3 store against a real
 * S3 server (versitygw, test/storage/s3-server.ts). Every racing test uses distinct bytes per
 * writer, as real writers do (object-store.ts: identical bytes are the same write).
 */
import { HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, isTlogError } from '../../src/errors.js';
import { isPreconditionFailed, type ObjectStore } from '../../src/storage/object-store.js';
import { PosixStore } from '../../src/storage/posix-store.js';
import { S3Store } from '../../src/storage/s3-store.js';
import { S3Server } from './s3-server.js';
import { rejectionOf } from '../helpers/errors.js';
import { makeTempDir, removeDir } from '../helpers/temp-dirs.js';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

/**
 * The contract. `stores()` gives two handles on the same objects (two processes' views): racers
 * alternate between them, so the POSIX driver's exclusion is tested across instances, not just
 * within one queue.
 */
function contract(stores: () => [ObjectStore, ObjectStore]) {
  it('putImmutable: created, then existed for the same bytes, immutable_conflict for others (nothing replaced)', async () => {
    const [s] = stores();
    expect(await s.putImmutable('tile/0/000', enc('tile bytes'))).toBe('created');
    expect(await s.putImmutable('tile/0/000', enc('tile bytes'))).toBe('existed');
    const e = await rejectionOf(s.putImmutable('tile/0/000', enc('other bytes')));
    expect(isTlogError(e, ErrorCode.immutableConflict)).toBe(true);
    expect(String(e)).toContain('tile/0/000');
    // One byte more, same start: still a conflict (the comparison is of the whole object).
    expect(isTlogError(await rejectionOf(s.putImmutable('tile/0/000', enc('tile bytes!'))), ErrorCode.immutableConflict)).toBe(true);
    expect(dec((await s.get('tile/0/000'))!.bytes)).toBe('tile bytes');
  });

  it('putImmutable of an empty object, and of one whose content is a prefix of another', async () => {
    const [s] = stores();
    expect(await s.putImmutable('empty/a', new Uint8Array(0))).toBe('created');
    expect((await s.get('empty/a'))!.bytes.length).toBe(0);
    expect(isTlogError(await rejectionOf(s.putImmutable('empty/a', enc('x'))), ErrorCode.immutableConflict)).toBe(true);
    expect(await s.putImmutable('empty/a', new Uint8Array(0))).toBe('existed');
  });

  it('32 concurrent putImmutable of one key with different bytes: one created, 31 immutable_conflict, the winner stored', async () => {
    const [a, b] = stores();
    const results = await Promise.allSettled(Array.from({ length: 32 }, (_, i) => (i % 2 ? a : b).putImmutable('race/imm', enc(`writer ${i}`))));
    const created = results.flatMap((r, i) => (r.status === 'fulfilled' && r.value === 'created' ? [i] : []));
    expect(created).toHaveLength(1);
    const refused = results.filter((r) => r.status === 'rejected' && isTlogError(r.reason, ErrorCode.immutableConflict));
    expect(refused).toHaveLength(31);
    expect(dec((await a.get('race/imm'))!.bytes)).toBe(`writer ${created[0]}`);
  });

  it('32 concurrent putImmutable of one key with the same bytes: one created, 31 existed', async () => {
    const [a, b] = stores();
    const results = await Promise.all(Array.from({ length: 32 }, (_, i) => (i % 2 ? a : b).putImmutable('race/same', enc('same bytes'))));
    expect(results.filter((r) => r === 'created')).toHaveLength(1);
    expect(results.filter((r) => r === 'existed')).toHaveLength(31);
  });

  it('putMutable: absent creates once; the etag returned is the one get() reports; a stale etag is refused', async () => {
    const [s] = stores();
    const e1 = await s.putMutable('checkpoint', enc('size 1'), 'absent');
    expect((await s.get('checkpoint'))!.etag).toBe(e1);
    const again = await rejectionOf(s.putMutable('checkpoint', enc('size 1 again'), 'absent'));
    expect(isPreconditionFailed(again)).toBe(true);
    expect(isTlogError(again, ErrorCode.conflict)).toBe(true);

    const e2 = await s.putMutable('checkpoint', enc('size 2'), { etag: e1 });
    expect(e2).not.toBe(e1);
    expect((await s.get('checkpoint'))!.etag).toBe(e2);
    expect(isPreconditionFailed(await rejectionOf(s.putMutable('checkpoint', enc('size 2 from a stale writer'), { etag: e1 })))).toBe(true);
    expect(dec((await s.get('checkpoint'))!.bytes)).toBe('size 2');
  });

  it('putMutable with an etag on a missing key is refused and writes nothing', async () => {
    const [s] = stores();
    const e = await rejectionOf(s.putMutable('missing/mutable', enc('x'), { etag: '"0123456789abcdef0123456789abcdef"' }));
    expect(isPreconditionFailed(e)).toBe(true);
    expect(await s.get('missing/mutable')).toBeNull();
  });

  it('putMutable repeated after it succeeded (an answer lost) returns the same etag; other bytes are refused', async () => {
    const [s] = stores();
    const e1 = await s.putMutable('retry/m', enc('v1'), 'absent');
    const e2 = await s.putMutable('retry/m', enc('v2'), { etag: e1 });
    expect(await s.putMutable('retry/m', enc('v2'), { etag: e1 })).toBe(e2);
    expect(isPreconditionFailed(await rejectionOf(s.putMutable('retry/m', enc('v2 but not quite'), { etag: e1 })))).toBe(true);
  });

  it('32 concurrent putMutable from the same version: exactly one wins, the others are PreconditionFailed', async () => {
    const [a, b] = stores();
    for (let round = 0; round < 3; round++) {
      const key = `race/mut${round}`;
      const base = await a.putMutable(key, enc('base'), 'absent');
      const results = await Promise.allSettled(Array.from({ length: 32 }, (_, i) => (i % 2 ? a : b).putMutable(key, enc(`writer ${i}`), { etag: base })));
      const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
      expect(won).toHaveLength(1);
      expect(results.filter((r) => r.status === 'rejected' && isPreconditionFailed(r.reason))).toHaveLength(31);
      const now = (await b.get(key))!;
      expect(dec(now.bytes)).toBe(`writer ${won[0]}`);
      expect(now.etag).toBe((results[won[0]!] as PromiseFulfilledResult<string>).value);
    }
  });

  it('32 concurrent first writes (absent): exactly one wins', async () => {
    const [a, b] = stores();
    const results = await Promise.allSettled(Array.from({ length: 32 }, (_, i) => (i % 2 ? a : b).putMutable('race/first', enc(`writer ${i}`), 'absent')));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(results.filter((r) => r.status === 'rejected' && isPreconditionFailed(r.reason))).toHaveLength(31);
  });

  it('get of a missing key is null', async () => {
    const [s] = stores();
    expect(await s.get('nothing/here')).toBeNull();
  });

  it('list: every key with the prefix, sorted bytewise, prefixes ending inside a segment too', async () => {
    const [s] = stores();
    for (const k of ['l/tile/0/x001/002', 'l/tile/0/001', 'l/tile/0/000', 'l/tile/1/000', 'l/tile/entries/000', 'l/tile/0/001.p/5', 'l/checkpoint', 'l/Z']) {
      await s.putImmutable(k, enc(k));
    }
    expect(await s.list('l/tile/0/')).toEqual(['l/tile/0/000', 'l/tile/0/001', 'l/tile/0/001.p/5', 'l/tile/0/x001/002']);
    expect(await s.list('l/tile/0/00')).toEqual(['l/tile/0/000', 'l/tile/0/001', 'l/tile/0/001.p/5']);
    expect(await s.list('l/tile/0/001')).toEqual(['l/tile/0/001', 'l/tile/0/001.p/5']);
    expect(await s.list('l/')).toEqual([
      'l/Z',
      'l/checkpoint',
      'l/tile/0/000',
      'l/tile/0/001',
      'l/tile/0/001.p/5',
      'l/tile/0/x001/002',
      'l/tile/1/000',
      'l/tile/entries/000',
    ]);
    expect(await s.list('l/nothing')).toEqual([]);
    expect(await s.list('nowhere/')).toEqual([]);
  });

  it('bad keys are refused before anything is written', async () => {
    const [s] = stores();
    for (const k of ['', '/abs', '../escape', 'a/../b', 'a//b', 'a/', '.hidden', 'a/.tmp', 'sp ace', 'a\\b', 'x'.repeat(1025)]) {
      expect(isTlogError(await rejectionOf(s.putImmutable(k, enc('x'))), ErrorCode.badInput), k).toBe(true);
      expect(isTlogError(await rejectionOf(s.putMutable(k, enc('x'), 'absent')), ErrorCode.badInput), k).toBe(true);
      expect(isTlogError(await rejectionOf(s.get(k)), ErrorCode.badInput), k).toBe(true);
    }
    expect(isTlogError(await rejectionOf(s.list('../')), ErrorCode.badInput)).toBe(true);
    // The longest key accepted is 1024 bytes (S3's limit); POSIX would refuse a segment over 255.
    expect(await s.list('')).not.toContain('.hidden');
  });
}

describe('POSIX driver', () => {
  let root: string;
  beforeAll(() => {
    root = makeTempDir('tlog-posix-store-');
  });
  afterAll(() => removeDir(root));
  contract(() => [new PosixStore(root), new PosixStore(root)]);

  it('leaves no temp files behind, and its lock files are never listed', async () => {
    const s = new PosixStore(root);
    await s.putMutable('tidy/m', enc('a'), 'absent');
    await s.putImmutable('tidy/i', enc('b'));
    await rejectionOf(s.putImmutable('tidy/i', enc('c')));
    expect(readdirSync(path.join(root, 'tidy')).sort()).toEqual(['.m.lock', 'i', 'm']);
    expect(await s.list('tidy/')).toEqual(['tidy/i', 'tidy/m']);
  });

  it('the etag is the SHA-256 of the content', async () => {
    const s = new PosixStore(root);
    const etag = await s.putMutable('etag/m', enc('hello'), 'absent');
    expect(etag).toBe(`"${createHash('sha256').update('hello').digest('hex')}"`);
  });
});

describe('S3 driver (versitygw)', () => {
  let server: S3Server;
  let client: S3Client;
  let other: S3Client;
  beforeAll(async () => {
    server = new S3Server({ buckets: [{ name: 'store' }, { name: 'locked', lock: true }] });
    await server.start();
    client = server.client();
    other = server.client();
  }, 900_000);
  afterAll(async () => {
    client?.destroy();
    other?.destroy();
    await server?.close();
  });
  contract(() => [new S3Store(client, { bucket: 'store', prefix: 'tenants/a/' }), new S3Store(other, { bucket: 'store', prefix: 'tenants/a/' })]);

  it('a prefix keeps stores apart; keys come back without it', async () => {
    const a = new S3Store(client, { bucket: 'store', prefix: 'tenants/p1/' });
    const b = new S3Store(client, { bucket: 'store', prefix: 'tenants/p2/' });
    await a.putImmutable('k/1', enc('a'));
    await b.putImmutable('k/1', enc('b'));
    expect(await a.list('')).toEqual(['k/1']);
    expect(dec((await b.get('k/1'))!.bytes)).toBe('b');
    expect(() => new S3Store(client, { bucket: 'store', prefix: 'no-slash' })).toThrow(/must end with "\/"/);
  });

  it("retention: an immutable object gets the tenant's Object Lock mode and retain-until date", async () => {
    const now = Date.UTC(2026, 11, 2, 12, 0, 0);
    const s = new S3Store(client, { bucket: 'locked', prefix: 't/', retention: { mode: 'GOVERNANCE', days: 3 }, now: () => now });
    await s.putImmutable('tile/0/000', enc('retained'));
    const head = await client.send(new HeadObjectCommand({ Bucket: 'locked', Key: 't/tile/0/000' }));
    expect(head.ObjectLockMode).toBe('GOVERNANCE');
    expect(head.ObjectLockRetainUntilDate?.getTime()).toBe(now + 3 * 86_400_000);
  });

  it('retention: an identical object found without retention (its write answered with an error) gets it', async () => {
    const bytes = enc('written, then the answer was lost before the retention was set');
    await client.send(new PutObjectCommand({ Bucket: 'locked', Key: 't/tile/0/001', Body: bytes }));
    const s = new S3Store(client, { bucket: 'locked', prefix: 't/', retention: { mode: 'GOVERNANCE', days: 1 } });
    expect(await s.putImmutable('tile/0/001', bytes)).toBe('existed');
    const head = await client.send(new HeadObjectCommand({ Bucket: 'locked', Key: 't/tile/0/001' }));
    expect(head.ObjectLockMode).toBe('GOVERNANCE');
    expect(head.ObjectLockRetainUntilDate!.getTime()).toBeGreaterThan(Date.now());
  });

  it('a bad retention is refused at construction', () => {
    for (const r of [
      { mode: 'COMPLIANCE', days: 0 },
      { mode: 'COMPLIANCE', days: 1.5 },
      { mode: 'LEGAL', days: 1 },
    ] as const) {
      expect(() => new S3Store(client, { bucket: 'locked', retention: r as never })).toThrow(/bad Object Lock retention/);
    }
  });

  it('an unreachable bucket is an io_error naming it', async () => {
    const s = new S3Store(client, { bucket: 'no-such-bucket' });
    const e = await rejectionOf(s.putImmutable('x', enc('x')));
    expect(isTlogError(e, ErrorCode.io)).toBe(true);
    expect(String(e)).toContain('s3://no-such-bucket/x');
    const m = await rejectionOf(s.putMutable('x', enc('x'), { etag: '"e"' }));
    expect(isTlogError(m, ErrorCode.io)).toBe(true);
  });
});

/**
 * 409 ConditionalRequestConflict is what AWS answers while another conditional write of the key
 * is in flight; versitygw serializes conditional writes under a lock and answers 412 instead, so
 * the retry is driven here by a client that answers 409 a given number of times.
 */
describe('S3 driver: 409 ConditionalRequestConflict', () => {
  function conflictingClient(conflicts: number, then: 'ok' | 412) {
    let calls = 0;
    const conflict = Object.assign(new Error('ConditionalRequestConflict'), { name: 'ConditionalRequestConflict', $metadata: { httpStatusCode: 409 } });
    const failed = Object.assign(new Error('PreconditionFailed'), { name: 'PreconditionFailed', $metadata: { httpStatusCode: 412 } });
    const client = {
      send: async (cmd: { constructor: { name: string } }) => {
        if (cmd.constructor.name === 'GetObjectCommand') return { ETag: '"other"', Body: { transformToByteArray: async () => enc('other') } };
        calls++;
        if (calls <= conflicts) throw conflict;
        if (then === 412) throw failed;
        return { ETag: '"new"' };
      },
    };
    return { client: client as unknown as S3Client, calls: () => calls };
  }

  it('is retried: the write lands once the conflict is over', async () => {
    const c = conflictingClient(3, 'ok');
    expect(await new S3Store(c.client, { bucket: 'b' }).putMutable('k', enc('mine'), { etag: '"old"' })).toBe('"new"');
    expect(c.calls()).toBe(4);
  });

  it('is retried, and a 412 after it is a lost race', async () => {
    const c = conflictingClient(2, 412);
    expect(isPreconditionFailed(await rejectionOf(new S3Store(c.client, { bucket: 'b' }).putMutable('k', enc('mine'), { etag: '"old"' })))).toBe(true);
    expect(c.calls()).toBe(3);
  });

  it('past conflictRetries it is reported as an io_error', async () => {
    const c = conflictingClient(100, 'ok');
    const e = await rejectionOf(new S3Store(c.client, { bucket: 'b', conflictRetries: 2 }).putImmutable('k', enc('mine')));
    expect(isTlogError(e, ErrorCode.io)).toBe(true);
    expect(String(e)).toContain('ConditionalRequestConflict');
    expect(c.calls()).toBe(3);
  });
});
