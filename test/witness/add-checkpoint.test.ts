/**
 * c2sp.org/tlog-witness add-checkpoint through the hono app: every status code, the order of
 * the checks, the cosignatures in a 200, what is stored, and the monitoring endpoint.
 */
import { describe, expect, test } from 'vitest';
import { EMPTY_ROOT, sha256 } from '../../src/merkle/hash.js';
import { SignatureType } from '../../src/note/keys.js';
import { formatNote, formatSignatureLine, openNote, parseNote, signNote } from '../../src/note/note.js';
import { keyPair, subtreeV1Message } from '../../src/note/signers.js';
import { ml_dsa44 } from '@noble/post-quantum/ml-dsa.js';
import { originHash } from '../../witness/config.js';
import { EvidenceReason, MemoryEvidence } from '../../witness/evidence.js';
import { formatAddCheckpointRequest } from '../../witness/request.js';
import { SIZE_CONTENT_TYPE } from '../../witness/witness.js';
import { vectors } from '../vectors.js';
import { addBody, checkpointText, fixedClock, logPair, memoryWitness, ORIGIN, proofBetween, rootAt, signedCheckpoint, testConfig, TS } from './helpers.js';

const otherLog = keyPair({ name: 'other.example/log', type: SignatureType.ed25519, seed: new Uint8Array(32).fill(7) });
const stranger = keyPair({ name: ORIGIN, type: SignatureType.ed25519, seed: new Uint8Array(32).fill(9) });

async function at(size: number) {
  const w = memoryWitness();
  if (size > 0) expect((await w.post(addBody(0, size))).status).toBe(200);
  return w;
}

describe('200: cosignatures', () => {
  test('a first checkpoint (old 0) gets one 0x04 and one 0x06 line over the re-encoded checkpoint', async () => {
    const { post, witness } = await at(0);
    const r = await post(addBody(0, 10));
    expect(r.status).toBe(200);
    const body = await r.text();
    const lines = body.split('\n').slice(0, -1);
    expect(lines).toHaveLength(2);
    const note = parseNote(checkpointText(10) + '\n' + body);
    const [ed, ml] = note.signatures;
    expect(ed!.keyID).toBe(witness.keys.verifiers.cosignatureV1.keyID);
    expect(ml!.keyID).toBe(witness.keys.verifiers.mldsa44.keyID);
    expect(ed!.name).toBe(vectors.witness_key.name);
    expect(ml!.name).toBe(vectors.witness_key.name);
    // Both carry the clock's timestamp (non-zero) and verify with our verifiers.
    for (const s of [ed!, ml!]) expect(Buffer.from(s.signature).readBigUInt64BE(0)).toBe(BigInt(TS));
    expect(ed!.signature.length).toBe(8 + 64);
    expect(ml!.signature.length).toBe(8 + 2420);
    const o = openNote(note, [witness.keys.verifiers.cosignatureV1, witness.keys.verifiers.mldsa44]);
    expect(o.verified).toHaveLength(2);
    // The 0x06 line is a subtree/v1 signature with start 0, end = size, checked by hand here.
    const msg = subtreeV1Message({ cosignerName: ml!.name, timestamp: TS, origin: ORIGIN, start: 0, end: 10, hash: rootAt(10) });
    expect(ml_dsa44.verify(ml!.signature.subarray(8), msg, witness.keys.verifiers.mldsa44.publicKey)).toBe(true);
    expect(r.headers.get('content-type')).toMatch(/^text\/plain/);
  });

  test('a size-0 checkpoint with the empty root is cosigned, and the log advances from it', async () => {
    const { post } = await at(0);
    expect((await post(addBody(0, 0))).status).toBe(200);
    expect((await post(addBody(0, 5))).status).toBe(200);
    expect((await post(addBody(5, 300))).status).toBe(200);
    expect((await post(addBody(300, 1000))).status).toBe(200);
  });

  test('the same tree again (old == size, same root, no proof) is re-cosigned', async () => {
    const { post } = await at(7);
    expect((await post(formatAddCheckpointRequest(7, [], signedCheckpoint(7)))).status).toBe(200);
  });

  test('extension lines: covered by 0x04 only, so the reply has no 0x06 line', async () => {
    const { post, witness } = await at(0);
    const r = await post(addBody(0, 3, { extensions: ['ext line one'] }));
    expect(r.status).toBe(200);
    const note = parseNote(checkpointText(3, { extensions: ['ext line one'] }) + '\n' + (await r.text()));
    expect(note.signatures.map((s) => s.keyID)).toEqual([witness.keys.verifiers.cosignatureV1.keyID]);
    expect(openNote(note, [witness.keys.verifiers.cosignatureV1]).verified).toHaveLength(1);
  });

  test('mldsa44 off: the Ed25519 line only', async () => {
    const w = memoryWitness({ config: testConfig({ mldsa44: false }) });
    const r = await w.post(addBody(0, 3));
    expect((await r.text()).split('\n').slice(0, -1)).toHaveLength(1);
  });

  test('the clock is read per request', async () => {
    let now = 1_800_000_000;
    const w = memoryWitness({ clock: () => now });
    await w.post(addBody(0, 1));
    now += 5;
    const body = await (await w.post(addBody(1, 2))).text();
    expect(Buffer.from(parseNote(checkpointText(2) + '\n' + body).signatures[0]!.signature).readBigUInt64BE(0)).toBe(BigInt(now));
  });

  test('unknown signature lines are ignored and never stored; the log key may be one of several', async () => {
    const cfg = testConfig({ logs: [{ origin: ORIGIN, keys: [stranger.vkey, vectors.log_key.vkey] }] });
    const grease = keyPair({ name: 'grease.example', type: SignatureType.ed25519, seed: new Uint8Array(32).fill(3) });
    const w = memoryWitness({ config: cfg });
    const note = formatNote(signNote(checkpointText(4), [grease.signer, logPair.signer]));
    // A garbage line with an unknown key ID under the log's own name is unknown too.
    const forged = note + formatSignatureLine({ name: ORIGIN, keyID: 0x01020304, signature: new Uint8Array(64).fill(1) });
    expect((await w.post(formatAddCheckpointRequest(0, [], forged))).status).toBe(200);
    const stored = (await w.app.request(`/${originHash(ORIGIN)}/checkpoint`)).text();
    const sigs = parseNote(await stored).signatures;
    expect(sigs.map((s) => s.name)).toEqual([ORIGIN, vectors.witness_key.name, vectors.witness_key.name]);
    expect(sigs[0]!.keyID).toBe(logPair.verifier.keyID);
  });
});

