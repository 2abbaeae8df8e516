/**
 * The ML-DSA-44 backends (src/log/mldsa-backend.ts): which one a runtime gets, and that each one
 * this runtime offers derives the FIPS 204 key of NIST's keyGen vectors from their seeds and
 * makes signatures that noble verifies under the vector's public key. CI runs this file on the
 * system Node (liboqs-wasm, noble) and on the current LTS (node:crypto too), so every backend is
 * checked somewhere; on each runtime, the backends it lacks are checked to be refused.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { ml_dsa44 } from '@noble/post-quantum/ml-dsa.js';
import { createMLDSA44 } from '@oqs/liboqs-js/sig';
import { describe, expect, test } from 'vitest';
import { ErrorCode, isTlogError } from '../../src/errors.js';
import {
  MLDSA_BACKENDS,
  availableMldsaBackends,
  chooseMldsaBackend,
  loadMldsaBackend,
  nodeCryptoHasMldsa,
  type MldsaBackend,
  type MldsaSigner,
} from '../../src/log/mldsa-backend.js';
import { subtreeV1Message } from '../../src/note/signers.js';
import { b64, vectors } from '../vectors.js';
import { thrownBy } from '../helpers/errors.js';
import { repoRoot } from '../helpers/dist.js';

interface KeyGenVector {
  tcId: number;
  seed: string;
  pk: string;
  sk: string;
}
const keyGen = (JSON.parse(readFileSync(path.join(repoRoot, 'test/vectors/mldsa44-acvp-keygen.json'), 'utf8')) as { tests: KeyGenVector[] }).tests;
const bytes = (hex: string) => Uint8Array.from(Buffer.from(hex, 'hex'));
const hexOf = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex').toUpperCase();

/** The public key of a node:crypto ML-DSA-44 key: the last 1312 bytes of its SPKI (RFC 9881). */
const nodePublicKey = (k: KeyObject) => new Uint8Array(createPublicKey(k).export({ format: 'der', type: 'spki' }).subarray(-1312));

/** Messages to sign: empty, one byte, a subtree/v1 message as the log signs, 64 KiB. */
const m = vectors.mldsa44_cosigned_message_bytes;
const MESSAGES = [
  new Uint8Array(0),
  Uint8Array.of(0x42),
  subtreeV1Message({ cosignerName: m.cosigner_name, timestamp: m.timestamp, origin: m.log_origin, start: m.start, end: m.end, hash: b64(m.hash_b64) }),
  new Uint8Array(65536).fill(7),
];

const available = availableMldsaBackends();
const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];

describe('the choice of backend', () => {
  test('node:crypto signs ML-DSA-44 from Node 24.7 on, not before 24; noble and liboqs-wasm are always there', () => {
    if (major > 24 || (major === 24 && minor >= 7)) expect(nodeCryptoHasMldsa()).toBe(true);
    if (major < 24) expect(nodeCryptoHasMldsa()).toBe(false);
    expect(available).toEqual(MLDSA_BACKENDS.filter((b) => b !== 'node:crypto' || nodeCryptoHasMldsa()));
    expect(available).toContain('liboqs-wasm');
    expect(available).toContain('noble');
  });

  test('unforced, the preferred one the runtime offers: node:crypto where it signs, else liboqs-wasm', () => {
    const preferred = nodeCryptoHasMldsa() ? 'node:crypto' : 'liboqs-wasm';
    expect(chooseMldsaBackend(undefined)).toBe(preferred);
    expect(chooseMldsaBackend('')).toBe(preferred);
  });

  test('forced: any backend the runtime offers, exactly as named', () => {
    for (const b of available) expect(chooseMldsaBackend(b)).toBe(b);
  });

  test('forced: an unknown name is refused, naming the backends', () => {
    for (const bad of ['bogus', 'Noble', 'liboqs', ' noble']) {
      const err = thrownBy(() => chooseMldsaBackend(bad));
      expect(isTlogError(err, ErrorCode.badInput), String(err)).toBe(true);
      expect((err as Error).message).toBe(`TLOG_MLDSA_SIGNER=${JSON.stringify(bad)}: want one of node:crypto, liboqs-wasm, noble`);
    }
  });

  test('forced: a backend this runtime lacks is refused, naming the ones it has', () => {
    const lacking = MLDSA_BACKENDS.filter((b) => !available.includes(b));
    // The current LTS has all three; the system Node (20) lacks node:crypto's.
    expect(lacking).toEqual(nodeCryptoHasMldsa() ? [] : ['node:crypto']);
    for (const b of lacking) {
      expect(() => chooseMldsaBackend(b)).toThrow(
        `TLOG_MLDSA_SIGNER=${b}: this runtime (Node ${process.version}) does not offer it; it offers ${available.join(', ')}`,
      );
    }
  });
});

