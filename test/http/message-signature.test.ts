/**
 * RFC 9421 signed writes: the signature bases against the RFC's Appendix B test vectors (and RFC
 * 9530's digest), requests signed independently of our signer (a signature base built by hand
 * from the RFC's rules; the http-message-signatures library's own signer over a real socket)
 * accepted, and every refusal at its boundary (time window, nonce, counter, covered components,
 * tag, digest).
 */
import { serve } from '@hono/node-server';
import { ed25519 } from '@noble/curves/ed25519.js';
import { httpbis } from 'http-message-signatures';
import { createHash, createHmac } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseDictionary, type InnerList } from 'structured-headers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signHttpRequest } from '../../src/client/signed-request.js';
import { TlogError } from '../../src/errors.js';
import { MAX_CLOCK_AHEAD, MAX_SIGNATURE_AGE, signatureBase, verifyMessageSignature, type RequestView, type Signers } from '../../src/http/message-signature.js';
import { contentDigest, MAX_COUNTER, verifyEd25519 } from '../../src/signed-write/profile.js';
import { clientKey, makeEnv, post, tokenAuth, type AppEnv } from './helpers.js';
import { thrownBy } from '../helpers/errors.js';

// ---- RFC 9421 Appendix B ----

/** B.1.4 test-key-ed25519: the 32-byte seed and public key at the end of its PKCS#8 and SPKI DER. */
const TEST_KEY_ED25519 = {
  seed: Buffer.from('MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF', 'base64').subarray(-32),
  publicKey: Buffer.from('MCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=', 'base64').subarray(-32),
};
/** B.1.5 test-shared-secret. */
const TEST_SHARED_SECRET = Buffer.from('uzvJfB4u3N0Jy4T7NZ75MDVcr8zSTInedJtkgcu46YW4XByzNJjxBdtjUkdJPBtbmHhIDi6pcl8jsasjlTMtDQ==', 'base64');
const REQUEST_DIGEST = 'sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:';

/** The test request of B.2 (its body is {"hello": "world"}). */
const TEST_REQUEST: RequestView = {
  method: 'POST',
  url: 'https://example.com/foo?param=Value&Pet=dog',
  headers: new Headers({
    Host: 'example.com',
    Date: 'Tue, 20 Apr 2021 02:07:55 GMT',
    'Content-Type': 'application/json',
    'Content-Digest': REQUEST_DIGEST,
    'Content-Length': '18',
  }),
};

/** The signature base of the published Signature-Input `input` (label `label`). */
function baseOf(label: string, input: string): string {
  return Buffer.from(signatureBase(TEST_REQUEST, parseDictionary(input).get(label) as InnerList)).toString('utf8');
}

