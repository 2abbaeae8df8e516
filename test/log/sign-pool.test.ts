/**
 * SignPool: raw signatures on a worker thread. Ed25519 through node:crypto must be byte-identical
 * to noble's (RFC 8032 signatures are deterministic); ML-DSA-44, by each backend this runtime
 * offers (src/log/mldsa-backend.ts), must verify with noble under the seed's key; the log's keys sign
 * checkpoints through it; crashes, close() and bad input fail clearly; the pool runs from the
 * TypeScript sources (here, under vitest) and from dist/ (a spawned node), where an idle pool
 * must not keep the process alive while a pending call still does.
 */
import { spawnSync } from 'node:child_process';
import { ed25519 } from '@noble/curves/ed25519.js';
import { ml_dsa44 } from '@noble/post-quantum/ml-dsa.js';
import { afterAll, beforeAll, describe, expect, onTestFinished, test } from 'vitest';
import { ErrorCode, isTlogError } from '../../src/errors.js';
import { createLogKeys, loadLogKeys, type LogKeys } from '../../src/log/keys.js';
import { availableMldsaBackends, MLDSA_BACKENDS, mldsaBackend } from '../../src/log/mldsa-backend.js';
import { SignPool } from '../../src/log/sign-pool.js';
import { signTree, signTreeAsync } from '../../src/log/checkpoint-signing.js';
import { parseCheckpoint } from '../../src/note/checkpoint.js';
import { SignatureType } from '../../src/note/keys.js';
import { openNote, parseNote } from '../../src/note/note.js';
import { cosignatureTimestamp, keyPair, verifierFor } from '../../src/note/signers.js';
import { prng, randBytes, randInt } from '../prng.mjs';
import { vectors } from '../vectors.js';
import { TS, fixedClock, logKey, mldsaKey, witnessKey, witnessPair } from '../note/helpers.js';
import { distModule, ensureDist, repoRoot } from '../helpers/dist.js';
import { makeTempDir, removeDir } from '../helpers/temp-dirs.js';

const TEXT = vectors.checkpoint_1000.checkpoint_body;
const ORIGIN = 'example.com/sign-pool-test';

const hexOf = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

/** Settles every promise; the rejections' reasons and the fulfilled values apart. */
async function outcomes<T>(ps: Promise<T>[]): Promise<{ ok: T[]; errors: unknown[] }> {
  const rs = await Promise.allSettled(ps);
  return {
    ok: rs.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : [])),
    errors: rs.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : [])),
  };
}

/** An ML-DSA-44 key: the pool is given its seed, noble checks against its public key. */
const mlSeed = new Uint8Array(32).fill(42);
const mlPub = ml_dsa44.keygen(mlSeed).publicKey;
const mlMsg = () => new TextEncoder().encode('subtree/v1 test message');

let pool: SignPool;
beforeAll(() => {
  pool = new SignPool();
});
afterAll(async () => {
  await pool.close();
});

