import { describe, expect, test } from 'vitest';
import { ErrorCode } from '../../src/errors.js';
import { SignatureType, parseVerifierKey } from '../../src/note/keys.js';
import {
  MAX_SIGNATURES,
  type NoteSignature,
  type NoteVerifier,
  checkKeyName,
  decodeBase64Strict,
  decodeNoteBytes,
  encodeBase64,
  formatNote,
  formatSignatureLine,
  openNote,
  parseNote,
  signNote,
} from '../../src/note/note.js';
import { verifierFor } from '../../src/note/signers.js';
import { prng, randBytes, randInt } from '../prng.mjs';
import { toB64, toHex, vectors } from '../vectors.js';
import { expectCode } from '../helpers/errors.js';
import { logPair, testPair, witnessPair } from './helpers.js';

const cp = vectors.checkpoint_1000;
const TEXT = cp.checkpoint_body;
const SIGNED = cp.signed_note;
const logVerifier = logPair.verifier;
const witnessVerifier = witnessPair.verifier;

/** A syntactically valid signature line from a key no one knows. */
function greaseLine(rand: () => number): string {
  const nameChars = 'abcdefghijklmnopqrstuvwxyz0123456789./-_:~';
  const name = Array.from({ length: randInt(rand, 1, 40) }, () => nameChars[randInt(rand, 0, nameChars.length)]).join('');
  return formatSignatureLine({ name: `grease.example/${name}`, keyID: randInt(rand, 0, 2 ** 32), signature: randBytes(rand, randInt(rand, 1, 200)) });
}

describe('vectors: checkpoint_1000 signed note', () => {
  test('parse and format are byte-exact', () => {
    const n = parseNote(SIGNED);
    expect(n.text).toBe(TEXT);
    expect(n.signatures).toHaveLength(1);
    const s = n.signatures[0]!;
    expect(s.name).toBe(vectors.log_key.name);
    expect(s.keyID.toString(16).padStart(8, '0')).toBe(vectors.log_key.key_id_hex);
    expect(toHex(Uint8Array.of(...Buffer.from(vectors.log_key.key_id_hex, 'hex'), ...s.signature))).toBe(cp.log_signature_blob_hex);
    expect(formatSignatureLine(s)).toBe(cp.log_signature_line);
    expect(formatNote(n)).toBe(SIGNED);
    expect(parseNote(Buffer.from(SIGNED, 'utf8')).text).toBe(TEXT);
  });

  test('signing with the log key is byte-exact (Ed25519 is deterministic)', () => {
    expect(vectors.go_self_checks.manual_ed25519_note_sig_equals_xmod).toBe(true);
    expect(formatNote(signNote(TEXT, [logPair.signer]))).toBe(SIGNED);
  });

  test('opens with the log key (go_self_checks.xmod_note_open_checkpoint_1000)', () => {
    const o = openNote(SIGNED, [logVerifier]);
    expect(o.verified.map((s) => s.name)).toEqual([vectors.log_key.name]);
    expect(o.unknown).toEqual([]);
    expect(openNote(Buffer.from(SIGNED), [verifierFor(parseVerifierKey(vectors.log_key.vkey))]).verified).toHaveLength(1);
  });

  test('the em dash is UTF-8 e2 80 94', () => {
    expect(
      Buffer.from(SIGNED)
        .subarray(TEXT.length + 1, TEXT.length + 4)
        .toString('hex'),
    ).toBe('e28094');
  });
});

test('the signed-note spec example verifies (go_self_checks.signed_note_spec_example_verifies)', () => {
  expect(vectors.go_self_checks.signed_note_spec_example_verifies).toBe(true);
  const note =
    "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n" +
    '\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n';
  const v = verifierFor(parseVerifierKey('PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'));
  expect(openNote(note, [v]).verified).toHaveLength(1);
  expectCode(() => openNote(note.replace('cryptography', 'Cryptography'), [v]), ErrorCode.verification);
});