describe('RFC 9421 Appendix B test vectors', () => {
  it('B.2.6 (ed25519): the base is the published one, the published signature verifies, and signing reproduces it', () => {
    const base = baseOf(
      'sig-b26',
      'sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"',
    );
    expect(base).toBe(
      [
        '"date": Tue, 20 Apr 2021 02:07:55 GMT',
        '"@method": POST',
        '"@path": /foo',
        '"@authority": example.com',
        '"content-type": application/json',
        '"content-length": 18',
        '"@signature-params": ("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"',
      ].join('\n'),
    );
    const published = Buffer.from('wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==', 'base64');
    expect(Buffer.from(ed25519.getPublicKey(TEST_KEY_ED25519.seed))).toEqual(TEST_KEY_ED25519.publicKey);
    expect(verifyEd25519(TEST_KEY_ED25519.publicKey, Buffer.from(base), published)).toBe(true);
    expect(Buffer.from(ed25519.sign(Buffer.from(base), TEST_KEY_ED25519.seed))).toEqual(published);
    // One changed byte of the base does not verify.
    expect(verifyEd25519(TEST_KEY_ED25519.publicKey, Buffer.from(base.replace('/foo', '/fop')), published)).toBe(false);
  });

  it('B.2.5 (hmac-sha256): the base is the one whose MAC is published', () => {
    const base = baseOf('sig-b25', 'sig-b25=("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret"');
    expect(base).toBe(
      [
        '"date": Tue, 20 Apr 2021 02:07:55 GMT',
        '"@authority": example.com',
        '"content-type": application/json',
        '"@signature-params": ("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret"',
      ].join('\n'),
    );
    expect(createHmac('sha256', TEST_SHARED_SECRET).update(base).digest('base64')).toBe('pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=');
  });

  it('B.2.1, B.2.2 and B.2.3: the bases are the published ones (nonce and tag parameters, @query-param, @query, content-digest)', () => {
    expect(baseOf('sig-b21', 'sig-b21=();created=1618884473;keyid="test-key-rsa-pss";nonce="b3k2pp5k7z-50gnwp.yemd"')).toBe(
      '"@signature-params": ();created=1618884473;keyid="test-key-rsa-pss";nonce="b3k2pp5k7z-50gnwp.yemd"',
    );
    expect(
      baseOf('sig-b22', 'sig-b22=("@authority" "content-digest" "@query-param";name="Pet");created=1618884473;keyid="test-key-rsa-pss";tag="header-example"'),
    ).toBe(
      [
        '"@authority": example.com',
        `"content-digest": ${REQUEST_DIGEST}`,
        '"@query-param";name="Pet": dog',
        '"@signature-params": ("@authority" "content-digest" "@query-param";name="Pet");created=1618884473;keyid="test-key-rsa-pss";tag="header-example"',
      ].join('\n'),
    );
    expect(
      baseOf(
        'sig-b23',
        'sig-b23=("date" "@method" "@path" "@query" "@authority" "content-type" "content-digest" "content-length");created=1618884473;keyid="test-key-rsa-pss"',
      ),
    ).toBe(
      [
        '"date": Tue, 20 Apr 2021 02:07:55 GMT',
        '"@method": POST',
        '"@path": /foo',
        '"@query": ?param=Value&Pet=dog',
        '"@authority": example.com',
        '"content-type": application/json',
        `"content-digest": ${REQUEST_DIGEST}`,
        '"content-length": 18',
        '"@signature-params": ("date" "@method" "@path" "@query" "@authority" "content-type" "content-digest" "content-length");created=1618884473;keyid="test-key-rsa-pss"',
      ].join('\n'),
    );
  });

  it('RFC 9530 Appendix B.1: the Content-Digest of {"hello": "world"}', () => {
    expect(contentDigest(Buffer.from('{"hello": "world"}'))).toBe('sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:');
    expect(`sha-512=:${createHash('sha512').update('{"hello": "world"}').digest('base64')}:`).toBe(REQUEST_DIGEST);
  });
});

// ---- A signer written from the RFC's text alone, sharing no code with the service ----

const ORIGIN = 'example.com/t';
const key = clientKey(7);

interface HandSigned {
  readonly method?: string;
  readonly url?: string;
  readonly body?: Uint8Array;
  readonly counter?: string;
  /** Covered component identifiers, serialized (`"@method"`, `"content-digest";sf`). */
  readonly components?: string[];
  /** The signature parameters, serialized (`;created=1;keyid="c1"`). */
  readonly params?: string;
  readonly label?: string;
  readonly extraHeaders?: Record<string, string>;
  readonly seed?: Uint8Array;
}

const NOW = 1_700_000_000;
const DEFAULT_COMPONENTS = ['"@method"', '"@path"', '"@query"', '"content-digest"', '"tlog-counter"'];
const params = (o: { created?: number; keyid?: string; nonce?: string; tag?: string; extra?: string } = {}) =>
  `;created=${o.created ?? NOW};keyid="${o.keyid ?? 'c1'}";nonce="${o.nonce ?? 'n0nce-0123456789abcdef'}";tag="${o.tag ?? `tlog-worm/${ORIGIN}`}"${o.extra ?? ''}`;

/** Headers of a request signed by the RFC 9421 §2.5 and §3.1 rules, built by hand. */
function handSign(o: HandSigned = {}): Record<string, string> {
  const method = o.method ?? 'POST';
  const url = new URL(o.url ?? 'http://localhost/t/append');
  const body = o.body ?? Buffer.from('hand-signed entry');
  const headers: Record<string, string> = {
    'content-digest': `sha-256=:${createHash('sha256').update(body).digest('base64')}:`,
    'tlog-counter': o.counter ?? '6',
    ...o.extraHeaders,
  };
  const components = o.components ?? DEFAULT_COMPONENTS;
  const value = (id: string): string => {
    const name = JSON.parse(id.split(';')[0]!) as string;
    switch (name) {
      case '@method':
        return method;
      case '@path':
        return url.pathname;
      case '@query':
        return url.search === '' ? '?' : url.search;
      case '@authority':
        return url.host;
      case '@target-uri':
        return url.href;
      default:
        return headers[name]!;
    }
  };
  const list = `(${components.join(' ')})${o.params ?? params()}`;
  const base = [...components.map((c) => `${c}: ${value(c)}`), `"@signature-params": ${list}`].join('\n');
  const sig = Buffer.from(ed25519.sign(Buffer.from(base), o.seed ?? key.seed)).toString('base64');
  const label = o.label ?? 'sig1';
  return { ...headers, 'signature-input': `${label}=${list}`, signature: `${label}=:${sig}:` };
}

