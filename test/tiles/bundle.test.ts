import { describe, expect, test } from 'vitest';
import { ErrorCode } from '../../src/errors.js';
import { MAX_ENTRY_SIZE, checkEntrySize, formatEntryBundle, parseEntryBundle } from '../../src/tiles/bundle.js';
import { expectCode } from '../helpers/errors.js';
import { prng, randBytes, randInt } from '../prng.mjs';
import { entry, toHex, toHexes } from '../vectors.js';

describe('entry bundles (c2sp.org/tlog-tiles: (u16 BE length || entry)*)', () => {
  test('encoding is length-prefixed big-endian, byte for byte', () => {
    const b = formatEntryBundle([entry(0), new Uint8Array(300).fill(7)]);
    expect(toHex(b.subarray(0, 9))).toBe('0007' + Buffer.from('entry-0').toString('hex'));
    expect(toHex(b.subarray(9, 11))).toBe('012c');
    expect(b.length).toBe(9 + 302);
  });

  test('round trip of random bundles, 1 to 256 entries, 1 to 65535 bytes', () => {
    const rand = prng(42);
    for (let i = 0; i < 60; i++) {
      const count = i === 0 ? 256 : randInt(rand, 1, 257);
      const entries = Array.from({ length: count }, () => randBytes(rand, randInt(rand, 1, i % 10 === 0 ? 3000 : 40)));
      const bytes = formatEntryBundle(entries);
      expect(toHexes(parseEntryBundle(bytes))).toEqual(toHexes(entries));
      expect(toHexes(parseEntryBundle(bytes, count))).toEqual(toHexes(entries));
    }
  });

  test('the largest entries round trip', () => {
    const big = new Uint8Array(MAX_ENTRY_SIZE).fill(0xab);
    const one = Uint8Array.of(1);
    const bytes = formatEntryBundle([big, one, big]);
    expect(bytes.length).toBe(3 * 2 + 2 * 65535 + 1);
    expect(toHexes(parseEntryBundle(bytes))).toEqual(toHexes([big, one, big]));
  });

  test('0-byte and 65536-byte entries are refused when formatting', () => {
    expect(MAX_ENTRY_SIZE).toBe(65535);
    expectCode(() => formatEntryBundle([entry(1), new Uint8Array(0)]), ErrorCode.badInput);
    expectCode(() => formatEntryBundle([new Uint8Array(65536)]), ErrorCode.tooLarge);
    expectCode(() => checkEntrySize(new Uint8Array(0)), ErrorCode.badInput);
    expectCode(() => checkEntrySize(new Uint8Array(65536)), ErrorCode.tooLarge);
    expect(() => checkEntrySize(new Uint8Array(65535))).not.toThrow();
    expect(() => checkEntrySize(new Uint8Array(1))).not.toThrow();
  });

  test('a zero length prefix is refused when parsing', () => {
    expectCode(() => parseEntryBundle(Uint8Array.of(0, 0)), ErrorCode.badInput);
    expectCode(() => parseEntryBundle(Buffer.concat([formatEntryBundle([entry(1)]), Uint8Array.of(0, 0)])), ErrorCode.badInput);
  });

  test('truncated bundles are refused at every cut', () => {
    const bytes = formatEntryBundle([entry(1), entry(22), new Uint8Array(256).fill(3)]);
    const boundaries = new Set([0, 9, 9 + 10, bytes.length]);
    for (let cut = 1; cut < bytes.length; cut++) {
      if (boundaries.has(cut)) continue;
      expectCode(() => parseEntryBundle(bytes.subarray(0, cut)), ErrorCode.badInput);
    }
    // Cuts at entry boundaries decode, but not to the count the tree implies.
    expect(parseEntryBundle(bytes.subarray(0, 19))).toHaveLength(2);
    expectCode(() => parseEntryBundle(bytes.subarray(0, 19), 3), ErrorCode.badInput);
  });

  test('trailing bytes are refused', () => {
    const bytes = formatEntryBundle([entry(1), entry(2)]);
    expectCode(() => parseEntryBundle(Buffer.concat([bytes, Uint8Array.of(0)])), ErrorCode.badInput);
    expectCode(() => parseEntryBundle(Buffer.concat([bytes, Uint8Array.of(0, 5, 1)])), ErrorCode.badInput);
    // A well-formed extra entry is "trailing" relative to the expected count.
    expectCode(() => parseEntryBundle(Buffer.concat([bytes, formatEntryBundle([entry(3)])]), 2), ErrorCode.badInput);
  });

  test('more than 256 entries are refused', () => {
    const entries = Array.from({ length: 257 }, (_, i) => entry(i));
    const bytes = Buffer.concat(entries.map((e) => formatEntryBundle([e])));
    expectCode(() => parseEntryBundle(bytes), ErrorCode.badInput);
    expect(parseEntryBundle(bytes.subarray(0, bytes.length - 11))).toHaveLength(256);
  });

  test('a wrong expected count is refused', () => {
    const bytes = formatEntryBundle([entry(1), entry(2)]);
    expectCode(() => parseEntryBundle(bytes, 1), ErrorCode.badInput);
    expectCode(() => parseEntryBundle(bytes, 3), ErrorCode.badInput);
    expect(parseEntryBundle(bytes, 2)).toHaveLength(2);
  });
});
