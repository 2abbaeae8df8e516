/** The one canonical-decimal parser every boundary uses: what it accepts, at its exact edges. */
import { describe, expect, it } from 'vitest';
import { isCanonicalDecimal, parseCanonicalDecimal } from '../src/decimal.js';

/** Not canonical decimals, whatever the range: signs, leading zeros, spaces, exponents, other digits. */
const MALFORMED = ['', '00', '01', '007', '-0', '-1', '+1', ' 1', '1 ', '1\n', '1.0', '1e3', '0x1', '1_000', 'Infinity', 'NaN', '١٢', '１'];

describe('parseCanonicalDecimal', () => {
  it('accepts 0 and every safe integer up to 2^53 - 1, and nothing above', () => {
    expect(parseCanonicalDecimal('0')).toBe(0);
    expect(parseCanonicalDecimal('1')).toBe(1);
    expect(parseCanonicalDecimal('1000')).toBe(1000);
    expect(parseCanonicalDecimal('9007199254740991')).toBe(Number.MAX_SAFE_INTEGER);
    expect(parseCanonicalDecimal('9007199254740992')).toBeNull();
    expect(parseCanonicalDecimal('99999999999999999999')).toBeNull();
  });

  it('refuses what is not canonical', () => {
    for (const s of MALFORMED) expect(parseCanonicalDecimal(s), JSON.stringify(s)).toBeNull();
  });

  it("takes the caller's bound, inclusive", () => {
    expect(parseCanonicalDecimal('63', 63)).toBe(63);
    expect(parseCanonicalDecimal('64', 63)).toBeNull();
    expect(parseCanonicalDecimal('0', 0)).toBe(0);
    expect(parseCanonicalDecimal('1', 0)).toBeNull();
    expect(parseCanonicalDecimal('999999999999999', 999_999_999_999_999)).toBe(999_999_999_999_999);
    expect(parseCanonicalDecimal('1000000000000000', 999_999_999_999_999)).toBeNull();
    // A bound above 2^53 - 1 does not let an inexact number through.
    expect(parseCanonicalDecimal('9007199254740992', Infinity)).toBeNull();
    expect(parseCanonicalDecimal('01', 63)).toBeNull();
  });
});

describe('isCanonicalDecimal', () => {
  it('accepts any length by default, whatever the value', () => {
    expect(isCanonicalDecimal('0')).toBe(true);
    expect(isCanonicalDecimal('9007199254740992')).toBe(true);
    expect(isCanonicalDecimal('1'.repeat(40))).toBe(true);
    for (const s of MALFORMED) expect(isCanonicalDecimal(s), JSON.stringify(s)).toBe(false);
  });

  it('takes a bound on the number of digits, inclusive', () => {
    expect(isCanonicalDecimal('9999999999999999', 16)).toBe(true);
    expect(isCanonicalDecimal('10000000000000000', 16)).toBe(false);
    expect(isCanonicalDecimal('0', 1)).toBe(true);
    expect(isCanonicalDecimal('10', 1)).toBe(false);
    expect(isCanonicalDecimal('00', 2)).toBe(false);
  });
});
