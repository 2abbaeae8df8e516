/**
 * RFC 3161 timestamps, offline, on fixtures made by two real Sigstore timestamp authorities and
 * openssl (fixtures/tsa/make.sh): which TSA chains are trusted, which timestamps over an
 * anchoring signature count, and how anchoring configurations name a TSA. The flows against the
 * running servers are in rekor-v2.test.ts.
 */
import { createPublicKey } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { RFC3161Timestamp } from '@sigstore/core';
import { Verifier, type SignedEntity } from '@sigstore/verify';
import { describe, expect, it } from 'vitest';
import { resolveAnchorConfig } from '../../src/anchor/config.js';
import { trustMaterial, verifyAnchorTimestamp } from '../../src/anchor/trust.js';
import { checkTimestamp, plausibleTime, tsaTrust } from '../../src/anchor/tsa.js';
import { loadConfig } from '../../src/config/config.js';
import { forgeGenTime } from './timestamp-authority.js';
import { makeTempDir, removeDir } from '../helpers/temp-dirs.js';

const dir = path.join(__dirname, 'fixtures/tsa');
const read = (f: string) => readFileSync(path.join(dir, f));
const text = (f: string) => read(f).toString('utf8');
const chain = text('chain.pem');
const otherChain = text('other-chain.pem');
const note = read('note.txt');
const signature = Buffer.from(text('signature.b64'), 'base64');
const signingKey = createPublicKey(text('anchor-key.pem'));
const good = read('ts-good.der');
const pems = (t: string) => t.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----\n?/g)!;

describe('the configured TSA chain (RFC 3161 2.3, RFC 5280)', () => {
  it('takes the chain a Sigstore TSA serves and an openssl chain that keeps the rules', () => {
    expect(tsaTrust(chain).name).toBe('O=local, CN=Test TSA Timestamping');
    expect(tsaTrust(chain).chain).toHaveLength(3);
    expect(tsaTrust(text('eku-ok.pem')).name).toBe('CN=fixture ok');
  });

  const refused: [string, () => string, RegExp][] = [
    ['a non-critical extended key usage', () => text('eku-noncritical.pem'), /is not critical/],
    ['a purpose besides id-kp-timeStamping', () => text('eku-extra.pem'), /want only id-kp-timeStamping/],
    ['no extended key usage', () => text('eku-none.pem'), /has no extended key usage/],
    ['the timestamping certificate alone', () => pems(chain)[0]!, /got 1 certificate/],
    ['no certificate', () => 'not a PEM', /got 0 certificate/],
    ['root first', () => pems(chain).reverse().join(''), /not a CA|is not issued by/],
    ['an intermediate of another TSA', () => [pems(chain)[0]!, ...pems(otherChain).slice(1)].join(''), /certificate 1 .* is not issued by certificate 2/],
    ['a chain that stops below its root', () => pems(chain).slice(0, 2).join(''), /is not a self-signed root/],
  ];
  for (const [what, pem, why] of refused) {
    it(`refuses ${what}`, () => {
      expect(() => tsaTrust(pem())).toThrow(why);
    });
  }
});

