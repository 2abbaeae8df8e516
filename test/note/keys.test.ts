import { createHash } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { ErrorCode } from '../../src/errors.js';
import {
  MLDSA44_PUBLIC_KEY_SIZE,
  SignatureType,
  computeKeyID,
  formatKeyID,
  formatPrivateKey,
  formatVerifierKey,
  generatePrivateKey,
  parsePrivateKey,
  parseVerifierKey,
} from '../../src/note/keys.js';
import { derivePublicKey } from '../../src/note/signers.js';
import { b64, hex, toB64, toHex, vectors } from '../vectors.js';
import { expectCode } from '../helpers/errors.js';
import { logKey, mldsaKey, witnessKey } from './helpers.js';

describe.each([
  ['log key (0x01 Ed25519)', vectors.log_key, SignatureType.ed25519],
  ['witness key (0x04 cosignature/v1)', vectors.witness_key, SignatureType.cosignatureV1],
] as const)('vectors: %s', (_, v, type) => {
  const seed = hex(v.ed25519_seed_hex);
  const pub = derivePublicKey({ name: v.name, type, seed });

  test('public key from seed', () => {
    expect(toHex(pub)).toBe(v.ed25519_public_key_hex);
    expect(Number(v.signature_type_byte)).toBe(type);
  });

  test('key ID = SHA-256(name || 0x0a || type || pubkey)[:4]', () => {
    const pre = Buffer.concat([Buffer.from(v.name), Uint8Array.of(0x0a, type), pub]);
    expect(pre.toString('hex')).toBe(v.key_id_preimage_hex);
    expect(createHash('sha256').update(pre).digest('hex').slice(0, 8)).toBe(v.key_id_hex);
    expect(formatKeyID(computeKeyID(v.name, type, pub))).toBe(v.key_id_hex);
  });

  test('vkey format and parse', () => {
    expect(formatVerifierKey({ name: v.name, type, publicKey: pub })).toBe(v.vkey);
    const k = parseVerifierKey(v.vkey);
    expect(k.name).toBe(v.name);
    expect(k.type).toBe(type);
    expect(formatKeyID(k.keyID)).toBe(v.key_id_hex);
    expect(toHex(k.publicKey)).toBe(v.ed25519_public_key_hex);
  });

  test('skey parse and format', () => {
    const k = parsePrivateKey(v.skey_TEST_ONLY, derivePublicKey);
    expect(k.name).toBe(v.name);
    expect(k.type).toBe(type);
    expect(toHex(k.seed)).toBe(v.ed25519_seed_hex);
    expect(formatPrivateKey(k, pub)).toBe(v.skey_TEST_ONLY);
  });
});

describe('key IDs depend on the type', () => {
  test('the same Ed25519 key under 0x01 and 0x04 gets two IDs (mistake 12 of the digest)', () => {
    const pub = derivePublicKey(logKey);
    const a = computeKeyID(logKey.name, SignatureType.ed25519, pub);
    const b = computeKeyID(logKey.name, SignatureType.cosignatureV1, pub);
    expect(a).not.toBe(b);
    expect(formatKeyID(a)).toBe(vectors.log_key.key_id_hex);
  });

  test('formatKeyID pads and lowercases', () => {
    expect(formatKeyID(0)).toBe('00000000');
    expect(formatKeyID(0xabc)).toBe('00000abc');
    expect(formatKeyID(0xffffffff)).toBe('ffffffff');
  });

  test('helpers parse the vector keys', () => {
    expect(witnessKey.type).toBe(SignatureType.cosignatureV1);
  });
});

describe('vectors: ML-DSA-44 key from seed (0x06)', () => {
  const v = vectors.mldsa44_cosignature_openssl;
  test('public key, key ID and vkey', () => {
    const pub = derivePublicKey(mldsaKey);
    expect(pub).toHaveLength(MLDSA44_PUBLIC_KEY_SIZE);
    expect(toB64(pub)).toBe(v.public_key_b64);
    expect(formatKeyID(computeKeyID(v.cosigner_name, SignatureType.mldsa44Subtree, pub))).toBe(v.key_id_hex);
    expect(formatVerifierKey({ name: v.cosigner_name, type: SignatureType.mldsa44Subtree, publicKey: pub })).toBe(v.vkey);
    const k = parseVerifierKey(v.vkey);
    expect(k.type).toBe(SignatureType.mldsa44Subtree);
    expect(toB64(k.publicKey)).toBe(v.public_key_b64);
    expect(formatKeyID(k.keyID)).toBe(v.key_id_hex);
  });

  test('skey round trip', () => {
    const pub = derivePublicKey(mldsaKey);
    const skey = formatPrivateKey(mldsaKey, pub);
    expect(skey).toBe(`PRIVATE+KEY+${v.cosigner_name}+${v.key_id_hex}+${toB64(Uint8Array.of(0x06, ...mldsaKey.seed))}`);
    const k = parsePrivateKey(skey, derivePublicKey);
    expect(toHex(k.seed)).toBe(v.mldsa44_seed_hex);
    expect(k.type).toBe(SignatureType.mldsa44Subtree);
  });
});

