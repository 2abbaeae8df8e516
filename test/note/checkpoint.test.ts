import { describe, expect, test } from 'vitest';
import { ErrorCode } from '../../src/errors.js';
import { type Checkpoint, formatCheckpoint, parseCheckpoint } from '../../src/note/checkpoint.js';
import { b64, toB64, vectors } from '../vectors.js';
import { expectCode } from '../helpers/errors.js';

const v = vectors.checkpoint_1000;
const ROOT = v.root_b64;

describe('vectors: checkpoint_1000 body', () => {
  test('parse', () => {
    const c = parseCheckpoint(v.checkpoint_body);
    expect(c.origin).toBe(v.origin);
    expect(c.treeSize).toBe(v.tree_size);
    expect(toB64(c.rootHash)).toBe(v.root_b64);
    expect(c.extensions).toEqual([]);
  });

  test('format is byte-exact', () => {
    expect(formatCheckpoint({ origin: v.origin, treeSize: v.tree_size, rootHash: b64(v.root_b64), extensions: [] })).toBe(v.checkpoint_body);
  });
});

describe('round trips', () => {
  const cases: Checkpoint[] = [
    { origin: 'example.com/log', treeSize: 0, rootHash: b64(vectors.empty_tree_root.root_b64), extensions: [] },
    { origin: 'o', treeSize: 2 ** 53 - 1, rootHash: new Uint8Array(32).fill(255), extensions: [] },
    { origin: 'example.com/log', treeSize: 70000, rootHash: b64(ROOT), extensions: ['ext one', '— not a signature', 'x'] },
    { origin: 'origin with spaces and + signs, which clients must not rely on', treeSize: 1, rootHash: b64(ROOT), extensions: [] },
  ];
  test.each(cases)('$origin $treeSize', (c) => {
    const text = formatCheckpoint(c);
    const back = parseCheckpoint(text);
    expect(back.origin).toBe(c.origin);
    expect(back.treeSize).toBe(c.treeSize);
    expect(toB64(back.rootHash)).toBe(toB64(c.rootHash));
    expect(back.extensions).toEqual(c.extensions);
    expect(formatCheckpoint(back)).toBe(text);
  });
});

describe('parse errors (c2sp.org/tlog-checkpoint)', () => {
  const cases: [string, string][] = [
    ['leading zero in size', `o\n01000\n${ROOT}\n`],
    ['size 00', `o\n00\n${ROOT}\n`],
    ['signed size', `o\n+1000\n${ROOT}\n`],
    ['negative size', `o\n-1\n${ROOT}\n`],
    ['exponent size', `o\n1e3\n${ROOT}\n`],
    ['hex size', `o\n0x10\n${ROOT}\n`],
    ['size with a space', `o\n 1000\n${ROOT}\n`],
    ['size with a trailing space', `o\n1000 \n${ROOT}\n`],
    ['empty size', `o\n\n${ROOT}\n`],
    ['size 2^53 + 1', `o\n9007199254740993\n${ROOT}\n`],
    ['size 2^64', `o\n18446744073709551616\n${ROOT}\n`],
    ['root of 31 bytes', `o\n1\n${toB64(new Uint8Array(31))}\n`],
    ['root of 33 bytes', `o\n1\n${toB64(new Uint8Array(33))}\n`],
    ['root not base64', `o\n1\n${ROOT.replace('+', '-')}\n`],
    ['root without padding', `o\n1\n${ROOT.replace('=', '')}\n`],
    ['root with non-canonical padding bits', `o\n1\n${ROOT.slice(0, -2)}1=\n`],
    ['empty root', `o\n1\n\n`],
    ['empty origin', `\n1\n${ROOT}\n`],
    ['empty extension line', `o\n1\n${ROOT}\n\n`],
    ['empty extension line between', `o\n1\n${ROOT}\na\n\nb\n`],
    ['missing final newline', `o\n1\n${ROOT}`],
    ['two lines', `o\n1\n`],
    ['one line', `o\n`],
    ['empty', ``],
  ];
  test.each(cases)('%s', (_, text) => {
    expectCode(() => parseCheckpoint(text), ErrorCode.badInput);
  });

  test('the largest safe size and 0 are accepted', () => {
    expect(parseCheckpoint(`o\n9007199254740991\n${ROOT}\n`).treeSize).toBe(2 ** 53 - 1);
    expect(parseCheckpoint(`o\n0\n${ROOT}\n`).treeSize).toBe(0);
  });
});

describe('format refuses what it could not parse back', () => {
  const ok: Checkpoint = { origin: 'o', treeSize: 1, rootHash: b64(ROOT), extensions: [] };
  test.each([
    ['empty origin', { ...ok, origin: '' }],
    ['origin with a newline', { ...ok, origin: 'a\nb' }],
    ['negative size', { ...ok, treeSize: -1 }],
    ['fractional size', { ...ok, treeSize: 1.5 }],
    ['unsafe size', { ...ok, treeSize: 2 ** 53 }],
    ['short root', { ...ok, rootHash: new Uint8Array(31) }],
    ['empty extension', { ...ok, extensions: [''] }],
    ['extension with a newline', { ...ok, extensions: ['a\nb'] }],
  ] as [string, Checkpoint][])('%s', (_, c) => {
    expect(() => formatCheckpoint(c)).toThrow();
  });
});