describe('a timestamp over the anchoring signature', () => {
  const trusted = [tsaTrust(chain)];

  it('counts when granted, SHA-256 over exactly the signature, by the configured TSA', () => {
    const s = checkTimestamp(good, signature, trusted);
    expect(s.tsa.name).toBe('O=local, CN=Test TSA Timestamping');
    const v = verifyAnchorTimestamp(good, { signature, checkpointNote: note, signingKey, tsa: trusted });
    expect(v.time.toISOString()).toBe(s.time.toISOString());
  });

  it('is refused over other bytes', () => {
    expect(() => checkTimestamp(read('ts-other-bytes.der'), signature, trusted)).toThrow(/timestamps other bytes/);
    // One bit of the signature is other bytes too.
    const flipped = Buffer.from(signature);
    flipped[flipped.length - 1]! ^= 1;
    expect(() => checkTimestamp(good, flipped, trusted)).toThrow(/timestamps other bytes/);
  });

  it('is refused with a SHA-512 imprint, which @sigstore/verify alone accepts', () => {
    const ts = read('ts-sha512.der');
    expect(() => checkTimestamp(ts, signature, trusted)).toThrow(/imprint is sha512, want SHA-256/);
    // Why our check exists: Sigstore's verifier takes the imprint algorithm from the timestamp.
    const keyID = 'k';
    const entity: SignedEntity = {
      signature: { signature, compareSignature: () => true, compareDigest: () => true, verifySignature: () => true },
      key: { $case: 'public-key', hint: keyID },
      tlogEntries: [],
      timestamps: [{ $case: 'timestamp-authority', timestamp: RFC3161Timestamp.parse(ts) }],
    };
    expect(() =>
      new Verifier(trustMaterial(null, signingKey, keyID, trusted), { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 1 }).verify(entity),
    ).not.toThrow();
  });

  it('is refused from a TSA that is not configured, and counts once it is', () => {
    const ts = read('ts-untrusted.der');
    expect(() => checkTimestamp(ts, signature, trusted)).toThrow(/not the configured one/);
    expect(() => verifyAnchorTimestamp(ts, { signature, checkpointNote: note, signingKey, tsa: trusted })).toThrow(/not the configured one/);
    expect(checkTimestamp(ts, signature, [...trusted, tsaTrust(otherChain)]).tsa.name).toBe('O=local, CN=Test TSA Timestamping');
    expect(() => verifyAnchorTimestamp(ts, { signature, checkpointNote: note, signingKey, tsa: [tsaTrust(otherChain)] })).not.toThrow();
  });

  it('is refused with a forged time: the TSA signature no longer holds', () => {
    const forged = forgeGenTime(good);
    // Our own checks see nothing wrong (the imprint is right); @sigstore/verify does.
    expect(checkTimestamp(forged, signature, trusted).time.getUTCFullYear()).toBe(checkTimestamp(good, signature, trusted).time.getUTCFullYear() - 1);
    expect(() => verifyAnchorTimestamp(forged, { signature, checkpointNote: note, signingKey, tsa: trusted })).toThrow(
      /@sigstore\/verify: timestamp could not be verified/,
    );
  });

  it('is refused when the TSA did not grant it (PKIStatus other than 0 or 1)', () => {
    // TimeStampResp ::= SEQUENCE { status PKIStatusInfo ::= SEQUENCE { status INTEGER, ... }, ... }
    const at = good.indexOf(Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00]));
    expect(at).toBeGreaterThan(0);
    for (const [status, ok] of [
      [1, true],
      [2, false],
      [5, false],
    ] as const) {
      const ts = Buffer.from(good);
      ts[at + 4] = status;
      if (ok) expect(() => checkTimestamp(ts, signature, trusted)).not.toThrow();
      else expect(() => checkTimestamp(ts, signature, trusted)).toThrow(new RegExp(`the TSA refused \\(PKIStatus ${status}\\)`));
    }
  });

  it('is refused when unreadable, or when the signature is not ours over the checkpoint', () => {
    expect(() => checkTimestamp(Buffer.from('not DER'), signature, trusted)).toThrow(/not an RFC 3161 TimeStampResp/);
    expect(() => checkTimestamp(good.subarray(0, 100), signature, trusted)).toThrow(/not an RFC 3161 TimeStampResp|unreadable/);
    const otherNote = Buffer.concat([note, Buffer.from('x')]);
    expect(() => verifyAnchorTimestamp(good, { signature, checkpointNote: otherNote, signingKey, tsa: trusted })).toThrow(/signature verification failed/);
  });

  it('carries a time between the signature and now, give or take the skew (exact boundaries)', () => {
    const t = new Date(1_800_000_000_000);
    const skew = 300_000;
    expect(plausibleTime(t, t.getTime() + skew, t.getTime() + skew, skew)).toBe(true);
    expect(plausibleTime(t, t.getTime() + skew + 1, t.getTime() + skew + 1, skew)).toBe(false); // before the signature
    expect(plausibleTime(t, t.getTime() - 10 * skew, t.getTime() - skew, skew)).toBe(true);
    expect(plausibleTime(t, t.getTime() - 10 * skew, t.getTime() - skew - 1, skew)).toBe(false); // after now
  });
});

