/**
 * Signing off the main thread: a SignOffload (src/note/signers.ts) backed by worker threads, so
 * a checkpoint's signatures never block the HTTP event loop. ML-DSA-44 is computed by the
 * pool's backend (src/log/mldsa-backend.ts: node:crypto, liboqs-wasm or noble; the process's
 * choice unless the pool is told which), Ed25519 by node:crypto.
 *
 * Contract:
 * - sign() is safe to call concurrently. Ed25519 resolves with exactly noble's signature
 *   (deterministic, RFC 8032 5.1.6; node:crypto's bytes equal noble's); ML-DSA-44 with a FIPS 204
 *   pure, hedged signature that noble verifies under the public key of the same seed.
 * - A failing call rejects with a readable Error and no key material. A worker that dies rejects
 *   its pending calls with `unavailable`; the next call starts a new one.
 * - close() terminates the workers, rejects pending calls; later calls reject with `unavailable`.
 * - An idle pool never keeps the process alive: a worker is ref()ed only while it has calls.
 *
 * The worker is an `eval` script that imports its modules by absolute file URLs resolved here, so
 * the same code works from dist/ (node) and from the TypeScript sources (vitest), where no .js
 * file sits beside this one. A key's 32-byte seed is sent to a worker once (a copy of exactly its
 * bytes) and cached there under a number, with the backend's key derived from it at first use;
 * messages are transferred, never cloned with a larger buffer.
 */
