/** A synthetic log (entries `entry-<i>`, the vectors' log key), witness builders, and our witness on loopback, for tests. */
import { EMPTY_ROOT } from '../../src/merkle/hash.js';
import { consistencyProof, treeHash } from '../../src/merkle/proof.js';
import { formatCheckpoint } from '../../src/note/checkpoint.js';
import { parsePrivateKey, SignatureType } from '../../src/note/keys.js';
import { formatNote, signNote, type NoteSigner } from '../../src/note/note.js';
import { derivePublicKey, keyPair, type KeyPair } from '../../src/note/signers.js';
import { createWitnessApp } from '../../witness/app.js';
import { parseConfig, type WitnessConfig } from '../../witness/config.js';
import { MemoryEvidence, type EvidenceSink } from '../../witness/evidence.js';
import { witnessKeysFrom, type Clock } from '../../witness/keys.js';
import { formatAddCheckpointRequest } from '../../witness/request.js';
import { MemoryStateStore, type StateStore } from '../../witness/state.js';
import { Witness } from '../../witness/witness.js';
import { levelReader, leafHashes, perfectLevels } from '../merkle/fixture.js';
import { hex, vectors } from '../vectors.js';
import { runWitness, type RunningWitness } from '../../witness/serve.js';

export const ORIGIN = vectors.log_key.name; // example.com/log
export const logPair: KeyPair = keyPair(parsePrivateKey(vectors.log_key.skey_TEST_ONLY, derivePublicKey));
export const witnessEdKey = parsePrivateKey(vectors.witness_key.skey_TEST_ONLY, derivePublicKey);
export const witnessMlKey = {
  name: vectors.witness_key.name,
  type: SignatureType.mldsa44Subtree,
  seed: hex(vectors.mldsa44_cosignature_openssl.mldsa44_seed_hex),
};
export const TS = vectors.cosignature_v1_ed25519.timestamp;

/** Largest tree the fixture serves. */
const MAX = 2048;
const levels = perfectLevels(leafHashes(MAX));

export function rootAt(size: number): Uint8Array {
  return size === 0 ? EMPTY_ROOT : treeHash(size, levelReader(levels, size));
}

export function proofBetween(oldSize: number, newSize: number): Uint8Array[] {
  return consistencyProof(oldSize, newSize, levelReader(levels, newSize));
}

/** The checkpoint text of the synthetic log at `size`. */
export function checkpointText(size: number, o: { origin?: string; root?: Uint8Array; extensions?: string[] } = {}): string {
  return formatCheckpoint({ origin: o.origin ?? ORIGIN, treeSize: size, rootHash: o.root ?? rootAt(size), extensions: o.extensions ?? [] });
}

/** A checkpoint signed by the log key (or the given signers). */
export function signedCheckpoint(size: number, o: Parameters<typeof checkpointText>[1] & { signers?: NoteSigner[] } = {}): string {
  return formatNote(signNote(checkpointText(size, o), o.signers ?? [logPair.signer]));
}

/** An add-checkpoint body from old to size with a correct proof. */
export function addBody(old: number, size: number, o: Parameters<typeof signedCheckpoint>[1] = {}): string {
  return formatAddCheckpointRequest(old, old === 0 ? [] : proofBetween(old, size), signedCheckpoint(size, o));
}

export function testConfig(extra: Partial<{ mldsa44: boolean; logs: { origin: string; keys: string[] }[] }> = {}): WitnessConfig {
  return parseConfig({
    name: vectors.witness_key.name,
    mldsa44: extra.mldsa44 ?? true,
    logs: extra.logs ?? [{ origin: ORIGIN, keys: [vectors.log_key.vkey] }],
  });
}

export const fixedClock =
  (ts = TS): Clock =>
  () =>
    ts;

/** A witness with the vectors' keys over a memory store, and its app. */
export function memoryWitness(o: { store?: StateStore; evidence?: EvidenceSink; clock?: Clock; config?: WitnessConfig } = {}) {
  const store = o.store ?? new MemoryStateStore();
  const evidence = o.evidence ?? new MemoryEvidence();
  const witness = new Witness({
    config: o.config ?? testConfig(),
    keys: witnessKeysFrom(witnessEdKey, witnessMlKey),
    store,
    evidence,
    clock: o.clock ?? fixedClock(),
  });
  const app = createWitnessApp(witness);
  // app.request answers synchronously or not; callers always get a promise. (A copy makes the
  // bytes an ArrayBuffer-backed view, which is what fetch's BodyInit takes.)
  const post = (body: string | Uint8Array): Promise<Response> =>
    Promise.resolve(app.request('/add-checkpoint', { method: 'POST', body: typeof body === 'string' ? body : new Uint8Array(body) }));
  return { witness, app, store, evidence, post };
}

/**
 * Our witness as a process runs it (runWitness), quiet, on a loopback port the OS picks (or at
 * `listen`): named `name`, cosigning the log `origin` under its verifier keys `logKeys`.
 */
export function runLoopbackWitness(o: {
  name: string;
  origin: string;
  logKeys: string[];
  dataDir: string;
  mldsa44?: boolean;
  listen?: string;
}): Promise<RunningWitness> {
  const config = { name: o.name, ...(o.mldsa44 === undefined ? {} : { mldsa44: o.mldsa44 }), logs: [{ origin: o.origin, keys: o.logKeys }] };
  return runWitness({ config, dataDir: o.dataDir, listen: o.listen ?? '127.0.0.1:0', log: () => {} });
}
