/**
 * Anchoring configured in a service configuration, end to end: `tlog serve --config` anchors the
 * tenant's published checkpoint in a Rekor v1 on loopback, serves the receipt under
 * /<tenant>/anchors, and `tlog anchor verify` checks it offline.
 */
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { hashToken } from '../../src/http/auth.js';
import { FakeRekorV1 } from './fake-rekor-v1.js';
import { until } from '../helpers/wait.js';
import { ensureDist } from '../helpers/dist.js';
import { makeTempDir, removeDir } from '../helpers/temp-dirs.js';
import { runTlog, serveSpawner, stopServe } from '../helpers/tlog-cli.js';

let dir: string;
let rekor: FakeRekorV1;
const spawnServe = serveSpawner();

beforeAll(async () => {
  ensureDist();
  dir = makeTempDir('tlog-anchor-serve-');
  rekor = new FakeRekorV1();
  await rekor.up();
}, 240_000);
afterAll(async () => {
  await rekor.down();
  removeDir(dir);
});

it('anchors the published checkpoint of a configured tenant and serves a receipt that verifies offline', async () => {
  writeFileSync(path.join(dir, 'rekor.pem'), rekor.publicKeyPem);
  const token = 'tlog_test_anchor_token';
  writeFileSync(
    path.join(dir, 'tlog.yaml'),
    [
      'listen: 127.0.0.1:0',
      'tenants:',
      '  - name: anchored',
      '    origin: example.com/anchored',
      '    credentials:',
      `      tokens: ["${hashToken(token)}"]`,
      '    anchoring:',
      '      intervalHours: 0.0001',
      '      tickSeconds: 0.2',
      '      rekor:',
      `        url: ${rekor.url}`,
      '        publicKeyFile: rekor.pem',
      '',
    ].join('\n'),
  );
  const p = await spawnServe(['--config', path.join(dir, 'tlog.yaml')], { cwd: dir, env: { TLOG_LOG_LEVEL: 'warn' } });
  const base = `${p.url}/anchored`;
  for (let i = 0; i < 3; i++) {
    const res = await fetch(`${base}/append`, { method: 'POST', body: `anchored entry ${i}`, headers: { Authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
  }
  const listed = await until('a receipt for size 3', async () => {
    const r = (await (await fetch(`${base}/anchors`)).json()) as { receipts?: { treeSize: number; receipt: string }[] } | { treeSize: number }[];
    const list = Array.isArray(r) ? r : (r.receipts ?? []);
    return list.find((x) => x.treeSize === 3) ?? null;
  });
  expect(listed).toBeTruthy();
  // Exactly one Rekor entry for that checkpoint, and its receipt verifies offline.
  const receiptFile = path.join(dir, 'checkpoints/anchored/anchors/003.sigstore.json');
  expect(existsSync(receiptFile)).toBe(true);
  const v = runTlog(['anchor', 'verify', receiptFile, '--rekor-key', path.join(dir, 'rekor.pem')], { cwd: dir });
  expect(v.stderr).toBe('');
  expect(v.code).toBe(0);
  expect(await stopServe(p)).toBe(0);
});