describe('404, 403', () => {
  test('404: unknown origin (even when well signed)', async () => {
    const { post } = await at(0);
    const r = await post(addBody(0, 3, { origin: 'other.example/log', signers: [otherLog.signer] }));
    expect(r.status).toBe(404);
  });

  test('404 comes before 403: an unknown origin with no trusted signature', async () => {
    const { post } = await at(0);
    expect((await post(addBody(0, 3, { origin: 'nobody.example', signers: [stranger.signer] }))).status).toBe(404);
  });

  test('403: no signature from a trusted key', async () => {
    const { post } = await at(0);
    expect((await post(addBody(0, 3, { signers: [stranger.signer] }))).status).toBe(403);
    // Same name, other key: a different key ID, so it is unknown and there is no trusted sig.
    expect((await post(addBody(0, 3, { signers: [otherLog.signer] }))).status).toBe(403);
  });

  test('403: a trusted name+ID whose signature fails, even beside a good one', async () => {
    const { post } = await at(0);
    const good = parseNote(signedCheckpoint(3));
    const sig = good.signatures[0]!;
    const bad = { ...sig, signature: Uint8Array.from(sig.signature, (b, i) => (i === 5 ? b ^ 1 : b)) };
    expect((await post(formatAddCheckpointRequest(0, [], formatNote({ text: good.text, signatures: [bad] })))).status).toBe(403);
    expect((await post(formatAddCheckpointRequest(0, [], formatNote({ text: good.text, signatures: [sig, bad] })))).status).toBe(403);
    // A signature over another tree, under the log's name and ID.
    const other = parseNote(signedCheckpoint(4)).signatures[0]!;
    expect((await post(formatAddCheckpointRequest(0, [], formatNote({ text: good.text, signatures: [other] })))).status).toBe(403);
  });
});

