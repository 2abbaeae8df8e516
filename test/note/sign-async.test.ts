/**
 * signNoteAsync and keyPair's signAsync through a SignOffload. The offloads here compute on
 * this thread with noble (test/log/sign-pool.test.ts runs the worker-thread one), so what is
 * checked is the contract: same message, same framing, same errors, concurrency and order.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { ml_dsa44 } from '@noble/post-quantum/ml-dsa.js';
import { describe, expect, test } from 'vitest';
import { ErrorCode } from '../../src/errors.js';
import { formatCheckpoint, parseCheckpoint } from '../../src/note/checkpoint.js';
import { SignatureType } from '../../src/note/keys.js';
import { type NoteSigner, formatNote, openNote, signNote, signNoteAsync } from '../../src/note/note.js';
import { type SignAlgorithm, type SignOffload, cosignatureTimestamp, cosignatureV1Message, keyPair, subtreeV1Message } from '../../src/note/signers.js';
import { b64, toHex, vectors } from '../vectors.js';
import { expectRejectCode } from '../helpers/errors.js';
import { TS, fixedClock, logKey, logPair, mldsaKey, witnessKey, witnessPair } from './helpers.js';

const cp = vectors.checkpoint_1000;
const TEXT = cp.checkpoint_body;

interface OffloadCall {
  alg: SignAlgorithm;
  seed: Uint8Array;
  message: Uint8Array;
}

/** An offload that signs here with noble and records what it was asked. */
function recordingOffload(): { offload: SignOffload; calls: OffloadCall[] } {
  const calls: OffloadCall[] = [];
  const offload: SignOffload = async (alg, seed, message) => {
    calls.push({ alg, seed, message: Uint8Array.from(message) });
    await new Promise((r) => setTimeout(r, 1));
    return alg === 'ed25519' ? ed25519.sign(message, seed) : ml_dsa44.sign(message, ml_dsa44.keygen(seed).secretKey);
  };
  return { offload, calls };
}

/** A promise with its resolve and reject in hand. */
function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('signNoteAsync', () => {
  test('without signAsync it signs like signNote (Ed25519 is deterministic: byte-exact vector)', async () => {
    const n = await signNoteAsync(TEXT, [logPair.signer, witnessPair.signer]);
    expect(formatNote(n)).toBe(formatNote(signNote(TEXT, [logPair.signer, witnessPair.signer])));
    expect(formatNote(n)).toBe(vectors.cosignature_v1_ed25519.cosigned_note);
  });

  test('refuses what signNote refuses, as a rejection, before any signer runs', async () => {
    let ran = 0;
    const spy: NoteSigner = {
      name: 'spy.example',
      keyID: 1,
      sign: () => (ran++, new Uint8Array(1)),
      signAsync: async () => (ran++, new Uint8Array(1)),
    };
    for (const bad of ['no newline', 'tab\there\n', 'x\ud800\n', '\u0085\n']) {
      expect(() => signNote(bad, [spy])).toThrow();
      const p = signNoteAsync(bad, [spy]);
      expect(p).toBeInstanceOf(Promise);
      await expectRejectCode(p, ErrorCode.badInput);
    }
    expect(ran).toBe(0);
  });

  test('async signers all start before any finishes, sync ones run meanwhile, order is kept', async () => {
    const events: string[] = [];
    const d1 = deferred<Uint8Array>();
    const d3 = deferred<Uint8Array>();
    const asyncSigner = (name: string, d: { promise: Promise<Uint8Array> }): NoteSigner => ({
      name,
      keyID: 1,
      sign: () => {
        throw new Error('sync path used');
      },
      signAsync: (t) => {
        events.push(`start ${name} ${t === TEXT}`);
        return d.promise;
      },
    });
    const syncSigner: NoteSigner = { name: 's2', keyID: 2, sign: () => (events.push('sync s2'), Uint8Array.of(2)) };
    const p = signNoteAsync(TEXT, [asyncSigner('a1', d1), syncSigner, asyncSigner('a3', d3)]);
    expect(events).toEqual(['start a1 true', 'start a3 true', 'sync s2']);
    d3.resolve(Uint8Array.of(3)); // the last finishes first
    await new Promise((r) => setTimeout(r, 5));
    d1.resolve(Uint8Array.of(1));
    const n = await p;
    expect(n.text).toBe(TEXT);
    expect(n.signatures.map((s) => [s.name, s.keyID, [...s.signature]])).toEqual([
      ['a1', 1, [1]],
      ['s2', 2, [2]],
      ['a3', 1, [3]],
    ]);
  });

  test('a failing signer rejects the note; a second failure is not an unhandled rejection', async () => {
    const late = deferred<Uint8Array>();
    const failingAsync: NoteSigner = { name: 'a', keyID: 1, sign: () => new Uint8Array(1), signAsync: () => late.promise };
    const throwingSync: NoteSigner = {
      name: 'b',
      keyID: 2,
      sign: () => {
        throw new Error('sync signer broke');
      },
    };
    const throwingAsync: NoteSigner = {
      name: 'c',
      keyID: 3,
      sign: () => new Uint8Array(1),
      signAsync: () => {
        throw new Error('signAsync threw synchronously');
      },
    };
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      await expect(signNoteAsync(TEXT, [failingAsync, throwingSync])).rejects.toThrow('sync signer broke');
      late.reject(new Error('async signer broke too'));
      await expect(signNoteAsync(TEXT, [throwingAsync])).rejects.toThrow('signAsync threw synchronously');
      await new Promise((r) => setTimeout(r, 20));
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    expect(unhandled).toEqual([]);
  });
});