const signers: Signers = { origin: ORIGIN, key: (id) => (id === 'c1' ? key.publicKey : undefined), lastCounter: () => 5 };
const view = (headers: Record<string, string>, url = 'http://localhost/t/append', method = 'POST'): RequestView => ({
  method,
  url,
  headers: new Headers(headers),
});
const check = (headers: Record<string, string>, now = NOW, url?: string) => verifyMessageSignature(view(headers, url), signers, now);

function refused(f: () => unknown, why: RegExp): void {
  const err = thrownBy(f);
  expect(err, `expected a refusal matching ${why}`).toBeInstanceOf(TlogError);
  expect((err as TlogError).code).toBe('unauthorized');
  expect((err as TlogError).message).toMatch(why);
}

describe('a request signed by hand from the RFC is accepted', () => {
  it('by the verifier, with its counter and client, and its body checked', () => {
    const w = check(handSign());
    expect([w.clientID, w.counter]).toEqual(['c1', 6]);
    w.checkBody(Buffer.from('hand-signed entry'));
    refused(() => w.checkBody(Buffer.from('hand-signed entrY')), /Content-Digest sha256 does not match the body/);
  });

  it('with @target-uri for the path and query, @authority, other labels and parameter orders, alg, expires', () => {
    check(handSign({ components: ['"tlog-counter"', '"@target-uri"', '"content-digest"', '"@method"', '"@authority"'], label: 'x' }));
    check(handSign({ params: `;keyid="c1";tag="tlog-worm/${ORIGIN}";alg="ed25519";nonce="0123456789abcdefXYZ";expires=${NOW};created=${NOW - 5}` }));
    check(handSign({ url: 'http://localhost/t/append-batch?proofs=1' }), NOW, 'http://localhost/t/append-batch?proofs=1');
  });

  it("beside a proxy's signature with another label and no tag (RFC 9421 §4.3)", () => {
    const ours = handSign();
    const proxy = handSign({ label: 'proxy_sig', params: `;created=${NOW};keyid="proxy"`, seed: clientKey(8).seed });
    check({ ...ours, 'signature-input': `${proxy['signature-input']}, ${ours['signature-input']}`, signature: `${proxy.signature}, ${ours.signature}` });
  });

  it('over HTTP, through the service', async () => {
    const env = await makeEnv([{ name: 't', origin: ORIGIN, auth: tokenAuth({ clients: [['c1', key.publicKey]] }) }]);
    try {
      const body = Buffer.from('hand-signed over http');
      const now = Math.floor(Date.now() / 1000);
      const r = await post(env.app, '/t/append', body, handSign({ body, params: params({ created: now }), counter: '1' }));
      expect(r.status, await r.clone().text()).toBe(200);
      expect(env.registry.get('t')!.log.treeSize).toBe(1);
    } finally {
      await env.close();
    }
  });
});

