/**
 * The append answer written straight to bytes is exactly JSON.stringify of the answer object, for
 * any proof length, checkpoint text and numbers; its base64 is RFC 4648's (Buffer's).
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { appendAnswer, writeBase64 } from '../../src/http/answer.js';
import type { AppendResult } from '../../src/log/log.js';
import { toB64 } from '../vectors.js';

/** The answer as the handler built it before: an object through JSON.stringify. */
function reference(r: AppendResult): string {
  return JSON.stringify({
    index: r.index,
    leafHash: toB64(r.leafHash),
    duplicate: r.duplicate,
    treeSize: r.treeSize,
    checkpoint: r.checkpoint,
    inclusionProof: r.proof.map(toB64),
  });
}

const note = (size: number, extra = '') =>
  `example.com/log\n${size}\n${toB64(randomBytes(32))}\n${extra}\n— example.com/log ${toB64(randomBytes(68))}\n— example.com/log ${toB64(randomBytes(2424))}\n`;

describe('writeBase64', () => {
  it('matches Buffer base64 for every length 0..99, at any offset', () => {
    for (let n = 0; n < 100; n++) {
      const b = randomBytes(n);
      const out = Buffer.alloc(3 + Math.ceil(n / 3) * 4, 0x2e);
      const end = writeBase64(out, 3, b);
      expect(end).toBe(out.length);
      expect(out.subarray(3).toString('latin1')).toBe(b.toString('base64'));
      expect(out.subarray(0, 3).toString('latin1')).toBe('...');
    }
  });

  it('works on a subarray view', () => {
    const whole = randomBytes(100);
    const view = whole.subarray(7, 39);
    const out = Buffer.alloc(44);
    writeBase64(out, 0, view);
    expect(out.toString('latin1')).toBe(Buffer.from(view).toString('base64'));
  });
});

describe('appendAnswer', () => {
  const cases: [string, AppendResult][] = [
    ['first entry, no proof', { index: 0, leafHash: randomBytes(32), duplicate: false, treeSize: 1, checkpoint: note(1), proof: [] }],
    ['one proof hash', { index: 1, leafHash: randomBytes(32), duplicate: false, treeSize: 2, checkpoint: note(2), proof: [randomBytes(32)] }],
    [
      '17 hashes, duplicate',
      {
        index: 99_999,
        leafHash: randomBytes(32),
        duplicate: true,
        treeSize: 123_456,
        checkpoint: note(123_456),
        proof: Array.from({ length: 17 }, () => randomBytes(32)),
      },
    ],
    [
      '63 hashes at the largest safe sizes',
      {
        index: 2 ** 53 - 2,
        leafHash: randomBytes(32),
        duplicate: false,
        treeSize: 2 ** 53 - 1,
        checkpoint: note(2 ** 53 - 1),
        proof: Array.from({ length: 63 }, () => randomBytes(32)),
      },
    ],
    // Extension lines are opaque: whatever text the note holds must come out as JSON would write it.
    [
      'a note with quotes, backslashes, controls and non-ASCII',
      {
        index: 5,
        leafHash: randomBytes(32),
        duplicate: false,
        treeSize: 6,
        checkpoint: note(6, 'ext "q" \\ \t\u0001\u001f \u2028 é 😀'),
        proof: [randomBytes(32), randomBytes(32)],
      },
    ],
    [
      'hashes of other lengths',
      { index: 3, leafHash: randomBytes(31), duplicate: false, treeSize: 4, checkpoint: note(4), proof: [randomBytes(1), randomBytes(2), randomBytes(33)] },
    ],
  ];
  for (const [name, r] of cases) {
    it(name, () => {
      const out = appendAnswer(r);
      expect(Buffer.from(out).toString('utf8')).toBe(reference(r));
      expect(Buffer.byteLength(reference(r))).toBe(out.length);
    });
  }

  it('the same checkpoint in many answers, alternating between tenants, always gives the right bytes', () => {
    const notes = Array.from({ length: 12 }, (_, i) => note(i + 1));
    for (let round = 0; round < 3; round++) {
      for (const [i, n] of notes.entries()) {
        // A copy of the string, not the cached instance: the cache is by content.
        const r: AppendResult = {
          index: i,
          leafHash: randomBytes(32),
          duplicate: false,
          treeSize: i + 1,
          checkpoint: (' ' + n).slice(1),
          proof: [randomBytes(32)],
        };
        expect(Buffer.from(appendAnswer(r)).toString('utf8')).toBe(reference(r));
      }
    }
  });

  it('answers cut from shared slabs never overlap: each still holds its bytes after hundreds more', () => {
    const kept: [Uint8Array, string][] = [];
    for (let i = 0; i < 400; i++) {
      const r: AppendResult = {
        index: i,
        leafHash: randomBytes(32),
        duplicate: false,
        treeSize: i + 1,
        checkpoint: note(i + 1),
        proof: Array.from({ length: i % 20 }, () => randomBytes(32)),
      };
      kept.push([appendAnswer(r), reference(r)]);
    }
    for (const [bytes, want] of kept) expect(Buffer.from(bytes).toString('utf8')).toBe(want);
  });
});