import { createPrivateKey, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { TlogError, ErrorCode } from '../errors.js';
import type { SignAlgorithm, SignOffload } from '../note/signers.js';
import { availableMldsaBackends, MLDSA_BACKEND_SOURCE, mldsaBackend, mldsaModuleUrls, type MldsaBackend } from './mldsa-backend.js';

/** The keys the offload is given: 32-byte seeds (RFC 8032 Ed25519; FIPS 204 ML-DSA-44 ξ). */
const SEED_SIZES: Record<SignAlgorithm, number> = { ed25519: 32, 'ml-dsa-44': 32 };

/** Keys a worker keeps before it forgets the oldest (re-sent when used again). */
const WORKER_KEY_CACHE = 1024;

/**
 * The worker's source. Only dynamic import(): an eval worker inherits the parent's execArgv, so
 * it runs as CommonJS or, under `node --input-type=module`, as an ES module, and import() is
 * what both have. Messages wait in the port until the listener is attached.
 */
const WORKER_SOURCE = String.raw`
(async () => {
  const { parentPort, workerData } = await import('node:worker_threads');
  const crypto = await import('node:crypto');
  // RFC 8410: PKCS#8 PrivateKeyInfo for Ed25519 is this prefix followed by the 32-byte seed.
  const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
  const makeMldsa = ${MLDSA_BACKEND_SOURCE};
  const urls = workerData.mldsaUrls;
  let mldsa = null;
  const mldsaLoad = makeMldsa(workerData.mldsa, (m) => import(m === 'node:crypto' ? m : urls[m])).then((b) => (mldsa = b));
  mldsaLoad.catch(() => {}); // reported to each ML-DSA call instead
  // ref -> node:crypto KeyObject (ed25519), or { seed, key } (ml-dsa-44: the backend's key, made at first use)
  const keys = new Map();

  const owns = (u8) => u8.byteOffset === 0 && u8.byteLength === u8.buffer.byteLength && u8.buffer instanceof ArrayBuffer;
  const messageOf = (e) => String((e && e.message) || e);
  const failed = (m, e) => parentPort.postMessage({ id: m.id, error: messageOf(e) });

  function reply(m, compute) {
    try {
      const sig = compute();
      const out = owns(sig) ? sig : new Uint8Array(sig);
      parentPort.postMessage({ id: m.id, sig: out }, [out.buffer]);
    } catch (e) {
      failed(m, e);
    }
  }

  function mldsaReply(m, k) {
    reply(m, () => {
      if (k.key === null) {
        k.key = mldsa.keyFromSeed(k.seed);
        k.seed = null;
      }
      return mldsa.sign(k.key, m.msg);
    });
  }

  parentPort.on('message', (m) => {
    if (m.crash) throw new Error('sign worker crashed on request (test hook)');
    try {
      for (const ref of m.drop) keys.delete(ref);
      if (m.key) {
        keys.set(m.ref, m.alg === 'ed25519'
          ? crypto.createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, m.key]), format: 'der', type: 'pkcs8' })
          : { seed: m.key, key: null });
      }
      const key = keys.get(m.ref);
      if (key === undefined) throw new Error('no key ' + m.ref + ' in the worker');
      if (m.failForTest) throw new Error('sign failed on request (test hook)');
      if (m.alg === 'ed25519') return reply(m, () => crypto.sign(null, m.msg, key));
      if (mldsa) return mldsaReply(m, key);
      mldsaLoad.then(() => mldsaReply(m, key), (e) => failed(m, 'load the ML-DSA-44 signer ' + workerData.mldsa + ': ' + messageOf(e)));
    } catch (e) {
      failed(m, e);
    }
  });
})();
`;

interface Request {
  readonly id: number;
  readonly alg: SignAlgorithm;
  /** The key's number; `key` carries its seed the first time this worker sees it. */
  readonly ref: number;
  readonly key?: Uint8Array;
  /** Test hook: the worker fails this call (see failNextCallForTest). */
  readonly failForTest?: true;
  /** Key numbers the worker should forget (its cache is bounded; we decide what it holds). */
  readonly drop: number[];
  readonly msg: Uint8Array;
}

type Reply = { readonly id: number; readonly sig: Uint8Array } | { readonly id: number; readonly error: string };

interface Call {
  readonly alg: SignAlgorithm;
  readonly ref: number;
  resolve(sig: Uint8Array): void;
  reject(e: Error): void;
}

/** One worker and what the pool knows about it. Owned by the pool, main thread only. */
interface Slot {
  readonly worker: Worker;
  readonly calls: Map<number, Call>;
  /** Key numbers this worker holds, oldest first. */
  readonly keys: Set<number>;
  dead: boolean;
}

export interface SignPoolOptions {
  /** Worker threads (default 1: with 2 cores, one signs while the main thread serves). */
  readonly workers?: number;
  /** The ML-DSA-44 backend (default: the process's, mldsaBackend()); one this runtime offers. */
  readonly mldsa?: MldsaBackend;
  /** Sign Ed25519 in the workers too (default false: on the calling thread, see #signEd25519Here). */
  readonly ed25519InWorker?: boolean;
}

/** RFC 8410: PKCS#8 PrivateKeyInfo for Ed25519 is this prefix followed by the 32-byte seed. */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** Whether transferring u8's buffer gives away exactly u8 (not Node's shared Buffer pool). */
function ownsBuffer(u8: Uint8Array): boolean {
  return u8.byteOffset === 0 && u8.byteLength === u8.buffer.byteLength && u8.buffer instanceof ArrayBuffer;
}

export class SignPool {
  readonly #size: number;
  readonly #slots: (Slot | undefined)[];
  readonly #mldsa: MldsaBackend;
  readonly #mldsaUrls: Record<string, string>;
  /** Seeds (by identity) to their numbers; a key is sent to each worker once. */
  readonly #keyRefs = new WeakMap<Uint8Array, number>();
  #nextRef = 1;
  #nextID = 1;
  #turn = 0;
  #closed = false;
  #failNext = false;
  /** Whether Ed25519 is signed on this thread (see #signEd25519Here). */
  readonly #inlineEd25519: boolean;
  /** Seeds (by identity) to their node:crypto keys, for Ed25519 signed here. */
  readonly #ed25519Keys = new WeakMap<Uint8Array, KeyObject>();