describe('verification rules (c2sp.org/signed-note)', () => {
  test('unknown keys are ignored; the known one verifies', () => {
    const o = openNote(vectors.cosignature_v1_ed25519.cosigned_note, [logVerifier]);
    expect(o.verified.map((s) => s.name)).toEqual([vectors.log_key.name]);
    expect(o.unknown.map((s) => s.name)).toEqual([vectors.witness_key.name]);
  });

  test('only the witness trusted: the log signature is ignored (go_self_checks)', () => {
    expect(vectors.go_self_checks.unknown_log_sig_ignored_when_only_witness_trusted).toBe(true);
    const o = openNote(vectors.cosignature_v1_ed25519.cosigned_note, [witnessVerifier]);
    expect(o.verified.map((s) => s.name)).toEqual([vectors.witness_key.name]);
    expect(o.unknown.map((s) => s.name)).toEqual([vectors.log_key.name]);
  });

  test('a signature counts only when both name and key ID match', () => {
    const sig = parseNote(SIGNED).signatures[0]!;
    const sameNameOtherID = formatNote({ text: TEXT, signatures: [{ ...sig, keyID: (sig.keyID + 1) >>> 0 }] });
    const sameIDOtherName = formatNote({ text: TEXT, signatures: [{ ...sig, name: 'example.com/other' }] });
    // Neither is the log's signature, so neither is checked: the note has no known signature.
    expectCode(() => openNote(sameNameOtherID, [logVerifier]), ErrorCode.verification);
    expectCode(() => openNote(sameIDOtherName, [logVerifier]), ErrorCode.verification);
    // Alongside the real one, they are ignored as unknown.
    const mixed = SIGNED + formatSignatureLine({ ...sig, keyID: (sig.keyID + 1) >>> 0 }) + formatSignatureLine({ ...sig, name: 'x' });
    const o = openNote(mixed, [logVerifier]);
    expect(o.verified).toHaveLength(1);
    expect(o.unknown).toHaveLength(2);
  });

  test('no known key: rejected', () => {
    expectCode(() => openNote(SIGNED, []), ErrorCode.verification);
    expectCode(() => openNote(SIGNED, [witnessVerifier]), ErrorCode.verification);
    expectCode(() => openNote(SIGNED, [testPair('example.com/log', SignatureType.ed25519, 9).verifier]), ErrorCode.verification);
  });

  test('a known key whose signature fails rejects the note, even beside a good one', () => {
    const good = parseNote(SIGNED).signatures[0]!;
    const bad: NoteSignature = { ...good, signature: Uint8Array.from(good.signature, (b, i) => (i === 10 ? b ^ 1 : b)) };
    expectCode(() => openNote(formatNote({ text: TEXT, signatures: [bad] }), [logVerifier]), ErrorCode.verification);
    expectCode(() => openNote(formatNote({ text: TEXT, signatures: [good, bad] }), [logVerifier]), ErrorCode.verification);
    expectCode(() => openNote(formatNote({ text: TEXT, signatures: [bad, good] }), [logVerifier]), ErrorCode.verification);
    // A good log signature does not save a bad witness signature either.
    const cos = parseNote(vectors.cosignature_v1_ed25519.cosigned_note);
    const badCos = { ...cos.signatures[1]!, signature: Uint8Array.from(cos.signatures[1]!.signature, (b, i) => (i === 70 ? b ^ 0x80 : b)) };
    expectCode(
      () => openNote(formatNote({ text: cos.text, signatures: [cos.signatures[0]!, badCos] }), [logVerifier, witnessVerifier]),
      ErrorCode.verification,
    );
    // Text changed under a good signature.
    expectCode(() => openNote(SIGNED.replace('1000', '1001'), [logVerifier]), ErrorCode.verification);
  });

  test('duplicate signature lines verify once and are collapsed', () => {
    const line = cp.log_signature_line;
    const o = openNote(SIGNED + line + line, [logVerifier]);
    expect(o.verified).toHaveLength(1);
    expect(parseNote(SIGNED + line).signatures).toHaveLength(2);
  });

  test('grease lines (random names and IDs) anywhere are ignored', () => {
    const rand = prng(99);
    for (let i = 0; i < 30; i++) {
      const lines = [cp.log_signature_line, vectors.cosignature_v1_ed25519.cosignature_line];
      const nGrease = randInt(rand, 1, 6);
      for (let g = 0; g < nGrease; g++) lines.splice(randInt(rand, 0, lines.length + 1), 0, greaseLine(rand));
      const o = openNote(TEXT + '\n' + lines.join(''), [logVerifier, witnessVerifier]);
      expect(o.verified).toHaveLength(2);
      expect(o.unknown).toHaveLength(nGrease);
    }
  });

  test('at least 16 real signatures, several of them ML-DSA-44, are accepted', () => {
    const pairs = [
      logPair,
      witnessPair,
      ...Array.from({ length: 6 }, (_, i) => testPair(`witness${i}.example/ed`, SignatureType.cosignatureV1, 20 + i)),
      ...Array.from({ length: 4 }, (_, i) => testPair(`log-mirror${i}.example`, SignatureType.ed25519, 40 + i)),
      ...Array.from({ length: 5 }, (_, i) => testPair(`witness${i}.example/pq`, SignatureType.mldsa44Subtree, 60 + i)),
    ];
    expect(pairs.length).toBeGreaterThanOrEqual(17);
    const note = signNote(
      TEXT,
      pairs.map((p) => p.signer),
    );
    const rand = prng(16);
    const grease = Array.from({ length: 10 }, () => greaseLine(rand)).join('');
    const bytes = Buffer.from(formatNote(note) + grease, 'utf8');
    expect(bytes.length).toBeGreaterThan(5 * 3000);
    const o = openNote(
      bytes,
      pairs.map((p) => p.verifier),
    );
    expect(o.verified).toHaveLength(pairs.length);
    expect(o.unknown).toHaveLength(10);
    // Every ML-DSA line carries keyID || ts || 2420-byte signature.
    for (const s of o.verified.filter((s) => s.name.endsWith('/pq'))) expect(s.signature).toHaveLength(8 + 2420);
  });

  test(`up to ${MAX_SIGNATURES} signature lines parse; more are refused`, () => {
    const rand = prng(100);
    const lines = Array.from({ length: MAX_SIGNATURES - 1 }, () => greaseLine(rand));
    const ok = SIGNED + lines.join('');
    expect(openNote(ok, [logVerifier]).unknown).toHaveLength(MAX_SIGNATURES - 1);
    expectCode(() => parseNote(ok + greaseLine(rand)), ErrorCode.badInput);
  });

  test('a verifier that says no rejects the note; verifierFor never throws on garbage', () => {
    const no: NoteVerifier = { name: logVerifier.name, keyID: logVerifier.keyID, verify: () => false };
    expectCode(() => openNote(SIGNED, [no]), ErrorCode.verification);
    // A key of the wrong size makes the underlying library throw; the verifier answers false.
    for (const type of [SignatureType.ed25519, SignatureType.cosignatureV1, SignatureType.mldsa44Subtree]) {
      const v = verifierFor({ name: logVerifier.name, keyID: logVerifier.keyID, type, publicKey: new Uint8Array(3) });
      const sig = parseNote(SIGNED).signatures[0]!.signature;
      expect(v.verify(TEXT, sig)).toBe(false);
      expect(v.verify(TEXT, new Uint8Array(8 + 2420))).toBe(false);
      expectCode(() => openNote(SIGNED, [v]), ErrorCode.verification);
    }
  });
});