describe('bad verifier keys are refused', () => {
  const good = vectors.log_key.vkey;
  const [name, id, key] = good.split('+') as [string, string, string];
  const blob = b64(key);
  const withType = (t: number, pub: Uint8Array) => toB64(Uint8Array.of(t, ...pub));
  const cases: [string, string][] = [
    ['wrong key ID', `${name}+${id.slice(0, 7)}${id[7] === '0' ? '1' : '0'}+${key}`],
    ['uppercase key ID', `${name}+${id.toUpperCase()}+${key}`],
    ['short key ID', `${name}+${id.slice(1)}+${key}`],
    ['empty name', `+${id}+${key}`],
    ['name with a space', `example.com/ log+${id}+${key}`],
    ['name with an ideographic space', `example.com/\u3000log+${id}+${key}`],
    ['extra field', `${name}+${id}+${key}+x`],
    ['missing field', `${name}+${key}`],
    ['unknown type 0x02', `${name}+${id}+${withType(0x02, blob.subarray(1))}`],
    ['type 0xff', `${name}+${id}+${withType(0xff, blob.subarray(1))}`],
    ['short key', `${name}+${id}+${toB64(blob.subarray(0, 32))}`],
    ['long key', `${name}+${id}+${toB64(Uint8Array.of(...blob, 0))}`],
    ['ML-DSA type with an Ed25519-sized key', `${name}+${id}+${withType(0x06, blob.subarray(1))}`],
    ['base64url alphabet', `${name}+${id}+${key.replaceAll('/', '_')}`],
    ['base64 with a trailing newline inside', `${name}+${id}+${key.slice(0, 20)}\n${key.slice(20)}`],
    ['not base64', `${name}+${id}+${key.slice(0, -4)}!!!=`],
    ['type byte only', `${name}+${id}+AQ==`],
  ];
  test.each(cases)('%s', (_, vkey) => {
    expectCode(() => parseVerifierKey(vkey), ErrorCode.badInput);
  });

  test('the key ID is checked against name, type and key', () => {
    // A correct ID for the same key under the other type is still wrong.
    const pub = blob.subarray(1);
    const other = formatKeyID(computeKeyID(name, SignatureType.cosignatureV1, pub));
    expectCode(() => parseVerifierKey(`${name}+${other}+${key}`), ErrorCode.badInput);
    // ... and an ID for another name.
    const otherName = formatKeyID(computeKeyID('example.com/other', SignatureType.ed25519, pub));
    expectCode(() => parseVerifierKey(`${name}+${otherName}+${key}`), ErrorCode.badInput);
  });
});

describe('bad private keys are refused', () => {
  const good = vectors.log_key.skey_TEST_ONLY;
  const parts = good.split('+');
  const cases: [string, string][] = [
    ['no PRIVATE+KEY prefix', parts.slice(2).join('+')],
    ['lowercase prefix', good.replace('PRIVATE+KEY', 'private+key')],
    ['wrong key ID', [...parts.slice(0, 3), '00000000', parts[4]].join('+')],
    ['short seed', [...parts.slice(0, 4), toB64(Uint8Array.of(1, ...new Uint8Array(31).fill(1)))].join('+')],
    ['unknown type', [...parts.slice(0, 4), toB64(Uint8Array.of(2, ...new Uint8Array(32).fill(1)))].join('+')],
    ['name with +', good.replace('example.com/log', 'example.com+log')],
  ];
  test.each(cases)('%s', (_, skey) => {
    expectCode(() => parsePrivateKey(skey, derivePublicKey), ErrorCode.badInput);
  });

  test('generatePrivateKey gives fresh seeds and checks the name', () => {
    const a = generatePrivateKey('example.com/a', SignatureType.ed25519);
    const b = generatePrivateKey('example.com/a', SignatureType.ed25519);
    expect(a.seed).toHaveLength(32);
    expect(toHex(a.seed)).not.toBe(toHex(b.seed));
    expectCode(() => generatePrivateKey('a b', SignatureType.ed25519), ErrorCode.badInput);
    expectCode(() => generatePrivateKey('', SignatureType.ed25519), ErrorCode.badInput);
    expectCode(() => generatePrivateKey('a+b', SignatureType.ed25519), ErrorCode.badInput);
  });
});