describe('anchoring configurations name the TSA', () => {
  const rekorKey = (() => {
    const k = createPublicKey(text('anchor-key.pem'));
    return k.export({ type: 'spki', format: 'pem' }) as string;
  })();

  it('a v2 log needs a TSA; a v1 log takes none; the chain must hold', () => {
    expect(() => resolveAnchorConfig({ rekor: { apiVersion: 'v2', url: 'http://127.0.0.1:1', publicKey: rekorKey } })).toThrow(
      /gives no signed time: configure tsa/,
    );
    expect(() => resolveAnchorConfig({ rekor: { apiVersion: 'v1', publicKey: rekorKey }, tsa: { url: 'http://127.0.0.1:2', certChain: chain } })).toThrow(
      /tsa is for Rekor v2/,
    );
    expect(() =>
      resolveAnchorConfig({
        rekor: { apiVersion: 'v2', url: 'http://127.0.0.1:1', publicKey: rekorKey },
        tsa: { url: 'http://127.0.0.1:2', certChain: text('eku-noncritical.pem') },
      }),
    ).toThrow(/bad TSA certificate chain: .* not critical/);
    expect(() =>
      resolveAnchorConfig({ rekor: { apiVersion: 'v2', url: 'http://127.0.0.1:1', publicKey: rekorKey }, tsa: { url: 'ftp://x', certChain: chain } }),
    ).toThrow(/tsa.url must be http/);
    const c = resolveAnchorConfig({
      rekor: { apiVersion: 'v2', url: 'http://127.0.0.1:1', publicKey: rekorKey },
      tsa: { url: 'http://127.0.0.1:2/', certChain: chain },
    });
    expect(c.tsa).toEqual({ url: 'http://127.0.0.1:2', certChain: chain });
  });

  it('the service configuration reads tsa.certChainFile and refuses v2 without a TSA', () => {
    const d = makeTempDir('tlog-tsa-config-');
    try {
      writeFileSync(path.join(d, 'rekor.pem'), rekorKey);
      writeFileSync(path.join(d, 'tsa.pem'), chain);
      const yaml = (anchoring: string[]) =>
        [
          'tenants:',
          '  - name: a',
          '    origin: example.com/a',
          '    credentials: { tokens: ["' + 'a'.repeat(64) + '"] }',
          '    anchoring:',
          ...anchoring.map((l) => '      ' + l),
          '',
        ].join('\n');
      const v2 = ['rekor: { apiVersion: v2, url: "http://127.0.0.1:1", publicKeyFile: rekor.pem }'];
      writeFileSync(path.join(d, 'ok.yaml'), yaml([...v2, 'tsa: { url: "http://127.0.0.1:2", certChainFile: tsa.pem }']));
      expect(loadConfig(path.join(d, 'ok.yaml')).tenants[0]!.anchoring!.tsa).toMatchObject({ url: 'http://127.0.0.1:2', certChain: chain });
      writeFileSync(path.join(d, 'none.yaml'), yaml(v2));
      expect(() => loadConfig(path.join(d, 'none.yaml'))).toThrow(/gives no signed time/);
      writeFileSync(path.join(d, 'v1.yaml'), yaml(['rekor: { publicKeyFile: rekor.pem }', 'tsa: { url: "http://127.0.0.1:2", certChainFile: tsa.pem }']));
      expect(() => loadConfig(path.join(d, 'v1.yaml'))).toThrow(/tsa is for Rekor v2/);
      writeFileSync(path.join(d, 'missing.yaml'), yaml([...v2, 'tsa: { url: "http://127.0.0.1:2", certChainFile: nope.pem }']));
      expect(() => loadConfig(path.join(d, 'missing.yaml'))).toThrow(/anchoring.tsa.certChainFile: cannot read/);
      writeFileSync(path.join(d, 'both.yaml'), yaml([...v2, 'tsa: { url: "http://127.0.0.1:2", certChainFile: tsa.pem, certChain: x }']));
      expect(() => loadConfig(path.join(d, 'both.yaml'))).toThrow(/exactly one of certChain and certChainFile/);
    } finally {
      removeDir(d);
    }
  });
});