describe('text containing blank lines', () => {
  test('the text runs to the last blank line', () => {
    const text = 'first paragraph\n\nsecond\n\n\nthird\n';
    const n = signNote(text, [logPair.signer, witnessPair.signer]);
    const s = formatNote(n);
    const back = parseNote(s);
    expect(back.text).toBe(text);
    expect(back.signatures).toHaveLength(2);
    expect(openNote(s, [logVerifier]).verified).toHaveLength(1);
  });

  test('a text of one newline', () => {
    const n = signNote('\n', [logPair.signer]);
    expect(parseNote(formatNote(n)).text).toBe('\n');
    expect(openNote(formatNote(n), [logVerifier]).verified).toHaveLength(1);
  });
});

describe('malformed notes are refused (bad_input)', () => {
  const line = cp.log_signature_line;
  const b64sig = line.slice('\u2014 example.com/log '.length, -1);
  const sigBytes = Buffer.from(b64sig, 'base64');
  const cases: [string, string][] = [
    ['no em dash', `${TEXT}\n- example.com/log ${b64sig}\n`],
    ['en dash instead of em dash', `${TEXT}\n\u2013 example.com/log ${b64sig}\n`],
    ['no space after the dash', `${TEXT}\n\u2014example.com/log ${b64sig}\n`],
    ['two spaces after the dash', `${TEXT}\n\u2014  example.com/log ${b64sig}\n`],
    ['two spaces before the signature', `${TEXT}\n\u2014 example.com/log  ${b64sig}\n`],
    ['trailing space', `${TEXT}\n\u2014 example.com/log ${b64sig} \n`],
    ['tab separator', `${TEXT}\n\u2014 example.com/log\t${b64sig}\n`],
    ['no signature field', `${TEXT}\n\u2014 example.com/log\n`],
    ['empty signature field', `${TEXT}\n\u2014 example.com/log \n`],
    ['empty name', `${TEXT}\n\u2014  ${b64sig}\n`],
    ['name with +', `${TEXT}\n\u2014 example.com+log ${b64sig}\n`],
    ['name with a no-break space', `${TEXT}\n\u2014 example.com\u00a0log ${b64sig}\n`],
    ['name with an ideographic space', `${TEXT}\n\u2014 example.com\u3000log ${b64sig}\n`],
    ['bad base64 characters', `${TEXT}\n\u2014 example.com/log ${b64sig.replace(/[+/]/g, '-')}\n`],
    ['base64 without padding', `${TEXT}\n\u2014 example.com/log ${b64sig.replace(/=+$/, '')}\n`],
    ['base64 with extra padding', `${TEXT}\n\u2014 example.com/log ${b64sig}==\n`],
    ['non-canonical base64 (padding bits set)', `${TEXT}\n\u2014 example.com/log ${b64sig.slice(0, -2)}B=\n`],
    ['signature shorter than a key ID + 1 byte', `${TEXT}\n\u2014 example.com/log ${toB64(sigBytes.subarray(0, 4))}\n`],
    ['missing final newline', SIGNED.slice(0, -1)],
    ['no blank line', `${TEXT}${line}`],
    ['no signatures', `${TEXT}\n`],
    ['blank line after the signatures', `${SIGNED}\n`],
    ['text not ending in newline before the signature', `${TEXT.slice(0, -1)}${line}`],
    ['NUL in text', `example.com/log\u0000\n1000\n${cp.root_b64}\n\n${line}`],
    ['tab in text', `example.com/log\t\n1000\n${cp.root_b64}\n\n${line}`],
    ['CR in text', `example.com/log\r\n1000\n${cp.root_b64}\n\n${line}`],
    ['CRLF line endings', SIGNED.replaceAll('\n', '\r\n')],
    ['DEL in text', `example.com/log\u007f\n1000\n${cp.root_b64}\n\n${line}`],
    ['C1 control in text', `example.com/log\u0085\n1000\n${cp.root_b64}\n\n${line}`],
    ['escape in a signature line', `${TEXT}\n\u2014 example.com/log\u001b ${b64sig}\n`],
    ['empty', ''],
  ];
  test.each(cases)('%s', (_, note) => {
    expect(note).not.toBe(SIGNED);
    expectCode(() => parseNote(note), ErrorCode.badInput);
    expectCode(() => parseNote(Buffer.from(note, 'utf8')), ErrorCode.badInput);
    expectCode(() => openNote(note, [logVerifier]), ErrorCode.badInput);
  });

  // A JS string holding an unpaired surrogate has no UTF-8 encoding: as a string input it is
  // not a valid UTF-8 note (its bytes would be re-encoded as U+FFFD, so a signature over the
  // bytes would "verify" a different text).
  test.each([
    ['unpaired high surrogate in text', `example.com/log\ud800\n1000\n${cp.root_b64}\n\n${line}`],
    ['unpaired low surrogate in text', `example.com/\udc00log\n1000\n${cp.root_b64}\n\n${line}`],
    ['high surrogate at the very end of the text', `${TEXT.slice(0, -1)}\ud83d\n\n${line}`],
    ['unpaired surrogate in a signature name', `${TEXT}\n\u2014 grease\udfff ${b64sig}\n${line}`],
  ])('string input: %s', (_, note) => {
    expectCode(() => parseNote(note), ErrorCode.badInput);
    const text = note.slice(0, note.lastIndexOf('\n\n') + 1);
    if (/[\ud800-\udfff]/.test(text)) expectCode(() => signNote(text, [logPair.signer]), ErrorCode.badInput);
  });

  test('paired surrogates (astral characters) are fine', () => {
    const text = 'example.com/\u{1f600}\n1\n' + cp.root_b64 + '\n';
    const s = formatNote(signNote(text, [logPair.signer]));
    expect(openNote(s, [logVerifier]).note.text).toBe(text);
    expect(openNote(Buffer.from(s), [logVerifier]).note.text).toBe(text);
  });

  test('a signature line above a blank line is text, not a signature', () => {
    const note = `${SIGNED}\n${vectors.cosignature_v1_ed25519.cosignature_line}`;
    expect(parseNote(note).text).toBe(SIGNED);
    expectCode(() => openNote(note, [logVerifier]), ErrorCode.verification);
  });

  const badUtf8: [string, number[]][] = [
    ['0xff byte', [0xff]],
    ['lone continuation byte', [0x80]],
    ['overlong "/" (c0 af)', [0xc0, 0xaf]],
    ['overlong NUL (c0 80)', [0xc0, 0x80]],
    ['UTF-8 encoded surrogate (ed a0 80)', [0xed, 0xa0, 0x80]],
    ['truncated em dash (e2 80)', [0xe2, 0x80]],
    ['beyond U+10FFFF (f4 90 80 80)', [0xf4, 0x90, 0x80, 0x80]],
  ];
  test.each(badUtf8)('invalid UTF-8 in the text: %s', (_, bytes) => {
    const note = Buffer.concat([Buffer.from('example.com/log'), Uint8Array.from(bytes), Buffer.from(SIGNED.slice('example.com/log'.length))]);
    expectCode(() => parseNote(note), ErrorCode.badInput);
    expectCode(() => openNote(note, [logVerifier]), ErrorCode.badInput);
    expectCode(() => decodeNoteBytes(note), ErrorCode.badInput);
  });

  test.each(badUtf8)('invalid UTF-8 in a signature name: %s', (_, bytes) => {
    const note = Buffer.concat([Buffer.from(`${TEXT}\n\u2014 grease`), Uint8Array.from(bytes), Buffer.from(` ${b64sig}\n`)]);
    expectCode(() => parseNote(Buffer.concat([Buffer.from(SIGNED), note.subarray(TEXT.length + 1)])), ErrorCode.badInput);
  });

  test('valid non-ASCII text and names are fine', () => {
    const text = 'journal.example/日本語\n5\n' + cp.root_b64 + '\n';
    const k = testPair('名前.example/log', SignatureType.ed25519, 77);
    const s = formatNote(signNote(text, [k.signer]));
    const o = openNote(Buffer.from(s, 'utf8'), [k.verifier]);
    expect(o.note.text).toBe(text);
    expect(o.verified[0]!.name).toBe('名前.example/log');
  });
});

