/**
 * The witness signs its ML-DSA-44 cosignatures (type 0x06) with the process's ML-DSA-44
 * implementation (src/log/mldsa-backend.ts: node:crypto where Node has it, else liboqs-wasm), not
 * always noble: every implementation this runtime offers makes cosignatures that noble verifies
 * under the key file's public key, and the start line names the one in use. A signer that
 * answers with the wrong length is refused, never framed into a note.
 */
import { ml_dsa44 } from '@noble/post-quantum/ml-dsa.js';
import { describe, expect, test } from 'vitest';
import { availableMldsaBackends, loadMldsaBackend, mldsaBackend } from '../../src/log/mldsa-backend.js';
import { parseCheckpoint } from '../../src/note/checkpoint.js';
import { subtreeV1Message } from '../../src/note/signers.js';
import { witnessKeysFrom } from '../../witness/keys.js';
import { runWitness } from '../../witness/serve.js';
import { makeTempDir, removeDir } from '../helpers/temp-dirs.js';
import { witnessEdKey, witnessMlKey } from './helpers.js';

const TEXT = 'example.com/log\n7\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n';

describe.each(availableMldsaBackends())('witness cosignatures with %s', (name) => {
  test('verify with noble under the key file public key, with the subtree/v1 message of the checkpoint', async () => {
    const signer = await loadMldsaBackend(name);
    const keys = witnessKeysFrom(witnessEdKey, witnessMlKey, signer);
    const [, ml] = keys.cosign(TEXT, 1_700_000_000, true);
    expect(ml).toBeDefined();
    const sig = ml!.signature;
    expect(Buffer.from(sig.subarray(0, 8)).readBigUInt64BE()).toBe(1_700_000_000n);
    const cp = parseCheckpoint(TEXT);
    const msg = subtreeV1Message({ cosignerName: keys.name, timestamp: 1_700_000_000, origin: cp.origin, start: 0, end: cp.treeSize, hash: cp.rootHash });
    expect(ml_dsa44.verify(sig.subarray(8), msg, keys.verifiers.mldsa44.publicKey)).toBe(true);
    // And the note verifier of the witness's own vkey accepts it.
    expect(keys.verifiers.mldsa44.verify(TEXT, sig)).toBe(true);
  });
});

test('a signer that answers with a signature of the wrong length is refused', () => {
  const keys = witnessKeysFrom(witnessEdKey, witnessMlKey, { keyFromSeed: (s) => s, sign: () => new Uint8Array(2419) });
  expect(() => keys.cosign(TEXT, 1_700_000_000, true)).toThrow('ML-DSA-44 signer returned 2419 bytes, want 2420');
});

test("the witness's start line names the ML-DSA-44 signer the process uses", async () => {
  const dir = makeTempDir('tlog-witness-signer-');
  const lines: string[] = [];
  try {
    const w = await runWitness({
      config: { name: 'witness.example/w', logs: [] },
      dataDir: dir,
      listen: '127.0.0.1:0',
      log: (s) => lines.push(s),
    });
    await w.close();
  } finally {
    removeDir(dir);
  }
  expect(lines.join('\n')).toMatch(new RegExp(`listening on http://127\\.0\\.0\\.1:\\d+ .*; ML-DSA-44 signer: ${mldsaBackend()}$`, 'm'));
});