describe('400, 413', () => {
  const cp = signedCheckpoint(3);
  const cases: [string, string | Uint8Array][] = [
    ['empty body', ''],
    ['no blank line', `old 0\n${cp.replace('\n\n', '\n')}`],
    ['no old line', `\n${cp}`],
    ['old 01 (non-canonical)', `old 01\n\n${cp}`],
    ['old +1', `old +1\n\n${cp}`],
    ['old -0', `old -0\n\n${cp}`],
    ['old with two spaces', `old  0\n\n${cp}`],
    ['old with a trailing space', `old 0 \n\n${cp}`],
    ['OLD', `OLD 0\n\n${cp}`],
    ['old beyond 2^53', `old 99999999999999999999\n\n${cp}`],
    ['proof line not base64', `old 1\nnot-base64!\n\n${cp}`],
    ['proof line of 31 bytes', `old 1\n${Buffer.alloc(31).toString('base64')}\n\n${cp}`],
    ['proof line non-canonical base64', `old 1\n${Buffer.alloc(32).toString('base64').replace(/A=$/, 'B=')}\n\n${cp}`],
    ['64 proof lines', `old 1\n${`${Buffer.alloc(32).toString('base64')}\n`.repeat(64)}\n${cp}`],
    ['note without signatures', `old 0\n\n${checkpointText(3)}\n`],
    ['checkpoint size 03', `old 0\n\n${cp.replace('\n3\n', '\n03\n')}`],
    ['checkpoint root not 32 bytes', `old 0\n\n${cp.replace(/\n[A-Za-z0-9+/=]{44}\n/, `\n${Buffer.alloc(31).toString('base64')}\n`)}`],
    ['invalid UTF-8', Buffer.concat([Buffer.from(`old 0\n\n`), Buffer.from([0xff, 0xfe]), Buffer.from(cp)])],
    ['control character', `old 0\n\n${cp.replace('example.com/log\n', 'example.com/l\x01og\n')}`],
  ];
  test.each(cases)('400: %s', async (_name, body) => {
    const { post } = await at(0);
    const r = await post(body);
    expect(r.status).toBe(400);
    expect(await r.text()).toMatch(/\n$/);
  });

  test('400 for old > size, checked before the 409 (witness at 5, old 10, size 8)', async () => {
    const { post } = await at(5);
    const r = await post(formatAddCheckpointRequest(10, [], signedCheckpoint(8)));
    expect(r.status).toBe(400);
    // ...and with a proof too.
    expect((await post(formatAddCheckpointRequest(9, proofBetween(5, 8), signedCheckpoint(8)))).status).toBe(400);
  });

  test('413: a body over the limit', async () => {
    const { post } = await at(0);
    const r = await post(`old 0\n\n${'x'.repeat(2 << 20)}`);
    expect(r.status).toBe(413);
  });
});

describe('409', () => {
  test('never cosigned: the stored size is 0', async () => {
    const { post } = await at(0);
    const r = await post(addBody(5, 10));
    expect(r.status).toBe(409);
    expect(r.headers.get('content-type')).toBe(SIZE_CONTENT_TYPE);
    expect(await r.text()).toBe('0\n');
  });

  test('probing with old 0 learns the size; a stale old gets the size too', async () => {
    const { post } = await at(1000);
    const probe = await post(addBody(0, 1500));
    expect(probe.status).toBe(409);
    expect(probe.headers.get('content-type')).toBe(vectors.witness_add_checkpoint_example.example_409_content_type);
    expect(await probe.text()).toBe(vectors.witness_add_checkpoint_example.example_409_body_if_witness_is_at_1000);
    expect(await (await post(addBody(999, 1500))).text()).toBe('1000\n');
    // 409 is decided before the proof is looked at: a garbage proof with a stale old is 409.
    expect((await post(formatAddCheckpointRequest(500, [new Uint8Array(32)], signedCheckpoint(1500)))).status).toBe(409);
  });

  test('an older checkpoint (smaller size) than the cosigned one: 409 with old 0... or 400 with old = stored', async () => {
    const { post } = await at(100);
    expect((await post(addBody(50, 60))).status).toBe(409);
    expect((await post(formatAddCheckpointRequest(100, [], signedCheckpoint(60)))).status).toBe(400);
  });
});