describe('formatting and signing', () => {
  test('formatNote and signNote refuse bad text', () => {
    expect(() => formatNote({ text: 'no newline', signatures: parseNote(SIGNED).signatures })).toThrow();
    expect(() => formatNote({ text: TEXT, signatures: [] })).toThrow();
    expectCode(() => signNote('no newline', [logPair.signer]), ErrorCode.badInput);
    expectCode(() => signNote('tab\there\n', [logPair.signer]), ErrorCode.badInput);
  });

  test('signature lines round trip', () => {
    const rand = prng(5);
    for (let i = 0; i < 50; i++) {
      const sig: NoteSignature = { name: `n${i}.example`, keyID: randInt(rand, 0, 2 ** 32), signature: randBytes(rand, randInt(rand, 1, 3000)) };
      const back = parseNote(`${TEXT}\n${formatSignatureLine(sig)}`).signatures[0]!;
      expect(back.name).toBe(sig.name);
      expect(back.keyID).toBe(sig.keyID);
      expect(toHex(back.signature)).toBe(toHex(sig.signature));
    }
  });
});

describe('helpers', () => {
  test('decodeBase64Strict accepts only canonical padded standard base64', () => {
    expect(toHex(decodeBase64Strict('AAEC')!)).toBe('000102');
    expect(toHex(decodeBase64Strict('AAE=')!)).toBe('0001');
    expect(toHex(decodeBase64Strict('AA==')!)).toBe('00');
    expect(decodeBase64Strict('')).toHaveLength(0);
    for (const s of ['AAE', 'AA', 'AA=', 'AA===', 'AAF=', 'AB==', 'AA-_', 'AA_=', ' AAEC', 'AAEC ', 'AA\nEC', 'A===', '====', 'AAEC=', '=AAE']) {
      expect(decodeBase64Strict(s), s).toBeNull();
    }
    const rand = prng(8);
    for (let i = 0; i < 100; i++) {
      const b = randBytes(rand, randInt(rand, 0, 70));
      expect(toHex(decodeBase64Strict(encodeBase64(b))!)).toBe(toHex(b));
    }
    expect(encodeBase64(Buffer.from('abcdef').subarray(2, 5))).toBe(toB64(Buffer.from('cde')));
  });

  test('checkKeyName', () => {
    for (const ok of ['example.com/log', 'a', 'oid/1.3.6.1.4.1', '名前', 'x—y']) expect(checkKeyName(ok), ok).toBeNull();
    for (const bad of ['', 'a+b', 'a b', 'a\tb', 'a\nb', 'a\u00a0b', 'a\u0085b', 'a\u2003b', 'a\u2028b', 'a\u3000b', '+']) {
      expect(checkKeyName(bad), JSON.stringify(bad)).not.toBeNull();
    }
  });
});
