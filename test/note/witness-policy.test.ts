/** Witness policies in the Sigsum / Tessera syntax: parsing, nested k-of-n quorums, and the line of every mistake. */
import { describe, expect, it } from 'vitest';
import { generatePrivateKey, SignatureType } from '../../src/note/keys.js';
import { keyPair } from '../../src/note/signers.js';
import { parsePolicy, policySatisfied } from '../../src/note/witness-policy.js';

const edKey = (name: string) => keyPair(generatePrivateKey(name, SignatureType.cosignatureV1));

describe('witness policies', () => {
  const a = edKey('w.example/a').vkey;
  const b = edKey('w.example/b').vkey;
  const c = edKey('w.example/c').vkey;

  it('parses the Sigsum/Tessera syntax and evaluates nested k-of-n groups', () => {
    const p = parsePolicy(
      `# comment\nwitness A ${a} http://127.0.0.1:1/x/\nwitness B ${b}\nwitness C ${c}\ngroup ab any A B\ngroup all2 2 ab C\nquorum all2\n`,
    );
    expect(p.witnesses.get('A')!.url).toBe('http://127.0.0.1:1/x');
    expect(policySatisfied(p, new Set(['A', 'C']))).toBe(true);
    expect(policySatisfied(p, new Set(['B', 'C']))).toBe(true);
    expect(policySatisfied(p, new Set(['A', 'B']))).toBe(false);
    expect(policySatisfied(p, new Set(['C']))).toBe(false);
    expect(policySatisfied(parsePolicy('quorum none\n'), new Set())).toBe(true);
  });

  it('names the line of every mistake', () => {
    const cases: [string, RegExp][] = [
      [`witness A ${a}\nquorum B`, /line 2: quorum B is not defined/],
      [`witness A ${a}\ngroup g 2 A\nquorum g`, /line 2: threshold 2/],
      [`witness A ${a}\ngroup g 0 A\nquorum g`, /line 2: threshold 0 is not 1\.\.1/],
      [`witness A ${a}\ngroup g 01 A\nquorum g`, /line 2: threshold 01 is not 1\.\.1/],
      [`witness A ${a}\ngroup g +1 A\nquorum g`, /line 2: threshold \+1 is not 1\.\.1/],
      [`witness A ${a}\ngroup g any A Z\nquorum g`, /line 2: member Z/],
      [`witness A ${a}\nwitness A ${b}\nquorum A`, /line 2: A is defined twice/],
      [`witness A not-a-key\nquorum A`, /line 1: bad verifier key/],
      [`witness A ${a} ftp://x\nquorum A`, /line 1: .* not an http/],
      [`witness A ${a}`, /no quorum line/],
      [`frobnicate\nquorum none`, /line 1: unknown keyword/],
    ];
    for (const [text, re] of cases) expect(() => parsePolicy(text)).toThrow(re);
  });
});