describe("the http-message-signatures library's own signer, over a real socket", () => {
  let env: AppEnv;
  let server: Server;
  let base: string;
  beforeAll(async () => {
    env = await makeEnv([{ name: 't', origin: ORIGIN, auth: tokenAuth({ clients: [['c1', key.publicKey]] }) }]);
    server = await new Promise<Server>((resolve) => {
      const s = serve({ fetch: env.app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(s as Server));
    });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    await env.close();
  });

  it('covering @target-uri, @authority and content-type, with expires: accepted; our signer too; a replay refused', async () => {
    const body = Buffer.from('{"entry":"from the library"}');
    const url = `${base}/t/append`;
    const signed = await httpbis.signMessage(
      {
        key: { id: 'c1', alg: 'ed25519', sign: async (data: Buffer) => Buffer.from(ed25519.sign(data, key.seed)) },
        fields: ['@method', '@target-uri', '@authority', 'content-type', 'content-digest', 'tlog-counter'],
        params: ['created', 'expires', 'keyid', 'alg', 'nonce', 'tag'],
        paramValues: { nonce: 'library-nonce-0123456789', tag: `tlog-worm/${ORIGIN}` },
      },
      { method: 'POST', url, headers: { 'Content-Type': 'application/json', 'Content-Digest': contentDigest(body), 'Tlog-Counter': '1' } },
    );
    const headers = signed.headers as Record<string, string>;
    const r = await fetch(url, { method: 'POST', body, headers });
    expect(r.status, await r.clone().text()).toBe(200);
    expect((await fetch(url, { method: 'POST', body, headers })).status).toBe(401);
    const ours = await signHttpRequest({ clientID: 'c1', seed: key.seed, origin: ORIGIN, method: 'POST', url: '/t/append', body, counter: 2 });
    expect((await fetch(url, { method: 'POST', body, headers: ours })).status).toBe(200);
    expect(env.registry.get('t')!.counters.last('c1')).toBe(2);
  });
});

describe('refusals, each at its boundary', () => {
  it('created: up to MAX_CLOCK_AHEAD ahead and MAX_SIGNATURE_AGE behind the clock', () => {
    check(handSign({ params: params({ created: NOW + MAX_CLOCK_AHEAD }) }));
    refused(() => check(handSign({ params: params({ created: NOW + MAX_CLOCK_AHEAD + 1 }) })), /ahead of the service's clock/);
    check(handSign({ params: params({ created: NOW - MAX_SIGNATURE_AGE }) }));
    refused(() => check(handSign({ params: params({ created: NOW - MAX_SIGNATURE_AGE - 1 }) })), /s before the service's clock/);
    refused(() => check(handSign({ params: `;keyid="c1";nonce="n0nce-0123456789abcdef";tag="tlog-worm/${ORIGIN}"` })), /needs a created integer/);
    refused(() => check(handSign({ params: params({ created: 0 }).replace(';created=0', `;created=${NOW}.5`) })), /needs a created integer/);
  });

  it('expires: refused once past', () => {
    check(handSign({ params: params({ extra: `;expires=${NOW}` }) }));
    refused(() => check(handSign({ params: params({ extra: `;expires=${NOW - 1}` }) })), /expired/);
    refused(() => check(handSign({ params: params({ extra: ';expires="soon"' }) })), /expires must be an integer/);
  });

  it('nonce: 16 to 128 characters', () => {
    check(handSign({ params: params({ nonce: 'n'.repeat(16) }) }));
    check(handSign({ params: params({ nonce: 'n'.repeat(128) }) }));
    refused(() => check(handSign({ params: params({ nonce: 'n'.repeat(15) }) })), /nonce string of 16 to 128/);
    refused(() => check(handSign({ params: params({ nonce: 'n'.repeat(129) }) })), /nonce string of 16 to 128/);
    refused(() => check(handSign({ params: `;created=${NOW};keyid="c1";tag="tlog-worm/${ORIGIN}"` })), /nonce/);
  });

  it('keyid and alg', () => {
    refused(() => check(handSign({ params: params({ keyid: 'c2' }) })), /unknown client "c2"/);
    refused(() => check(handSign({ params: `;created=${NOW};nonce="n0nce-0123456789abcdef";tag="tlog-worm/${ORIGIN}"` })), /no keyid/);
    refused(() => check(handSign({ params: params({ extra: ';alg="rsa-pss-sha512"' }) })), /alg "rsa-pss-sha512" is not ed25519/);
    check(handSign({ params: params({ extra: ';alg="ed25519"' }) }));
  });

  it("tag: this tenant's origin, on exactly one signature", () => {
    refused(
      () => check(handSign({ params: params({ tag: 'tlog-worm/example.com/other' }) })),
      /tagged "tlog-worm\/example.com\/other": it was made for another tenant/,
    );
    refused(
      () => check(handSign({ params: `;created=${NOW};keyid="c1";nonce="n0nce-0123456789abcdef"` })),
      /no signature in Signature-Input is tagged "tlog-worm\/example.com\/t"/,
    );
    refused(() => check(handSign({ params: params({ tag: 'header-example' }) })), /no signature .* is tagged/);
    // A token is not a string (RFC 9421 §2.3: tag is a String).
    refused(() => check(handSign({ params: params().replace(`tag="tlog-worm/${ORIGIN}"`, `tag=tlog-worm/${ORIGIN}`) })), /no signature .* is tagged/);
    const a = handSign();
    const b = handSign({ label: 'sig2' });
    refused(
      () => check({ ...a, 'signature-input': `${a['signature-input']}, ${b['signature-input']}`, signature: `${a.signature}, ${b.signature}` }),
      /more than one signature/,
    );
  });

  it('covered components: ours without parameters, lowercase, none twice, no @signature-params', () => {
    for (const [drop, why] of [
      ['"@method"', /must cover @method/],
      ['"content-digest"', /must cover content-digest/],
      ['"tlog-counter"', /must cover tlog-counter/],
      ['"@path"', /must cover @path and @query \(or @target-uri\)/],
      ['"@query"', /must cover @path and @query \(or @target-uri\)/],
    ] as const) {
      refused(() => check(handSign({ components: DEFAULT_COMPONENTS.filter((c) => c !== drop) })), why);
    }
    refused(
      () => check(handSign({ components: DEFAULT_COMPONENTS.map((c) => (c === '"content-digest"' ? '"content-digest";key="sha-256"' : c)) })),
      /must cover content-digest/,
    );
    refused(() => check(handSign({ components: [...DEFAULT_COMPONENTS, '"@method"'] })), /"@method" is listed twice/);
    refused(
      () => check({ ...handSign({ components: [...DEFAULT_COMPONENTS, '"Content-Type"'], extraHeaders: { 'Content-Type': 'x' } }) }),
      /"Content-Type" is not lowercase/,
    );
    refused(() => check(handSign({ components: [...DEFAULT_COMPONENTS, '"@signature-params"'] })), /@signature-params cannot be/);
    refused(() => check(handSign({ components: [...DEFAULT_COMPONENTS, '"x-absent"'] })), /cannot build the signature base/);
    // Another covered header, with the header changed after signing.
    const h = handSign({ components: [...DEFAULT_COMPONENTS, '"x-note"'], extraHeaders: { 'x-note': 'a' } });
    check(h);
    refused(() => check({ ...h, 'x-note': 'b' }), /does not verify/);
  });

  it('Tlog-Counter: above the last counter, canonical, at most 15 digits', () => {
    refused(() => check(handSign({ counter: '5' })), /counter 5 of client c1 is not above its last counter 5: replayed or stale/);
    check(handSign({ counter: '6' }));
    check(handSign({ counter: String(MAX_COUNTER) }));
    for (const bad of [String(MAX_COUNTER + 1), '06', '-6', '6.0', ''])
      refused(() => check(handSign({ counter: bad })), /Tlog-Counter must be a canonical decimal from 0 to 999999999999999/);
  });

  it('Content-Digest: sha-256 required, sizes checked, sha-512 checked when present, others ignored', () => {
    const body = Buffer.from('hand-signed entry');
    const sha256 = createHash('sha256').update(body).digest('base64');
    const sha512 = createHash('sha512').update(body).digest('base64');
    const withDigest = (d: string) => handSign({ extraHeaders: { 'content-digest': d } });
    refused(() => check(withDigest(`sha-512=:${sha512}:`)), /must carry sha-256/);
    refused(() => check(withDigest(`sha-256=:${Buffer.alloc(31).toString('base64')}:`)), /sha-256 must be a 32-byte byte sequence/);
    refused(() => check(withDigest(`sha-256="${sha256}"`)), /sha-256 must be a 32-byte byte sequence/);
    refused(() => check(withDigest('sha-256=:not base64:')), /not a structured-field dictionary/);
    check(withDigest(`md5=:AAAA:, sha-256=:${sha256}:`)).checkBody(body);
    check(withDigest(`sha-256=:${sha256}:, sha-512=:${sha512}:`)).checkBody(body);
    const w = check(withDigest(`sha-256=:${sha256}:, sha-512=:${createHash('sha512').update('other').digest('base64')}:`));
    refused(() => w.checkBody(body), /Content-Digest sha512 does not match the body/);
  });

  it('Signature and Signature-Input: both present, dictionaries, a 64-byte signature under our label, by the key', () => {
    const h = handSign();
    refused(() => check({ ...h, signature: '' }), /no 64-byte byte sequence labelled "sig1"/);
    const noSig: Record<string, string> = { ...h };
    delete noSig.signature;
    refused(() => check(noSig), /needs both Signature-Input and Signature/);
    refused(() => check({ ...h, 'signature-input': 'sig1=(' }), /structured-field dictionaries/);
    refused(() => check({ ...h, signature: `sig1=:${Buffer.alloc(63).toString('base64')}:` }), /no 64-byte byte sequence labelled "sig1"/);
    refused(() => check({ ...h, signature: h.signature!.replace('sig1=', 'other=') }), /no 64-byte byte sequence labelled "sig1"/);
    refused(() => check(handSign({ seed: clientKey(8).seed })), /does not verify/);
    refused(() => check(h, NOW, 'http://localhost/t/append?proofs=1'), /does not verify/);
    refused(() => verifyMessageSignature(view(h, undefined, 'PUT'), signers, NOW), /does not verify/);
  });
});