describe('keyPair with a SignOffload', () => {
  test('no offload, no signAsync', () => {
    expect(logPair.signer.signAsync).toBeUndefined();
    expect(keyPair(mldsaKey, fixedClock()).signer.signAsync).toBeUndefined();
  });

  test('0x01: the offload signs the note text with the seed; bytes equal sign()', async () => {
    const { offload, calls } = recordingOffload();
    const pair = keyPair(logKey, undefined, offload);
    const sig = await pair.signer.signAsync!(TEXT);
    expect(toHex(sig)).toBe(toHex(pair.signer.sign(TEXT)));
    expect(formatNote(await signNoteAsync(TEXT, [pair.signer]))).toBe(cp.signed_note);
    expect(calls[0]!.alg).toBe('ed25519');
    expect(toHex(calls[0]!.seed)).toBe(toHex(logKey.seed));
    expect(Buffer.from(calls[0]!.message).toString('utf8')).toBe(TEXT);
  });

  test('0x04: cosignature/v1 message at the clock time, u64 prefix; byte-exact vector', async () => {
    const { offload, calls } = recordingOffload();
    let ticks = 0;
    const pair = keyPair(witnessKey, () => (ticks++, TS), offload);
    const sig = await pair.signer.signAsync!(TEXT);
    expect(ticks).toBe(1);
    expect(toHex(calls[0]!.message)).toBe(toHex(cosignatureV1Message(TEXT, TS)));
    expect(toHex(sig)).toBe(toHex(witnessPair.signer.sign(TEXT)));
    expect(cosignatureTimestamp(SignatureType.cosignatureV1, sig)).toBe(TS);
    expect(formatNote(await signNoteAsync(TEXT, [keyPair(logKey, undefined, offload).signer, pair.signer]))).toBe(vectors.cosignature_v1_ed25519.cosigned_note);
  });

  test("0x06: subtree/v1 message at the clock time, the key file's seed; verifies", async () => {
    const { offload, calls } = recordingOffload();
    const pair = keyPair(mldsaKey, fixedClock(TS), offload);
    const sig = await pair.signer.signAsync!(TEXT);
    expect(sig).toHaveLength(8 + 2420);
    expect(cosignatureTimestamp(SignatureType.mldsa44Subtree, sig)).toBe(TS);
    expect(pair.verifier.verify(TEXT, sig)).toBe(true);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.alg).toBe('ml-dsa-44');
    expect(toHex(calls[0]!.seed)).toBe(toHex(mldsaKey.seed));
    const m = vectors.mldsa44_cosigned_message_bytes;
    expect(toHex(calls[0]!.message)).toBe(
      toHex(subtreeV1Message({ cosignerName: m.cosigner_name, timestamp: TS, origin: m.log_origin, start: 0, end: m.end, hash: b64(m.hash_b64) })),
    );
    const note = await signNoteAsync(TEXT, [keyPair(logKey, undefined, offload).signer, pair.signer]);
    expect(openNote(formatNote(note), [logPair.verifier, pair.verifier]).verified).toHaveLength(2);
  });

  test('0x06 refuses extension lines and non-checkpoints as sign() does, without calling the offload', async () => {
    const { offload, calls } = recordingOffload();
    const pair = keyPair(mldsaKey, fixedClock(TS), offload);
    const withExt = formatCheckpoint({ ...parseCheckpoint(TEXT), extensions: ['extension'] });
    for (const text of [withExt, 'hello\n']) {
      expect(() => pair.signer.sign(text)).toThrow(/without extension lines/);
      await expectRejectCode(pair.signer.signAsync!(text), ErrorCode.badInput);
    }
    expect(calls).toHaveLength(0);
  });

  test('a raw signature of the wrong size from the offload is refused', async () => {
    const short: SignOffload = async () => new Uint8Array(63);
    await expect(keyPair(logKey, undefined, short).signer.signAsync!(TEXT)).rejects.toThrow(/63 bytes for ed25519, want 64/);
    const long: SignOffload = async () => new Uint8Array(2421);
    await expect(keyPair(mldsaKey, fixedClock(), long).signer.signAsync!(TEXT)).rejects.toThrow(/2421 bytes for ml-dsa-44, want 2420/);
  });

  test("the offload's failure is the signature's", async () => {
    const failing: SignOffload = () => Promise.reject(new Error('worker gone'));
    await expect(signNoteAsync(TEXT, [keyPair(logKey, undefined, failing).signer])).rejects.toThrow('worker gone');
  });
});