describe('raw signatures', () => {
  test('Ed25519 through node:crypto is byte-identical to noble over random keys and messages', async () => {
    const rand = prng(0x5eed);
    const cases = Array.from({ length: 400 }, (_, i) => {
      const seed = randBytes(rand, 32);
      const len = [0, 1, 63, 64, 65, 20_000][i % 6]! + (i % 12 < 6 ? 0 : randInt(rand, 0, 300));
      return { seed, msg: randBytes(rand, len) };
    });
    // Half the keys repeat, so both the worker's first sight of a key and its cache are used.
    for (let i = 0; i < cases.length; i += 2) cases[i]!.seed = cases[0]!.seed;
    const sigs = await Promise.all(cases.map((c) => pool.sign('ed25519', c.seed, Uint8Array.from(c.msg))));
    for (let i = 0; i < cases.length; i++) {
      expect(sigs[i]).toHaveLength(64);
      expect(hexOf(sigs[i]!), `case ${i}`).toBe(hexOf(ed25519.sign(cases[i]!.msg, cases[i]!.seed)));
    }
  });

  test('Ed25519 with the vector log key gives the vector signature', async () => {
    const sig = await pool.sign('ed25519', logKey.seed, Buffer.from(TEXT, 'utf8'));
    expect(hexOf(sig)).toBe(vectors.checkpoint_1000.log_signature_blob_hex.slice(8));
  });

  test('ML-DSA-44 signatures verify, and are hedged (two differ)', async () => {
    const [a, b] = await Promise.all([pool.sign('ml-dsa-44', mlSeed, mlMsg()), pool.sign('ml-dsa-44', mlSeed, mlMsg())]);
    for (const s of [a!, b!]) {
      expect(s).toHaveLength(2420);
      expect(ml_dsa44.verify(s, mlMsg(), mlPub)).toBe(true);
    }
    expect(hexOf(a!)).not.toBe(hexOf(b!));
    expect(ml_dsa44.verify(a!, new TextEncoder().encode('another message'), mlPub)).toBe(false);
  });

  test("Ed25519 is signed on the calling thread by default: no worker starts, the message stays the caller's", async () => {
    const p = new SignPool();
    try {
      const seed = new Uint8Array(32).fill(3);
      const owned = new Uint8Array(100).fill(7);
      const sigs = await Promise.all([p.sign('ed25519', seed, owned), p.sign('ed25519', seed, Buffer.from('pooled'))]);
      expect(p.liveWorkers).toBe(0);
      expect(owned.byteLength).toBe(100); // not transferred: nothing left this thread
      expect(hexOf(sigs[0]!)).toBe(hexOf(ed25519.sign(new Uint8Array(100).fill(7), seed)));
      expect(hexOf(sigs[1]!)).toBe(hexOf(ed25519.sign(Buffer.from('pooled'), seed)));
      // The test hook fails it like a worker's error would.
      p.failNextCallForTest();
      await expect(p.sign('ed25519', seed, new Uint8Array(1))).rejects.toThrow(/sign ed25519: sign failed on request/);
      expect(hexOf(await p.sign('ed25519', seed, new Uint8Array(1)))).toBe(hexOf(ed25519.sign(new Uint8Array(1), seed)));
    } finally {
      await p.close();
    }
  });

  test('an owned message is transferred; a pooled Buffer or a view is copied and left intact', async () => {
    // Ed25519 in the workers (the ML-DSA-44 path transfers its messages the same way).
    const pool = new SignPool({ ed25519InWorker: true });
    onTestFinished(() => pool.close());
    const seed = new Uint8Array(32).fill(1);
    const owned = new Uint8Array(100).fill(7);
    const sig = await pool.sign('ed25519', seed, owned);
    expect(owned.byteLength).toBe(0); // detached: it went to the worker without a copy
    expect(hexOf(sig)).toBe(hexOf(ed25519.sign(new Uint8Array(100).fill(7), seed)));

    // A small Buffer.from shares Node's 8 KiB pool: transferring it would detach the pool.
    const pooled = Buffer.from('short message in the shared buffer pool');
    expect(pooled.buffer.byteLength).toBeGreaterThan(pooled.length);
    const big = new Uint8Array(10_000).fill(9);
    const view = big.subarray(10, 20);
    const [s1, s2] = await Promise.all([pool.sign('ed25519', seed, pooled), pool.sign('ed25519', seed, view)]);
    expect(pooled.toString()).toBe('short message in the shared buffer pool');
    expect(Buffer.from('still allocating from the pool').toString()).toBe('still allocating from the pool');
    expect(big.byteLength).toBe(10_000);
    expect(hexOf(s1!)).toBe(hexOf(ed25519.sign(Buffer.from('short message in the shared buffer pool'), seed)));
    expect(hexOf(s2!)).toBe(hexOf(ed25519.sign(new Uint8Array(10).fill(9), seed)));
  });

  test("past the worker's key cache (1024 keys), forgotten keys are sent again", async () => {
    const rand = prng(1024);
    const seeds = Array.from({ length: 1100 }, () => randBytes(rand, 32));
    const msg = () => new TextEncoder().encode('many keys');
    const first = await Promise.all(seeds.map((seed) => pool.sign('ed25519', seed, msg())));
    // The oldest keys were dropped by the worker; signing with them again must still work.
    const again = await Promise.all(seeds.slice(0, 30).map((seed) => pool.sign('ed25519', seed, msg())));
    for (let i = 0; i < 30; i++) {
      expect(hexOf(again[i]!)).toBe(hexOf(ed25519.sign(msg(), seeds[i]!)));
      expect(hexOf(first[i]!)).toBe(hexOf(again[i]!));
    }
    for (const i of [500, 1023, 1099]) expect(hexOf(first[i]!)).toBe(hexOf(ed25519.sign(msg(), seeds[i]!)));
  });

  test('a seed that is a view into a larger buffer signs with exactly its bytes', async () => {
    const backing = new Uint8Array(32 + 64).fill(0xee);
    backing.set(mlSeed, 32);
    const seed = backing.subarray(32, 32 + 32);
    const sig = await pool.sign('ml-dsa-44', seed, mlMsg());
    expect(ml_dsa44.verify(sig, mlMsg(), mlPub)).toBe(true);
    expect(backing.byteLength).toBe(32 + 64); // the caller's key is never transferred away
  });
});