describe.each(available)('backend %s', (name: MldsaBackend) => {
  let backend: MldsaSigner;
  const load = async () => (backend ??= await loadMldsaBackend(name));

  test('FIPS 204 keyGen vectors (NIST ACVP): the key derived from the seed is the vector key', async () => {
    const b = await load();
    expect(b.name).toBe(name);
    for (const v of keyGen) {
      const key = b.keyFromSeed(bytes(v.seed));
      if (name === 'node:crypto') {
        expect(hexOf(nodePublicKey(key as KeyObject)), `tcId ${v.tcId}`).toBe(v.pk);
      } else {
        // noble's expanded secret key (skEncode), which liboqs signs with.
        expect(hexOf(key as Uint8Array), `tcId ${v.tcId}`).toBe(v.sk);
      }
      expect(hexOf(ml_dsa44.keygen(bytes(v.seed)).publicKey)).toBe(v.pk);
    }
  });

  test('signatures verify (noble) under the vector public key, fail for another message, and are hedged', async () => {
    const b = await load();
    for (const v of keyGen) {
      const key = b.keyFromSeed(bytes(v.seed));
      const pk = bytes(v.pk);
      for (const msg of MESSAGES) {
        const sig = b.sign(key, msg);
        expect(sig).toHaveLength(2420);
        expect(ml_dsa44.verify(sig, msg, pk), `tcId ${v.tcId}, ${msg.length}-byte message`).toBe(true);
        expect(ml_dsa44.verify(sig, Uint8Array.of(...msg.subarray(0, 16), 1), pk)).toBe(false);
      }
      // Hedged (FIPS 204 Algorithm 2 with fresh rnd): two signatures of one message differ.
      expect(hexOf(b.sign(key, MESSAGES[2]!))).not.toBe(hexOf(b.sign(key, MESSAGES[2]!)));
    }
  });

  test('signs Buffers and views into larger buffers as the bytes they show', async () => {
    const b = await load();
    const v = keyGen[0]!;
    const key = b.keyFromSeed(bytes(v.seed));
    const big = Buffer.from('xxxxhello, view!yyyy');
    const view = big.subarray(4, 16);
    expect(ml_dsa44.verify(b.sign(key, view), Buffer.from('hello, view!'), bytes(v.pk))).toBe(true);
    expect(ml_dsa44.verify(b.sign(key, Buffer.from('hello')), Buffer.from('hello'), bytes(v.pk))).toBe(true);
  });
});

describe('liboqs agrees with FIPS 204 byte for byte (its randomness fed through node:crypto)', () => {
  /**
   * liboqs-js draws its randomness from node:crypto's randomFillSync (looked up at each call):
   * feeding it the vector seed makes its own key generation FIPS 204 ML-DSA.KeyGen_internal(ξ),
   * and feeding it zeros makes its signing FIPS 204's deterministic variant (rnd = {0}^32).
   */
  const nodeCrypto = createRequire(import.meta.url)('node:crypto') as { randomFillSync: (b: Uint8Array) => Uint8Array };
  function withRandomness<T>(fill: Uint8Array, f: () => T): { value: T; draws: number[] } {
    const original = nodeCrypto.randomFillSync;
    const draws: number[] = [];
    nodeCrypto.randomFillSync = (buf: Uint8Array) => {
      draws.push(buf.length);
      buf.set(fill.subarray(0, buf.length));
      return buf;
    };
    try {
      return { value: f(), draws };
    } finally {
      nodeCrypto.randomFillSync = original;
    }
  }

  test("liboqs's key generation from the vector seed gives the vector's pk and sk: its secret-key format is FIPS 204's", async () => {
    const oqs = await createMLDSA44();
    for (const v of keyGen) {
      const { value, draws } = withRandomness(bytes(v.seed), () => oqs.generateKeyPair());
      expect(draws).toEqual([32]);
      expect(hexOf(value.publicKey), `tcId ${v.tcId}`).toBe(v.pk);
      expect(hexOf(value.secretKey), `tcId ${v.tcId}`).toBe(v.sk);
    }
  });

  test('deterministic signatures (rnd = 0) of liboqs and noble are the same bytes', async () => {
    const oqs = await createMLDSA44();
    for (const v of keyGen) {
      for (const msg of MESSAGES) {
        const { value, draws } = withRandomness(new Uint8Array(32), () => oqs.sign(Uint8Array.from(msg), bytes(v.sk)));
        expect(draws).toEqual([32]);
        expect(hexOf(value), `tcId ${v.tcId}, ${msg.length}-byte message`).toBe(hexOf(ml_dsa44.sign(msg, bytes(v.sk), { extraEntropy: false })));
      }
    }
  });
});

describe.runIf(available.includes('node:crypto'))('node:crypto (OpenSSL) and the FIPS 204 expanded key', () => {
  /** RFC 9881 PrivateKeyInfo holding only the expanded key: OCTET STRING (2560 bytes). */
  const expandedPkcs8 = (sk: Uint8Array) =>
    createPrivateKey({
      key: Buffer.concat([Buffer.from('30820a18020100300b060960864801650304031104820a0404820a00', 'hex'), sk]),
      format: 'der',
      type: 'pkcs8',
    });

  test("the vector's expanded secret key is the same key as its seed; a tampered one is refused", async () => {
    const b = await loadMldsaBackend('node:crypto');
    for (const v of keyGen) {
      const k = expandedPkcs8(bytes(v.sk));
      expect(hexOf(nodePublicKey(k))).toBe(v.pk);
      expect(ml_dsa44.verify(b.sign(k, MESSAGES[2]!), MESSAGES[2]!, bytes(v.pk))).toBe(true);
      // OpenSSL recomputes tr (bytes 64..127) from the key: one flipped bit is an invalid key.
      const bad = bytes(v.sk);
      bad[64]! ^= 1;
      expect(() => expandedPkcs8(bad)).toThrow(/invalid key/);
    }
  });
});
