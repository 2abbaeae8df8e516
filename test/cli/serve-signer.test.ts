/**
 * `tlog serve` and its ML-DSA-44 signer (src/log/mldsa-backend.ts): the start line and /metrics
 * name the backend chosen once at start (TLOG_MLDSA_SIGNER, else the preferred one this runtime
 * offers), the checkpoints it signs verify, and a TLOG_MLDSA_SIGNER it cannot honour stops it
 * before anything is created, with one readable line.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { availableMldsaBackends, chooseMldsaBackend } from '../../src/log/mldsa-backend.js';
import { parseVerifierKey } from '../../src/note/keys.js';
import { openNote } from '../../src/note/note.js';
import { verifierFor } from '../../src/note/signers.js';
import { ensureDist } from '../helpers/dist.js';
import { runTlog, serveSpawner, stopServe } from '../helpers/tlog-cli.js';
import { tempDirPerFile } from '../helpers/temp-dirs.js';

const tmp = tempDirPerFile('tlog-serve-signer-');
const spawnServe = serveSpawner();

beforeAll(() => ensureDist(), 240_000);

describe('the ML-DSA-44 signer of tlog serve', () => {
  // '' is unset: the preferred one the runtime offers.
  it.each(['', ...availableMldsaBackends()])('TLOG_MLDSA_SIGNER=%j: named at start and in /metrics, and it signs the checkpoints', async (forced) => {
    const backend = chooseMldsaBackend(forced);
    const cwd = mkdtempSync(path.join(tmp.dir, 'serve-'));
    const p = await spawnServe([], { cwd, env: { TLOG_MLDSA_SIGNER: forced } });
    expect(p.stderr()).toMatch(new RegExp(`^listening on http://127\\.0\\.0\\.1:${p.port} \\(.*; ML-DSA-44 signer: ${backend}\\)$`, 'm'));

    const metrics = await (await fetch(`${p.url}/metrics`)).text();
    expect(metrics).toMatch(/^# TYPE tlog_mldsa_signer_info gauge$/m);
    expect(metrics.split('\n').filter((l) => l.startsWith('tlog_mldsa_signer_info'))).toEqual([`tlog_mldsa_signer_info{backend="${backend}"} 1`]);

    const r = await fetch(`${p.url}/default/append`, { method: 'POST', body: 'signed by ' + backend, headers: { 'content-type': 'application/octet-stream' } });
    expect(r.status).toBe(200);
    const checkpoint = await (await fetch(`${p.url}/default/checkpoint`)).text();
    const vkeys = readFileSync(path.join(cwd, 'checkpoints/default/vkeys'), 'utf8').trim().split('\n');
    const verifiers = vkeys.map((v) => verifierFor(parseVerifierKey(v)));
    // Both signatures, Ed25519 and the ML-DSA-44 one this backend made, verify (noble).
    expect(openNote(checkpoint, verifiers).verified).toHaveLength(2);

    expect(await stopServe(p)).toBe(0);
  });

  it.each(['bogus', 'Noble'])('TLOG_MLDSA_SIGNER=%s: exits 1 with one line, before creating the log', (forced) => {
    const cwd = mkdtempSync(path.join(tmp.dir, 'refused-'));
    const r = runTlog(['serve', '--listen', '127.0.0.1:0'], { cwd, timeoutMs: 20_000, env: { TLOG_MLDSA_SIGNER: forced } });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`tlog: TLOG_MLDSA_SIGNER=${JSON.stringify(forced)}: want one of node:crypto, liboqs-wasm, noble\n`);
    for (const d of ['tiles', 'checkpoints', '.tlog']) expect(existsSync(path.join(cwd, d))).toBe(false);
  });
});