describe('the ML-DSA-44 backend', () => {
  test("a pool uses the process's backend unless told another", () => {
    expect(pool.mldsaBackend).toBe(mldsaBackend());
  });

  test.each(availableMldsaBackends())("%s: concurrent signatures over fresh and cached keys verify with noble under the seed's key", async (backend) => {
    const p = new SignPool({ mldsa: backend });
    try {
      expect(p.mldsaBackend).toBe(backend);
      const rand = prng(0x6d6c);
      const seeds = [mlSeed, randBytes(rand, 32), randBytes(rand, 32)];
      const cases = Array.from({ length: 30 }, (_, i) => ({ seed: seeds[i % 3]!, msg: randBytes(rand, [0, 1, 100, 4096][i % 4]!) }));
      const sigs = await Promise.all(cases.map((c) => p.sign('ml-dsa-44', c.seed, Uint8Array.from(c.msg))));
      for (let i = 0; i < cases.length; i++) {
        expect(sigs[i]).toHaveLength(2420);
        expect(ml_dsa44.verify(sigs[i]!, cases[i]!.msg, ml_dsa44.keygen(cases[i]!.seed).publicKey), `case ${i}`).toBe(true);
      }
      // Ed25519 is node:crypto's whatever the ML-DSA backend.
      expect(hexOf(await p.sign('ed25519', logKey.seed, Buffer.from(TEXT)))).toBe(vectors.checkpoint_1000.log_signature_blob_hex.slice(8));
    } finally {
      await p.close();
    }
  });

  test('a backend this runtime lacks is refused when the pool is made', () => {
    const lacking = MLDSA_BACKENDS.filter((b) => !availableMldsaBackends().includes(b));
    for (const b of lacking) {
      expect(() => new SignPool({ mldsa: b })).toThrow(`sign pool: this runtime (Node ${process.version}) has no "${b}" ML-DSA-44 signer`);
    }
    expect(() => new SignPool({ mldsa: 'openssl' as never })).toThrow('has no "openssl" ML-DSA-44 signer');
  });
});

describe('note signers through the pool', () => {
  test('0x01 and 0x04 signAsync equal sign(); 0x06 verifies and carries the clock time', async () => {
    const ed = keyPair(logKey, undefined, pool.offload);
    const cos = keyPair(witnessKey, fixedClock(TS), pool.offload);
    const ml = keyPair(mldsaKey, fixedClock(1_234_567_890), pool.offload);
    expect(hexOf(await ed.signer.signAsync!(TEXT))).toBe(hexOf(ed.signer.sign(TEXT)));
    const cosSig = await cos.signer.signAsync!(TEXT);
    expect(hexOf(cosSig)).toBe(hexOf(witnessPair.signer.sign(TEXT)));
    expect(verifierFor(cos.verifier).verify(TEXT, cosSig)).toBe(true);
    const mlSig = await ml.signer.signAsync!(TEXT);
    expect(cosignatureTimestamp(SignatureType.mldsa44Subtree, mlSig)).toBe(1_234_567_890);
    expect(verifierFor(ml.verifier).verify(TEXT, mlSig)).toBe(true);
    expect(verifierFor(ml.verifier).verify(TEXT.replace('1000', '1001'), mlSig)).toBe(false);
  });
});

