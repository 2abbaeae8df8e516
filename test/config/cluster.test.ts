/**
 * The cluster parts of the configuration (src/config/config.ts) and how a node gets the store's
 * credentials (src/tenants/cluster.ts storeEndpoint): each refusal at its boundary, with the
 * field named.
 */
import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/config.js';
import { storeEndpoint } from '../../src/tenants/cluster.js';
import { serve } from '../../src/cli/serve.js';
import { rejectionOf, thrownBy } from '../helpers/errors.js';
import { dataRootsIn, tempDirPerTest } from '../helpers/temp-dirs.js';

const tmp = tempDirPerTest('tlog-cluster-config-');
const store = { bucket: 'my-tlog' };
const tenant = { name: 'audit', origin: 'logs.example.com/audit', keysDir: 'keys/audit' };

describe('cluster configuration', () => {
  it('a cluster needs a store, and every tenant of a cluster a keysDir', () => {
    expect(thrownBy<Error>(() => validateConfig({ cluster: {}, tenants: [] })).message).toMatch(/cluster: a cluster needs a store/);
    expect(thrownBy<Error>(() => validateConfig({ store, cluster: {}, tenants: [{ name: 'audit', origin: 'logs.example.com/audit' }] })).message).toMatch(
      /tenants\[0\]\.keysDir: a cluster tenant needs keysDir/,
    );
    const ok = validateConfig({ store, cluster: {}, tenants: [tenant] });
    expect(ok.cluster!.leaseTtlSeconds).toBe(5);
    expect(ok.store).toMatchObject({ type: 's3', region: 'us-east-1', bucket: 'my-tlog', prefix: '' });
  });

  it('Object Lock retention: only for a tenant kept in a store; COMPLIANCE or GOVERNANCE, 1 to 36600 days', () => {
    const ret =
      (retention: unknown, withStore = true) =>
      () =>
        validateConfig({ ...(withStore ? { store, cluster: {} } : {}), tenants: [{ ...tenant, retention }] });
    expect(thrownBy<Error>(ret({ mode: 'COMPLIANCE', days: 7 }, false)).message).toMatch(
      /tenants\[0\]\.retention: Object Lock retention is for a tenant kept in a store/,
    );
    expect(ret({ mode: 'COMPLIANCE', days: 1 })).not.toThrow();
    expect(ret({ mode: 'GOVERNANCE', days: 36_600 })).not.toThrow();
    for (const bad of [
      { mode: 'COMPLIANCE', days: 0 },
      { mode: 'GOVERNANCE', days: 36_601 },
      { mode: 'LEGAL', days: 1 },
      { mode: 'COMPLIANCE', days: 1.5 },
      { mode: 'COMPLIANCE' },
    ]) {
      expect(thrownBy<Error>(ret(bad)).message, JSON.stringify(bad)).toMatch(/tenants\[0\]\.retention/);
    }
    expect(validateConfig({ store, cluster: {}, tenants: [{ ...tenant, retention: { mode: 'COMPLIANCE', days: 7 } }] }).tenants[0]!.retention).toEqual({
      mode: 'COMPLIANCE',
      days: 7,
    });
  });

  it('lease ttl from 1 to 600 s; a prefix ends in "/"; a bucket name is an S3 one', () => {
    for (const [ttl, good] of [
      [0.999, false],
      [1, true],
      [600, true],
      [600.001, false],
    ] as const) {
      const f = () => validateConfig({ store, cluster: { leaseTtlSeconds: ttl }, tenants: [] });
      if (good) expect(f).not.toThrow();
      else expect(thrownBy<Error>(f).message).toMatch(/cluster\.leaseTtlSeconds/);
    }
    expect(thrownBy<Error>(() => validateConfig({ store: { ...store, prefix: 'prod' }, tenants: [] })).message).toMatch(/store\.prefix/);
    expect(() => validateConfig({ store: { ...store, prefix: 'prod/eu/' }, tenants: [] })).not.toThrow();
    expect(thrownBy<Error>(() => validateConfig({ store: { bucket: 'My_Bucket' }, tenants: [] })).message).toMatch(/store\.bucket/);
    expect(thrownBy<Error>(() => validateConfig({ store: { ...store, secretAccessKey: 'x' }, tenants: [] })).message).toMatch(/store: Unrecognized key/);
  });

  it('credentials from the environment, or a 0600 JSON file (refused when others may read it), never from the configuration', async () => {
    const s = validateConfig({ store, tenants: [] }).store!;
    expect((await rejectionOf<Error>(storeEndpoint(s, {}))).message).toMatch(/set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or store\.credentialsFile/);
    expect((await rejectionOf<Error>(storeEndpoint(s, { AWS_ACCESS_KEY_ID: 'k' }))).message).toMatch(/needs credentials/);
    expect(await storeEndpoint(s, { AWS_ACCESS_KEY_ID: 'k', AWS_SECRET_ACCESS_KEY: 's' })).toEqual({
      region: 'us-east-1',
      accessKeyId: 'k',
      secretAccessKey: 's',
    });
    const file = path.join(tmp.dir, 's3.json');
    writeFileSync(file, JSON.stringify({ accessKeyId: 'fk', secretAccessKey: 'fs' }), { mode: 0o644 });
    chmodSync(file, 0o644);
    const withFile = { ...s, credentialsFile: file };
    expect((await rejectionOf<Error>(storeEndpoint(withFile, {}))).message).toMatch(/store\.credentialsFile/);
    chmodSync(file, 0o600);
    expect(await storeEndpoint(withFile, { AWS_ACCESS_KEY_ID: 'ignored', AWS_SECRET_ACCESS_KEY: 'ignored' })).toMatchObject({
      accessKeyId: 'fk',
      secretAccessKey: 'fs',
    });
    writeFileSync(file, '{"accessKeyId": "fk"}');
    expect((await rejectionOf<Error>(storeEndpoint(withFile, {}))).message).toMatch(/want JSON \{"accessKeyId", "secretAccessKey"\}/);
  });

  it('--advertise and --cache-dir without a cluster section are refused before anything is bound or created', async () => {
    const cfg = path.join(tmp.dir, 'tlog.json');
    writeFileSync(cfg, JSON.stringify({ tenants: [] }));
    for (const extra of [{ advertise: 'http://10.0.0.1:8080' }, { cacheDir: path.join(tmp.dir, 'cache') }]) {
      const e = await rejectionOf<Error>(serve({ roots: dataRootsIn(tmp.dir), config: cfg, listen: '127.0.0.1:0', ...extra }));
      expect(e.message).toMatch(/--advertise and --cache-dir are for a cluster node: the configuration has no cluster section/);
    }
  });
});
