/**
 * RFC 8785 canonicalisation: the RFC's own examples (3.2.2, 3.2.3 and the number table of
 * Appendix B), UTF-16 key order, escaping, and refusals.
 */
import { describe, expect, it } from 'vitest';
import { canonicalize, compareUtf16, serializeNumber, serializeString } from '../../src/client/jcs.js';

/** A double from the 16 hex digits of its IEEE 754 bits, as Appendix B lists them. */
function fromBits(hex: string): number {
  const b = Buffer.from(hex, 'hex');
  return b.readDoubleBE(0);
}

describe('RFC 8785', () => {
  it('3.2.2: the example object', () => {
    const input = JSON.parse(
      '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],' +
        ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/", "literals": [null, true, false]}',
    );
    expect(canonicalize(input)).toBe(
      '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
  });

  it('3.2.3: members sorted by UTF-16 code units', () => {
    const input = {
      '\u20ac': 'Euro Sign',
      '\r': 'Carriage Return',
      '\ufb33': 'Hebrew Letter Dalet With Dagesh',
      '1': 'One',
      '\ud83d\ude00': 'Emoji: Grinning Face',
      '\u0080': 'Control',
      '\u00f6': 'Latin Small Letter O With Diaeresis',
    };
    expect(canonicalize(input)).toBe(
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis",' +
        '"\u20ac":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
    );
    // U+1F600 (surrogates D83D DE00) sorts before U+FB33 by code units, after it by code points.
    expect(compareUtf16('\ud83d\ude00', '\ufb33')).toBeLessThan(0);
  });

  it('Appendix B: numbers', () => {
    const table: [string, string][] = [
      ['0000000000000000', '0'],
      ['8000000000000000', '0'],
      ['0000000000000001', '5e-324'],
      ['8000000000000001', '-5e-324'],
      ['7fefffffffffffff', '1.7976931348623157e+308'],
      ['ffefffffffffffff', '-1.7976931348623157e+308'],
      ['4340000000000000', '9007199254740992'],
      ['c340000000000000', '-9007199254740992'],
      ['4430000000000000', '295147905179352830000'],
      ['44b52d02c7e14af5', '9.999999999999997e+22'],
      ['44b52d02c7e14af6', '1e+23'],
      ['44b52d02c7e14af7', '1.0000000000000001e+23'],
      ['444b1ae4d6e2ef4e', '999999999999999700000'],
      ['444b1ae4d6e2ef4f', '999999999999999900000'],
      ['444b1ae4d6e2ef50', '1e+21'],
      ['3eb0c6f7a0b5ed8c', '9.999999999999997e-7'],
      ['3eb0c6f7a0b5ed8d', '0.000001'],
      ['41b3de4355555553', '333333333.3333332'],
      ['41b3de4355555554', '333333333.33333325'],
      ['41b3de4355555555', '333333333.3333333'],
      ['41b3de4355555556', '333333333.3333334'],
      ['41b3de4355555557', '333333333.33333343'],
      ['becbf647612f3696', '-0.0000033333333333333333'],
      ['43143ff3c1cb0959', '1424953923781206.2'],
    ];
    for (const [bits, want] of table) expect(serializeNumber(fromBits(bits)), bits).toBe(want);
    for (const bits of ['7fffffffffffffff', '7ff0000000000000', 'fff0000000000000']) {
      expect(() => serializeNumber(fromBits(bits)), bits).toThrow(/not a JSON number/);
    }
  });
});

describe('canonicalize', () => {
  it('escapes minimally, like JSON.stringify', () => {
    let all = '';
    for (let c = 0; c < 0x80; c++) all += String.fromCharCode(c);
    all += '\u2028\u2029\u00e9\ud83d\ude00';
    expect(serializeString(all)).toBe(JSON.stringify(all));
    expect(serializeString('\u001f\u007f')).toBe('"\\u001f\u007f"');
  });

  it('nests, sorts at every level, and drops all whitespace', () => {
    expect(canonicalize({ b: [1, { z: null, a: 'x' }], a: { d: true, c: -0 } })).toBe('{"a":{"c":0,"d":true},"b":[1,{"a":"x","z":null}]}');
    expect(canonicalize([])).toBe('[]');
    expect(canonicalize({})).toBe('{}');
    expect(canonicalize('')).toBe('""');
  });

  it('is stable under a JSON round trip of its own output', () => {
    const v = { n: [0.1, 1e21, 123456789012345680000, 5e-7, -1.5], s: 'a\u0000b', o: { '\u00e9': 1, e: 2, E: 3 } };
    const c = canonicalize(v);
    expect(canonicalize(JSON.parse(c))).toBe(c);
    expect(c).toBe('{"n":[0.1,1e+21,123456789012345680000,5e-7,-1.5],"o":{"E":3,"e":2,"\u00e9":1},"s":"a\\u0000b"}');
  });

  it('refuses what is not JSON data', () => {
    expect(() => canonicalize({ a: undefined })).toThrow(/undefined is not JSON data/);
    expect(() => canonicalize(1n)).toThrow(/bigint/);
    expect(() => canonicalize(NaN)).toThrow(/not a JSON number/);
    expect(() => canonicalize('\ud800x')).toThrow(/lone surrogate/);
    expect(() => canonicalize(new Date(0))).toThrow(/Date is not JSON data/);
    const cyc: Record<string, unknown> = {};
    cyc.self = cyc;
    expect(() => canonicalize(cyc)).toThrow(/cycle/);
  });
});