describe('log keys and signTreeAsync', () => {
  let dir: string;
  let keys: LogKeys;
  let plain: LogKeys;
  const now = 1_700_000_123;
  beforeAll(async () => {
    dir = makeTempDir('tlog-sign-pool-');
    await createLogKeys(dir, ORIGIN);
    keys = await loadLogKeys(dir, ORIGIN, () => now, pool.offload);
    plain = await loadLogKeys(dir, ORIGIN, () => now);
  });
  afterAll(() => removeDir(dir));

  test('keys loaded with an offload sign asynchronously; without, they do not', () => {
    expect(typeof keys.ed25519.signer.signAsync).toBe('function');
    expect(typeof keys.mldsa44.signer.signAsync).toBe('function');
    expect(plain.ed25519.signer.signAsync).toBeUndefined();
    expect(keys.mldsa44.signer.keyID).toBe(plain.mldsa44.signer.keyID);
  });

  test("200 concurrent signTreeAsync calls all verify, with signTree's text and Ed25519 line", async () => {
    const rand = prng(200);
    const trees = Array.from({ length: 200 }, (_, i) => ({ size: i * 7 + randInt(rand, 0, 7), root: randBytes(rand, 32) }));
    const notes = await Promise.all(trees.map((t) => signTreeAsync(ORIGIN, t.size, t.root, keys)));
    const verifiers = [keys.ed25519.verifier, keys.mldsa44.verifier];
    for (let i = 0; i < trees.length; i++) {
      const opened = openNote(notes[i]!, verifiers);
      expect(opened.verified.map((s) => s.keyID)).toEqual([keys.ed25519.signer.keyID, keys.mldsa44.signer.keyID]);
      const c = parseCheckpoint(opened.note.text);
      expect([c.origin, c.treeSize, hexOf(c.rootHash)]).toEqual([ORIGIN, trees[i]!.size, hexOf(trees[i]!.root)]);
      expect(cosignatureTimestamp(SignatureType.mldsa44Subtree, opened.verified[1]!.signature)).toBe(now);
      // Same text and, Ed25519 being deterministic, the same first line as the synchronous path.
      if (i % 10 === 0) {
        const sync = parseNote(signTree(ORIGIN, trees[i]!.size, trees[i]!.root, plain));
        expect(opened.note.text).toBe(sync.text);
        expect(hexOf(opened.verified[0]!.signature)).toBe(hexOf(sync.signatures[0]!.signature));
      }
    }
    expect(pool.pending).toBe(0);
  });

  test('signTreeAsync without an offload signs on this thread, the same way', async () => {
    const root = new Uint8Array(32).fill(5);
    const note = await signTreeAsync(ORIGIN, 5, root, plain);
    expect(openNote(note, [plain.ed25519.verifier, plain.mldsa44.verifier]).verified).toHaveLength(2);
    expect(parseNote(note).signatures[0]).toEqual(parseNote(signTree(ORIGIN, 5, root, plain)).signatures[0]);
  });
});

describe('several workers', () => {
  test('busy calls spread over the workers; sequential calls reuse an idle one', async () => {
    const p2 = new SignPool({ workers: 2 });
    try {
      expect(p2.liveWorkers).toBe(0); // started on demand
      for (let i = 0; i < 3; i++) await p2.sign('ml-dsa-44', mlSeed, mlMsg());
      expect(p2.liveWorkers).toBe(1);
      const sigs = await Promise.all(Array.from({ length: 8 }, () => p2.sign('ml-dsa-44', mlSeed, mlMsg())));
      expect(p2.liveWorkers).toBe(2);
      for (const s of sigs) expect(ml_dsa44.verify(s, mlMsg(), mlPub)).toBe(true);
    } finally {
      await p2.close();
    }
    expect(() => new SignPool({ workers: 0 })).toThrow(/positive integer/);
  });
});