describe('422 and evidence', () => {
  test('size-0 checkpoint whose root is not SHA-256("")', async () => {
    const evidence = new MemoryEvidence();
    const { post } = memoryWitness({ evidence });
    const r = await post(formatAddCheckpointRequest(0, [], signedCheckpoint(0, { root: sha256(Buffer.from('x')) })));
    expect(r.status).toBe(422);
    expect(evidence.records.map((e) => e.reason)).toEqual([EvidenceReason.emptyTreeWrongRoot]);
    // ...and the right one is fine.
    expect((await post(formatAddCheckpointRequest(0, [], signedCheckpoint(0, { root: EMPTY_ROOT })))).status).toBe(200);
  });

  test('non-empty proof with old 0', async () => {
    const { post } = await at(0);
    expect((await post(formatAddCheckpointRequest(0, [rootAt(1)], signedCheckpoint(2)))).status).toBe(422);
  });

  test('bad consistency proof: flipped hash, truncated, extra hash, proof for other sizes; kept as evidence', async () => {
    const evidence = new MemoryEvidence();
    const { post, witness } = memoryWitness({ evidence });
    await post(addBody(0, 300));
    const good = proofBetween(300, 1000);
    const flipped = good.map((h, i) => (i === 2 ? Uint8Array.from(h, (b, j) => (j === 0 ? b ^ 1 : b)) : h));
    for (const proof of [flipped, good.slice(0, -1), [...good, good[0]!], proofBetween(256, 1000), []]) {
      const r = await post(formatAddCheckpointRequest(300, proof, signedCheckpoint(1000)));
      expect(r.status).toBe(422);
    }
    expect(evidence.records).toHaveLength(5);
    expect(evidence.records.every((e) => e.reason === EvidenceReason.badConsistencyProof)).toBe(true);
    expect(await witness.treeSize(ORIGIN)).toBe(300);
    // A checkpoint of a forked tree (other leaves) with a proof computed for the real one.
    const forked = signedCheckpoint(1000, { root: sha256(Buffer.from('fork')) });
    expect((await post(formatAddCheckpointRequest(300, good, forked))).status).toBe(422);
    expect((await post(addBody(300, 1000))).status).toBe(200);
  });

  test('old == size with another root: a split view, kept as evidence with verified signatures only', async () => {
    const evidence = new MemoryEvidence();
    const { post } = memoryWitness({ evidence });
    await post(addBody(0, 50));
    const split = signedCheckpoint(50, { root: rootAt(49) }) + formatSignatureLine({ name: 'x.example', keyID: 1, signature: new Uint8Array(10) });
    const r = await post(formatAddCheckpointRequest(50, [], split));
    expect(r.status).toBe(422);
    const [e] = evidence.records;
    expect(e!.reason).toBe(EvidenceReason.sameSizeOtherRoot);
    expect(parseNote(e!.received).signatures.map((s) => s.name)).toEqual([ORIGIN]);
    expect(parseNote(e!.cosigned).text).toBe(checkpointText(50));
  });

  test('old == size, same root, but a proof: 422', async () => {
    const { post } = await at(50);
    expect((await post(formatAddCheckpointRequest(50, [rootAt(50)], signedCheckpoint(50)))).status).toBe(422);
  });
});

describe('GET <hex sha256(origin)>/checkpoint', () => {
  test('404 before the first cosignature, then the latest cosigned checkpoint with both signatures', async () => {
    const { app, post, witness } = memoryWitness({ clock: fixedClock() });
    const url = `/${originHash(ORIGIN)}/checkpoint`;
    expect((await app.request(url)).status).toBe(404);
    await post(addBody(0, 10));
    await post(addBody(10, 20));
    const r = await app.request(url);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    const note = await r.text();
    expect(parseNote(note).text).toBe(checkpointText(20));
    const o = openNote(note, [logPair.verifier, witness.keys.verifiers.cosignatureV1, witness.keys.verifiers.mldsa44]);
    expect(o.verified).toHaveLength(3);
    expect(o.unknown).toHaveLength(0);
  });

  test('404 for an unknown log, a non-hex or uppercase hash', async () => {
    const { app, post } = memoryWitness();
    await post(addBody(0, 10));
    expect((await app.request(`/${originHash('nobody')}/checkpoint`)).status).toBe(404);
    expect((await app.request(`/${originHash(ORIGIN).toUpperCase()}/checkpoint`)).status).toBe(404);
    expect((await app.request(`/example.com%2Flog/checkpoint`)).status).toBe(404);
  });
});
