/**
 * Which implementation computes the log's ML-DSA-44 signatures, chosen once per process
 * (mldsaBackend()) and reported in the serve start line and in /metrics.
 *
 * - 'node:crypto': OpenSSL's ML-DSA (3.5 and later) through node:crypto, where Node exposes it
 *   (Node 24.7 and later; probed, not guessed from the version).
 * - 'liboqs-wasm': liboqs of the Open Quantum Safe project compiled to WebAssembly
 *   (@oqs/liboqs-js), for runtimes without it (Node 20, 22).
 * - 'noble': @noble/post-quantum, pure JavaScript, an order of magnitude slower. Only where
 *   WebAssembly is off (node --jitless), or when asked for.
 *
 * Measured here (bench/mldsa-signers.ts, Node 26, p50 per signature): node:crypto 0.26-0.33 ms,
 * liboqs-wasm 0.17-0.18 ms, noble 3.7 ms. node:crypto still comes first where it exists: both are
 * far below a batch's other costs, and it is OpenSSL's native, constant-time C behind Node's own
 * API, with no third-party package on the signing path and no copy of the secret key in a
 * WebAssembly heap (liboqs-js copies it in and frees it uncleared on every call).
 *
 * TLOG_MLDSA_SIGNER=<name> forces one (tests, experiments); a name the runtime does not offer is
 * refused, never silently replaced.
 *
 * Every backend computes FIPS 204 ML-DSA.Sign (pure, empty context, hedged) with the key derived
 * from the 32-byte seed ξ that the key file holds (FIPS 204 Algorithm 6, ML-DSA.KeyGen_internal):
 * node:crypto imports the seed itself (a seed-only PKCS#8 key); liboqs cannot derive a key from
 * a given seed, so it is handed the expanded secret key noble derives (liboqs's secret-key
 * encoding is FIPS 204's skEncode, as the tests check against NIST's keyGen vectors). Hedged
 * signatures differ from call to call; each verifies under the key file's public key.
 *
 * The backends run in the sign pool's worker, an `eval` script that cannot import this TypeScript
 * file under vitest, so their code is JavaScript text (MLDSA_BACKEND_SOURCE) that the worker
 * embeds and that loadMldsaBackend() evaluates on this thread (tests, bench/mldsa-signers.ts).
 */
import { createPrivateKey, sign } from 'node:crypto';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { TlogError, ErrorCode } from '../errors.js';

/** The backends, preferred first (see above): the choice is the first one the runtime offers. */
export const MLDSA_BACKENDS = ['node:crypto', 'liboqs-wasm', 'noble'] as const;
export type MldsaBackend = (typeof MLDSA_BACKENDS)[number];

/**
 * draft-ietf-lamps-dilithium-certificates (RFC 9881) section 6: an ML-DSA-44 PrivateKeyInfo
 * holding only the seed is SEQUENCE { INTEGER 0, SEQUENCE { OID 2.16.840.1.101.3.4.3.17 },
 * OCTET STRING { [0] IMPLICIT OCTET STRING (32 bytes) } }: these bytes, then the seed.
 */
export const MLDSA44_SEED_PKCS8_PREFIX_HEX = '3034020100300b060960864801650304031104228020';

/** The modules a backend may need, by the name MLDSA_BACKEND_SOURCE asks for them. */
export type MldsaModule = 'node:crypto' | 'noble' | 'liboqs';

/**
 * An async function expression `(name, load) => backend`: `load(module)` imports one of the
 * MldsaModule names (the caller's import(), since code made from text has no module to import
 * from). The backend has keyFromSeed(seed) -> key (whatever that backend signs with) and
 * sign(key, message) -> the 2420-byte signature. Plain JavaScript, no backquotes.
 */
export const MLDSA_BACKEND_SOURCE = String.raw`async (name, load) => {
  if (name === 'node:crypto') {
    const crypto = await load('node:crypto');
    const prefix = Buffer.from('${MLDSA44_SEED_PKCS8_PREFIX_HEX}', 'hex');
    return {
      name,
      keyFromSeed: (seed) => crypto.createPrivateKey({ key: Buffer.concat([prefix, seed]), format: 'der', type: 'pkcs8' }),
      sign: (key, msg) => crypto.sign(null, msg, key),
    };
  }
  if (name !== 'liboqs-wasm' && name !== 'noble') throw new Error('unknown ML-DSA-44 signer ' + JSON.stringify(name));
  const { ml_dsa44 } = await load('noble');
  // FIPS 204 ML-DSA.KeyGen_internal(seed): the expanded secret key (skEncode), 2560 bytes.
  const keyFromSeed = (seed) => ml_dsa44.keygen(seed).secretKey;
  if (name === 'noble') return { name, keyFromSeed, sign: (sk, msg) => ml_dsa44.sign(msg, sk) };
  const oqs = await (await load('liboqs')).createMLDSA44();
  // liboqs-js accepts exactly Uint8Array (not a Buffer): a view of the same bytes.
  const plain = (u8) => (u8.constructor === Uint8Array ? u8 : new Uint8Array(u8.buffer, u8.byteOffset, u8.byteLength));
  return { name, keyFromSeed, sign: (sk, msg) => oqs.sign(plain(msg), sk) };
}`;