describe('failures', () => {
  test('bad input rejects with a readable error that shows no key bytes', async () => {
    const short = new Uint8Array(31).fill(0xab);
    const errors = (
      await outcomes([
        pool.sign('ed25519', short, new Uint8Array(1)),
        pool.sign('ed25519', new Uint8Array(33).fill(0xab), new Uint8Array(1)),
        pool.sign('ml-dsa-44', short, new Uint8Array(1)),
        pool.sign('ml-dsa-44', new Uint8Array(33).fill(0xab), new Uint8Array(1)),
        // The expanded secret key is not what the pool takes: the key file's seed is.
        pool.sign('ml-dsa-44', ml_dsa44.keygen(mlSeed).secretKey, new Uint8Array(1)),
        pool.sign('rsa' as never, short, new Uint8Array(1)),
        pool.sign('ed25519', new Uint8Array(32), 'text' as never),
      ])
    ).errors as Error[];
    expect(errors.map((e) => e.message)).toEqual([
      'sign pool: ed25519 seed must be 32 bytes',
      'sign pool: ed25519 seed must be 32 bytes',
      'sign pool: ml-dsa-44 seed must be 32 bytes',
      'sign pool: ml-dsa-44 seed must be 32 bytes',
      'sign pool: ml-dsa-44 seed must be 32 bytes',
      'sign pool: unknown algorithm "rsa"',
      'sign pool: message must be a Uint8Array',
    ]);
    // At the boundary: exactly 32 bytes is a key.
    expect(
      ml_dsa44.verify(await pool.sign('ml-dsa-44', new Uint8Array(32).fill(0xab), mlMsg()), mlMsg(), ml_dsa44.keygen(new Uint8Array(32).fill(0xab)).publicKey),
    ).toBe(true);
  });

  test('an error in the worker rejects that call only; the worker keeps serving and is sent the key again', async () => {
    const seed = new Uint8Array(32).fill(0x5a);
    pool.failNextCallForTest();
    const failing = pool.sign('ml-dsa-44', seed, mlMsg());
    const { ok, errors } = await outcomes([failing, pool.sign('ml-dsa-44', mlSeed, mlMsg()), pool.sign('ed25519', new Uint8Array(32), new Uint8Array(3))]);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(Error);
    expect((errors[0] as Error).message).toBe('sign ml-dsa-44 in worker: sign failed on request (test hook)');
    expect(ml_dsa44.verify(ok[0]!, mlMsg(), mlPub)).toBe(true);
    expect(hexOf(ok[1]!)).toBe(hexOf(ed25519.sign(new Uint8Array(3), new Uint8Array(32))));
    // The failed call's key signs on the next call.
    expect(ml_dsa44.verify(await pool.sign('ml-dsa-44', seed, mlMsg()), mlMsg(), ml_dsa44.keygen(seed).publicKey)).toBe(true);
    expect(pool.pending).toBe(0);
  });

  test.each(['terminate', 'throw'] as const)('a worker that dies (%s) rejects its pending calls, and the pool recovers', async (how) => {
    // noble's ~10 ms signatures keep the worker busy while terminate() lands.
    const p = new SignPool({ mldsa: 'noble' });
    try {
      // Warm: the worker is up and holds the key.
      expect(ml_dsa44.verify(await p.sign('ml-dsa-44', mlSeed, mlMsg()), mlMsg(), mlPub)).toBe(true);
      const calls: Promise<Uint8Array>[] = [];
      // 'throw' crashes at the worker's next message: calls posted after it are doomed.
      if (how === 'throw') p.crashWorkersForTest('throw');
      for (let i = 0; i < 20; i++) calls.push(p.sign('ml-dsa-44', mlSeed, mlMsg()));
      if (how === 'terminate') p.crashWorkersForTest('terminate');
      expect(p.pending).toBe(20);
      const { ok, errors } = await outcomes(calls);
      // 'terminate' lands at once, while the worker is at most on its first signature.
      expect(errors.length).toBeGreaterThanOrEqual(how === 'throw' ? 20 : 18);
      for (const s of ok) expect(ml_dsa44.verify(s, mlMsg(), mlPub)).toBe(true);
      for (const e of errors) {
        expect(isTlogError(e, ErrorCode.unavailable), String(e)).toBe(true);
        expect((e as Error).message).toMatch(how === 'throw' ? /^sign worker failed: sign worker crashed on request/ : /^sign worker exited with code 1/);
      }
      expect(p.pending).toBe(0);
      expect(p.liveWorkers).toBe(0);
      // The next call starts a new worker, which is sent the key again.
      expect(ml_dsa44.verify(await p.sign('ml-dsa-44', mlSeed, mlMsg()), mlMsg(), mlPub)).toBe(true);
      expect(hexOf(await p.sign('ed25519', logKey.seed, Buffer.from(TEXT)))).toBe(vectors.checkpoint_1000.log_signature_blob_hex.slice(8));
      expect(p.liveWorkers).toBe(1);
    } finally {
      await p.close();
    }
  });

  test('close() rejects pending calls and every later one; closing twice is fine', async () => {
    const p = new SignPool();
    const settled = outcomes(Array.from({ length: 10 }, () => p.sign('ml-dsa-44', mlSeed, mlMsg())));
    await p.close();
    const { ok, errors } = await settled;
    expect(ok).toHaveLength(0);
    for (const e of errors) {
      expect(isTlogError(e, ErrorCode.unavailable)).toBe(true);
      expect((e as Error).message).toBe('sign pool is closed');
    }
    expect(p.liveWorkers).toBe(0);
    const later = keyPair(logKey, undefined, p.offload).signer.signAsync!(TEXT);
    await expect(later).rejects.toThrow('sign pool is closed');
    await expect(later).rejects.toSatisfy((e) => isTlogError(e, ErrorCode.unavailable));
    await p.close();
  });
});

