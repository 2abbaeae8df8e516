/**
 * Canonical decimals: ASCII digits with no sign, no leading zero (but "0" itself), no space, no
 * exponent. It is the form of a checkpoint's tree size (c2sp.org/tlog-checkpoint) and the one
 * every number read at a boundary takes: tile paths, query parameters, counter headers, the
 * names of files we write. One parser, so "01", "+1", " 1", "1e3" and "" are refused alike
 * everywhere; callers keep their own range and their own error. Pure: no I/O.
 */

const CANONICAL_DECIMAL = /^(0|[1-9][0-9]*)$/;

/**
 * Whether `text` is a canonical decimal of at most `maxDigits` digits (any length by default),
 * whatever its value: for names that are only sorted or compared, never used as an exact number.
 */
export function isCanonicalDecimal(text: string, maxDigits = Infinity): boolean {
  return text.length <= maxDigits && CANONICAL_DECIMAL.test(text);
}

/** The value of a canonical decimal that is a safe integer no larger than `max`, or null. */
export function parseCanonicalDecimal(text: string, max: number = Number.MAX_SAFE_INTEGER): number | null {
  if (!CANONICAL_DECIMAL.test(text)) return null;
  const n = Number(text);
  return Number.isSafeInteger(n) && n <= max ? n : null;
}
