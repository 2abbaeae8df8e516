/**
 * Interop of our witness with third-party Go code (issue 5), through go/witnesscheck:
 *
 * - a log written with golang.org/x/mod: its key is made and used by sumdb/note, its tree and
 *   consistency proofs come from sumdb/tlog, its checkpoints are encoded by
 *   github.com/transparency-dev/formats/log; the checker POSTs add-checkpoint to our witness on
 *   loopback (old 0, then old N with a proof, and the 409/422/403/404/400 cases);
 * - every cosignature our witness returns, and the checkpoint it serves, are verified with the
 *   cosignature verifiers of github.com/transparency-dev/formats/note (NewVerifierForCosignatureV1,
 *   0x04 Ed25519 and 0x06 ML-DSA-44) inside note.Open of x/mod.
 *
 * Needs Go >= 1.26 on PATH (CI installs it); the first build downloads the modules.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { RunningWitness } from '../../witness/serve.js';
import { makeTempDir } from '../helpers/temp-dirs.js';
import { buildGoTool, runJsonTool } from '../helpers/go-tools.js';
import { runLoopbackWitness } from '../witness/helpers.js';

const moduleDir = path.join(import.meta.dirname, 'go', 'witnesscheck');
const ORIGIN = 'go.example/log';
let checker = '';

interface Summary {
  ok: boolean;
  error?: string;
  steps: { name: string; status: number; detail?: string }[];
  cosigned: number[];
  verified: Record<string, number>;
  timestamps: number[];
  moduleVersions: Record<string, string>;
}

/** Async: our witness runs in this process and must keep serving while the checker runs. */
const runChecker = (args: string[]) => runJsonTool<Summary>(checker, args);

describe('our witness and third-party Go code', () => {
  let logKey: { skey: string; vkey: string };
  const running: RunningWitness[] = [];

  beforeAll(() => {
    checker = buildGoTool(moduleDir, '.', 'witnesscheck');
    const r = spawnSync(checker, ['keygen', ORIGIN], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    logKey = JSON.parse(r.stdout) as { skey: string; vkey: string };
  }, 300_000);

  afterAll(async () => {
    await Promise.all(running.map((w) => w.close()));
  });

  for (const mldsa44 of [true, false]) {
    test(`x/mod log -> our witness -> formats verifiers (${mldsa44 ? 'Ed25519 + ML-DSA-44' : 'Ed25519 only'})`, async () => {
      const w = await runLoopbackWitness({
        name: 'witness.test/ours',
        mldsa44,
        origin: ORIGIN,
        logKeys: [logKey.vkey],
        dataDir: makeTempDir('witness-interop-'),
      });
      running.push(w);
      const vkeys = mldsa44 ? [w.vkeys.cosignatureV1, w.vkeys.mldsa44] : [w.vkeys.cosignatureV1];
      const startedAt = Math.floor(Date.now() / 1000);
      const { code, summary, stderr } = await runChecker([
        'run',
        '--url',
        w.url,
        '--skey',
        logKey.skey,
        '--vkey',
        logKey.vkey,
        ...vkeys.flatMap((v) => ['--witness-vkey', v]),
      ]);
      expect(summary.error ?? '', stderr).toBe('');
      expect(code).toBe(0);
      expect(summary.ok).toBe(true);
      expect(summary.moduleVersions['github.com/transparency-dev/formats']).toBe('v0.1.1');
      expect(summary.cosigned).toEqual([1, 5, 256, 257, 1000, 4097, 4197]);
      // Every cosigned checkpoint had a verified line from each of our keys.
      expect(Object.values(summary.verified)).toEqual(vkeys.map(() => 7));
      // Cosigned during the run (timestamps are whole seconds).
      const endedAt = Math.ceil(Date.now() / 1000);
      expect(summary.timestamps.filter((t) => t < startedAt || t > endedAt)).toEqual([]);
      const statuses = Object.fromEntries(summary.steps.map((s) => [s.name, s.status]));
      expect(statuses).toMatchObject({
        'probe fresh witness': 409,
        'stale old': 409,
        'bad proof': 422,
        'split view': 422,
        'untrusted key': 403,
        'bad signature': 403,
        'unknown origin': 404,
        'old > size': 400,
        'GET checkpoint': 200,
      });
    });
  }

  test('the checker notices cosignatures that are not from the key it was given', async () => {
    const w = await runLoopbackWitness({ name: 'witness.test/ours', origin: ORIGIN, logKeys: [logKey.vkey], dataDir: makeTempDir('witness-interop-') });
    running.push(w);
    // Same name, another witness's key: the lines we return have another key ID.
    const other = await runLoopbackWitness({ name: 'witness.test/ours', origin: ORIGIN, logKeys: [logKey.vkey], dataDir: makeTempDir('witness-interop-') });
    running.push(other);
    const { code, summary } = await runChecker(['run', '--url', w.url, '--skey', logKey.skey, '--vkey', logKey.vkey, '--witness-vkey', other.vkeys.mldsa44]);
    expect(code).toBe(1);
    expect(summary.error).toMatch(/unverified signatures in the reply|no verified cosignature/);
  });
});
