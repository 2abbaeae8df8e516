/**
 * RFC 8785 JSON Canonicalization Scheme (JCS). Pure: no I/O.
 *
 * - Literals: null, true, false.
 * - Numbers (RFC 8785 3.2.2.3): finite IEEE 754 doubles, serialised exactly as ECMAScript's
 *   Number.prototype.toString does (shortest round-trip digits, "1e+21" style exponents,
 *   -0 as "0"). NaN and the infinities have no JSON form: they are errors.
 * - Strings (3.2.2.2): the ECMAScript JSON.stringify escaping: '"' and '\' escaped, the
 *   controls U+0000..U+001F as \b \t \n \f \r or \u00xx (lowercase hex), everything else
 *   as is (UTF-8 on the wire). Lone surrogates are not Unicode text: errors.
 * - Objects (3.2.3): members sorted by their names compared as arrays of UTF-16 code units,
 *   no whitespace anywhere.
 *
 * Input is JSON data: anything else (undefined, functions, bigint, symbols, cycles) throws.
 */

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export class JcsError extends Error {
  override readonly name = 'JcsError';
}

/** Orders two strings by UTF-16 code units (RFC 8785 3.2.3), not by code points or locale. */
export function compareUtf16(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a.charCodeAt(i) - b.charCodeAt(i);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

const SHORT_ESCAPES: Record<number, string> = { 8: '\\b', 9: '\\t', 10: '\\n', 12: '\\f', 13: '\\r', 34: '\\"', 92: '\\\\' };

/** RFC 8785 3.2.2.2 string serialisation. */
export function serializeString(s: string): string {
  let out = '"';
  let from = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdfff) {
      const next = s.charCodeAt(i + 1);
      if (c >= 0xdc00 || !(next >= 0xdc00 && next <= 0xdfff)) {
        throw new JcsError(`lone surrogate U+${c.toString(16)} at offset ${i}: not Unicode text`);
      }
      i++;
      continue;
    }
    if (c >= 0x20 && c !== 0x22 && c !== 0x5c) continue;
    out += s.slice(from, i) + (SHORT_ESCAPES[c] ?? `\\u${c.toString(16).padStart(4, '0')}`);
    from = i + 1;
  }
  return out + s.slice(from) + '"';
}

/** RFC 8785 3.2.2.3 number serialisation: ECMAScript Number.prototype.toString. */
export function serializeNumber(n: number): string {
  if (!Number.isFinite(n)) throw new JcsError(`${n} is not a JSON number`);
  // String(-0) is "0", as the RFC requires.
  return String(n);
}

/** The RFC 8785 canonical form of a JSON value. */
export function canonicalize(value: unknown): string {
  const stack = new Set<object>();
  const walk = (v: unknown, where: string): string => {
    if (v === null) return 'null';
    switch (typeof v) {
      case 'boolean':
        return v ? 'true' : 'false';
      case 'number':
        return serializeNumber(v);
      case 'string':
        return serializeString(v);
      case 'object':
        break;
      default:
        throw new JcsError(`${where}: ${typeof v} is not JSON data`);
    }
    const o = v as object;
    if (stack.has(o)) throw new JcsError(`${where}: cycle`);
    stack.add(o);
    let out: string;
    if (Array.isArray(o)) {
      out = '[' + o.map((e, i) => walk(e, `${where}[${i}]`)).join(',') + ']';
    } else {
      const proto = Object.getPrototypeOf(o);
      if (proto !== Object.prototype && proto !== null) throw new JcsError(`${where}: ${proto?.constructor?.name ?? 'object'} is not JSON data`);
      const keys = Object.keys(o).sort(compareUtf16);
      out = '{' + keys.map((k) => `${serializeString(k)}:${walk((o as Record<string, unknown>)[k], `${where}.${k}`)}`).join(',') + '}';
    }
    stack.delete(o);
    return out;
  };
  return walk(value, '$');
}

/** The canonical form as UTF-8 bytes: what gets hashed or signed. */
export function canonicalBytes(value: unknown): Uint8Array {
  return Buffer.from(canonicalize(value), 'utf8');
}