describe('from dist/ in a plain node process', () => {
  const distPool = distModule('log/sign-pool.js');
  beforeAll(() => ensureDist(), 240_000);

  test.each(availableMldsaBackends())('signs with TLOG_MLDSA_SIGNER=%s; a pending call keeps the process alive, an idle pool never does', (backend) => {
    // Top-level await on the only pending work: the worker must be ref'd while the call runs
    // (else node exits 13, "unsettled top-level await"). Then the pool is left idle and open:
    // the process must exit by itself.
    const script = `
      import { SignPool } from ${JSON.stringify(distPool)};
      import { ml_dsa44 } from '@noble/post-quantum/ml-dsa.js';
      import { ed25519 } from '@noble/curves/ed25519.js';
      const pool = new SignPool();
      const seed = new Uint8Array(32).fill(1);
      const msg = () => new TextEncoder().encode('from dist');
      const sig = await pool.sign('ml-dsa-44', seed, msg());
      const ed = await pool.sign('ed25519', new Uint8Array(32).fill(2), msg());
      const edOk = Buffer.from(ed).equals(Buffer.from(ed25519.sign(msg(), new Uint8Array(32).fill(2))));
      console.log(JSON.stringify({ mldsa: ml_dsa44.verify(sig, msg(), ml_dsa44.keygen(seed).publicKey), ed25519: edOk, workers: pool.liveWorkers, backend: pool.mldsaBackend }));
    `;
    // The script takes well under a second; a kept-alive process is killed (status null).
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: repoRoot,
      encoding: 'utf8',
      timeout: 15_000,
      env: { ...process.env, TLOG_MLDSA_SIGNER: backend },
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ mldsa: true, ed25519: true, workers: 1, backend });
  });

  test('TLOG_MLDSA_SIGNER naming no backend stops the pool from being made, with one readable error', () => {
    const script = `import { SignPool } from ${JSON.stringify(distPool)}; new SignPool();`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: repoRoot,
      encoding: 'utf8',
      timeout: 15_000,
      env: { ...process.env, TLOG_MLDSA_SIGNER: 'wasm' },
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('TLOG_MLDSA_SIGNER="wasm": want one of node:crypto, liboqs-wasm, noble');
  });
});