/** What MLDSA_BACKEND_SOURCE makes. The key type is the backend's own. */
export interface MldsaSigner {
  readonly name: MldsaBackend;
  keyFromSeed(seed: Uint8Array): unknown;
  sign(key: unknown, message: Uint8Array): Uint8Array;
}

/** File URLs of the modules the backends load (resolved here, where node_modules is reachable). */
export function mldsaModuleUrls(): Record<Exclude<MldsaModule, 'node:crypto'>, string> {
  return {
    noble: pathToFileURL(createRequire(import.meta.url).resolve('@noble/post-quantum/ml-dsa.js')).href,
    // An ES-module-only export map: require.resolve cannot see it, import.meta.resolve can.
    liboqs: import.meta.resolve('@oqs/liboqs-js/sig'),
  };
}

let nodeHasMldsa: boolean | undefined;

/** Whether node:crypto signs ML-DSA-44 here: it imports a seed key and signs (probed once). */
export function nodeCryptoHasMldsa(): boolean {
  if (nodeHasMldsa === undefined) {
    try {
      const key = createPrivateKey({ key: Buffer.concat([Buffer.from(MLDSA44_SEED_PKCS8_PREFIX_HEX, 'hex'), Buffer.alloc(32)]), format: 'der', type: 'pkcs8' });
      nodeHasMldsa = sign(null, new Uint8Array(0), key).length === 2420;
    } catch {
      // Node 20 cannot decode the key; Node 22 (OpenSSL 3.5 inside) decodes it but cannot sign.
      nodeHasMldsa = false;
    }
  }
  return nodeHasMldsa;
}

/** The backends this runtime offers, preferred first (noble always). */
export function availableMldsaBackends(): MldsaBackend[] {
  return MLDSA_BACKENDS.filter((b) => (b === 'node:crypto' ? nodeCryptoHasMldsa() : b === 'liboqs-wasm' ? typeof WebAssembly === 'object' : true));
}

/** The backend to use: `forced` (TLOG_MLDSA_SIGNER's value) if given and offered, else the preferred one. */
export function chooseMldsaBackend(forced: string | undefined): MldsaBackend {
  const available = availableMldsaBackends();
  if (forced === undefined || forced === '') return available[0]!;
  if (!(MLDSA_BACKENDS as readonly string[]).includes(forced)) {
    throw new TlogError(ErrorCode.badInput, `TLOG_MLDSA_SIGNER=${JSON.stringify(forced)}: want one of ${MLDSA_BACKENDS.join(', ')}`);
  }
  const b = forced as MldsaBackend;
  if (!available.includes(b)) {
    throw new TlogError(
      ErrorCode.badInput,
      `TLOG_MLDSA_SIGNER=${b}: this runtime (Node ${process.version}) does not offer it; it offers ${available.join(', ')}`,
    );
  }
  return b;
}

let chosen: MldsaBackend | undefined;

/** The process's ML-DSA-44 backend, chosen at the first call (TLOG_MLDSA_SIGNER, else the preferred one). */
export function mldsaBackend(): MldsaBackend {
  chosen ??= chooseMldsaBackend(process.env.TLOG_MLDSA_SIGNER);
  return chosen;
}

type MakeBackend = (name: MldsaBackend, load: (m: MldsaModule) => Promise<Record<string, unknown>>) => Promise<MldsaSigner>;

/** A backend on this thread, made from the same source the sign pool's worker runs. */
export async function loadMldsaBackend(name: MldsaBackend): Promise<MldsaSigner> {
  const urls = mldsaModuleUrls();
  // Our own constant source text, evaluated as the worker evaluates it.
  const make = new Function(`return (${MLDSA_BACKEND_SOURCE});`)() as MakeBackend;
  return make(name, (m) => import(m === 'node:crypto' ? m : urls[m]));
}