  constructor(opts: SignPoolOptions = {}) {
    const n = opts.workers ?? 1;
    if (!Number.isInteger(n) || n < 1) throw new TlogError(ErrorCode.badInput, `sign pool: workers must be a positive integer, got ${n}`);
    this.#size = n;
    this.#inlineEd25519 = opts.ed25519InWorker !== true;
    this.#slots = new Array<Slot | undefined>(n).fill(undefined);
    this.#mldsa = opts.mldsa ?? mldsaBackend();
    if (!availableMldsaBackends().includes(this.#mldsa)) {
      throw new TlogError(ErrorCode.badInput, `sign pool: this runtime (Node ${process.version}) has no ${JSON.stringify(this.#mldsa)} ML-DSA-44 signer`);
    }
    // Resolved here, where node_modules is reachable, whichever of dist/ or src/ this runs from.
    this.#mldsaUrls = mldsaModuleUrls();
  }

  /** The backend this pool's workers compute ML-DSA-44 signatures with. */
  get mldsaBackend(): MldsaBackend {
    return this.#mldsa;
  }

  /** This pool as a SignOffload for keyPair / loadLogKeys. */
  readonly offload: SignOffload = (alg, seed, message) => this.sign(alg, seed, message);

  /**
   * The raw signature of `message` by the key of `seed` (see SignOffload). `message` is
   * transferred to the worker when it owns its whole ArrayBuffer (it is then detached here),
   * copied otherwise.
   */
  sign(alg: SignAlgorithm, seed: Uint8Array, message: Uint8Array): Promise<Uint8Array> {
    if (this.#closed) return Promise.reject(new TlogError(ErrorCode.unavailable, 'sign pool is closed'));
    const size = SEED_SIZES[alg];
    if (size === undefined) return Promise.reject(new Error(`sign pool: unknown algorithm ${JSON.stringify(alg)}`));
    if (!(seed instanceof Uint8Array) || seed.length !== size) {
      return Promise.reject(new Error(`sign pool: ${alg} seed must be ${size} bytes`));
    }
    if (!(message instanceof Uint8Array)) return Promise.reject(new Error('sign pool: message must be a Uint8Array'));
    if (alg === 'ed25519' && this.#inlineEd25519) return this.#signEd25519Here(seed, message);
    let ref = this.#keyRefs.get(seed);
    if (ref === undefined) {
      ref = this.#nextRef++;
      this.#keyRefs.set(seed, ref);
    }
    const slot = this.#pick();
    const drop: number[] = [];
    let key: Uint8Array | undefined;
    if (!slot.keys.has(ref)) {
      // A copy of exactly the key: the caller's array may be a view into a larger buffer
      // (Node's Buffer pool), and cloning a view would send the whole buffer along.
      key = new Uint8Array(seed);
      slot.keys.add(ref);
      for (const old of slot.keys) {
        if (slot.keys.size <= WORKER_KEY_CACHE) break;
        slot.keys.delete(old);
        drop.push(old);
      }
    }
    const id = this.#nextID++;
    // Transfer, never clone, a view: cloning copies its whole ArrayBuffer. A view into a
    // shared buffer (a pooled Buffer) is copied first; Buffer#slice would not copy.
    const msg = ownsBuffer(message) ? message : new Uint8Array(message);
    const failForTest = this.#failNext;
    this.#failNext = false;
    const req: Request = { id, alg, ref, drop, msg, ...(key ? { key } : {}), ...(failForTest ? { failForTest: true as const } : {}) };
    const transfer = key ? [msg.buffer as ArrayBuffer, key.buffer as ArrayBuffer] : [msg.buffer as ArrayBuffer];
    return new Promise<Uint8Array>((resolve, reject) => {
      if (slot.calls.size === 0) slot.worker.ref();
      slot.calls.set(id, { alg, ref, resolve, reject });
      try {
        slot.worker.postMessage(req, transfer);
      } catch (e) {
        this.#settled(slot, id);
        slot.keys.delete(ref);
        reject(new Error(`sign ${alg}: post to worker: ${(e as Error).message}`));
      }
    });
  }

  /**
   * Ed25519 on this thread: node:crypto signs in tens of microseconds, less than handing the
   * call to a worker and back costs this thread (two messages and a thread wake-up each way).
   */
  #signEd25519Here(seed: Uint8Array, message: Uint8Array): Promise<Uint8Array> {
    try {
      let key = this.#ed25519Keys.get(seed);
      if (key === undefined) {
        key = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
        this.#ed25519Keys.set(seed, key);
      }
      if (this.#failNext) {
        this.#failNext = false;
        throw new Error('sign failed on request (test hook)');
      }
      return Promise.resolve(new Uint8Array(cryptoSign(null, message, key)));
    } catch (e) {
      return Promise.reject(new Error(`sign ed25519: ${(e as Error).message}`));
    }
  }

  /** Terminates the workers; pending and later calls reject with `unavailable`. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const slots = this.#slots.filter((s): s is Slot => !!s);
    this.#slots.fill(undefined);
    for (const s of slots) s.dead = true;
    for (const s of slots) this.#fail(s, new TlogError(ErrorCode.unavailable, 'sign pool is closed'));
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  /** Worker threads running now (they start on demand, up to `workers`). */
  get liveWorkers(): number {
    return this.#slots.filter((s) => s && !s.dead).length;
  }

  /** Calls in flight, over all workers. */
  get pending(): number {
    let n = 0;
    for (const s of this.#slots) n += s?.calls.size ?? 0;
    return n;
  }

  /**
   * Test hook: makes every live worker die as a crash would, by terminate() (at once, pending
   * calls in the worker are lost) or by an uncaught exception at its next message.
   */
  crashWorkersForTest(how: 'terminate' | 'throw' = 'terminate'): void {
    for (const s of this.#slots) {
      if (!s || s.dead) continue;
      if (how === 'terminate') void s.worker.terminate();
      else s.worker.postMessage({ crash: true });
    }
  }

  /** Test hook: the next call fails in its worker, as a signer error would (the worker lives on). */
  failNextCallForTest(): void {
    this.#failNext = true;
  }

  /** The least busy worker, starting one when all are busy and a slot is free; ties go round. */
  #pick(): Slot {
    let best: Slot | undefined;
    let free = -1;
    for (let k = 0; k < this.#size; k++) {
      const i = (this.#turn + k) % this.#size;
      const s = this.#slots[i];
      if (!s) {
        if (free < 0) free = i;
      } else if (!best || s.calls.size < best.calls.size) {
        best = s;
      }
    }
    this.#turn = (this.#turn + 1) % this.#size;
    if (best && (best.calls.size === 0 || free < 0)) return best;
    return this.#start(free);
  }

  #start(i: number): Slot {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { mldsa: this.#mldsa, mldsaUrls: this.#mldsaUrls } });
    worker.unref();
    const slot: Slot = { worker, calls: new Map(), keys: new Set(), dead: false };
    this.#slots[i] = slot;
    worker.on('message', (r: Reply) => {
      const call = this.#settled(slot, r.id);
      if (!call) return;
      if ('sig' in r) return call.resolve(r.sig);
      // The worker may not hold the key after a failure: send it again next time.
      slot.keys.delete(call.ref);
      call.reject(new Error(`sign ${call.alg} in worker: ${r.error}`));
    });
    const gone = (why: string) => {
      if (slot.dead) return;
      slot.dead = true;
      if (this.#slots[i] === slot) this.#slots[i] = undefined;
      this.#fail(slot, new TlogError(ErrorCode.unavailable, `sign worker ${why}; the next call starts a new one`));
    };
    worker.on('error', (e) => gone(`failed: ${e.message}`));
    // A reply we cannot read belongs to a call we cannot name: restart, failing them all.
    worker.on('messageerror', () => void worker.terminate());
    worker.on('exit', (code) => gone(`exited with code ${code}`));
    return slot;
  }

  /** Removes a call that has its answer; the worker stops holding the process when idle. */
  #settled(slot: Slot, id: number): Call | undefined {
    const call = slot.calls.get(id);
    if (!call) return undefined;
    slot.calls.delete(id);
    if (slot.calls.size === 0) slot.worker.unref();
    return call;
  }

  #fail(slot: Slot, e: Error): void {
    const calls = [...slot.calls.values()];
    slot.calls.clear();
    slot.worker.unref();
    for (const c of calls) c.reject(e);
  }
}

let shared: SignPool | null = null;

/**
 * The process-wide pool the logs sign with unless given another: one worker serves every
 * tenant (signing is one batch at a time per log, and the second core is shared with HTTP),
 * with the process's ML-DSA-44 backend (mldsaBackend()).
 */
export function sharedSignPool(): SignPool {
  const n = Number(process.env.TLOG_SIGN_WORKERS ?? 1);
  shared ??= new SignPool({ workers: Number.isInteger(n) && n >= 1 && n <= 16 ? n : 1 });
  return shared;
}
