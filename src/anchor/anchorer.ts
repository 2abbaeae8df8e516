/**
 * The anchoring job of one tenant: now and then, the newest checkpoint (cosigned where
 * witnesses are configured) becomes a hashedrekord entry in Sigstore Rekor, and the Sigstore
 * bundle Rekor answers with is kept beside the checkpoint as a receipt anyone can verify offline:
 *
 *   checkpoints/<tenant>/anchors/<N path>.checkpoint     the exact checkpoint bytes anchored
 *   checkpoints/<tenant>/anchors/<N path>.sigstore.json  the Sigstore bundle (Rekor's receipt)
 *   checkpoints/<tenant>/anchors/anchor-key.pem          the anchoring public key
 *
 * The life of a job (Outbox explains why nothing is lost or uploaded twice):
 *   sign SHA-256(checkpoint) with the anchoring key -> record the job durably -> (Rekor v2 only)
 *   get an RFC 3161 timestamp over the signature from the configured TSA, verify it against the
 *   TSA's configured chain and record it in the job -> upload through @sigstore/sign (our Signer,
 *   the v1 or v2 witness, the recorded timestamp) -> verify the bundle with @sigstore/verify
 *   against the configured Rekor key and TSA chain -> store the receipt durably -> mark the job
 *   done with the attested time (v1: the SET's integrated time; v2: the TSA's time).
 * The timestamp comes first so that a refused one (forged, from another TSA, over other bytes)
 * leaves nothing anywhere: no receipt, no timestamp in the job, no Rekor entry.
 * A failed attempt records its error and the time of the next one (exponential backoff, at
 * least Retry-After); the timer retries it, also after a restart.
 *
 * Concurrency: one job at a time per Anchorer; one Anchorer per tenant across processes (a
 * lock on the outbox). Nothing here runs inside the log's sequencer: appends never wait for Rekor.
 */
import { createHash, verify as cryptoVerify } from 'node:crypto';
import { constants as fsc, promises as fsp } from 'node:fs';
import path from 'node:path';
import { bundleToJSON } from '@sigstore/bundle';
import { HashAlgorithm } from '@sigstore/protobuf-specs';
import type { Signature, SignatureBundle, Signer, VerificationMaterial, Witness } from '@sigstore/sign';
import { lockFileExclusive, LOCK_HELD, NativeError, type FileLock } from '../../native/index.js';
import { TlogError, ErrorCode, isTlogError } from '../errors.js';
import type { Logger } from '../log/log.js';
import type { LogPaths } from '../tile-store/paths.js';
import { parseCheckpoint } from '../note/checkpoint.js';
import { openNote, parseNote, type NoteVerifier } from '../note/note.js';
import { DurableWriter, readIfExists } from '../storage/durable.js';
import type { ObjectStore } from '../storage/object-store.js';
import { backoffDelay, HOUR_MS, type AnchorConfig } from './config.js';
import { loadOrCreateAnchorKey, type AnchorKey } from './key.js';
import { ANCHOR_PUBLIC_KEY_FILE, ANCHORS_DIR, CHECKPOINT_SUFFIX, Outbox, RECEIPT_SUFFIX, receiptBase, type AnchorJob } from './outbox.js';
import { RekorError, rekorV1Witness, rekorV2Witness } from './rekor.js';
import { parseBundle, rekorTrust, verifyAnchorBundle, verifyAnchorTimestamp, type ReceiptSummary, type RekorTrust } from './trust.js';
import { plausibleTime, requestTimestamp, tsaTrust, type TsaTrust } from './tsa.js';
import { sigstoreSign } from './sigstore-sign.js';

/** How far the TSA's clock may be from ours before its time is not believed. */
export const TSA_CLOCK_SKEW_MS = 5 * 60_000;

const silent: Logger = { info() {}, warn() {}, error() {} };

/** A @sigstore/sign Signer that hands out the signature recorded in the job, after checking it. */
export class RecordedSigner implements Signer {
  constructor(
    private readonly key: AnchorKey,
    private readonly signature: Uint8Array,
  ) {}

  async sign(data: Buffer): Promise<Signature> {
    // The recorded signature must be over exactly these bytes by our key: re-sending it is what
    // makes a retry propose the identical entry.
    if (!cryptoVerify('sha256', data, this.key.publicKey, this.signature)) {
      throw new TlogError(ErrorCode.corrupt, 'recorded anchoring signature does not verify over the checkpoint');
    }
    return { signature: Buffer.from(this.signature), key: { $case: 'publicKey', publicKey: this.key.publicKeyPem, hint: this.key.keyID } };
  }
}

/** A @sigstore/sign Witness that hands out the RFC 3161 timestamp recorded in the job. */
export function recordedTimestamp(der: Uint8Array): Witness {
  return {
    async testify(): Promise<VerificationMaterial> {
      return { rfc3161Timestamps: [{ signedTimestamp: Buffer.from(der) }] };
    },
  };
}

/** A @sigstore/sign Signer over the anchoring key (deterministic ECDSA P-256). */
export class AnchorKeySigner implements Signer {
  constructor(private readonly key: AnchorKey) {}
  async sign(data: Buffer): Promise<Signature> {
    return { signature: Buffer.from(this.key.sign(data)), key: { $case: 'publicKey', publicKey: this.key.publicKeyPem, hint: this.key.keyID } };
  }
}

export interface AnchorerOptions {
  readonly paths: LogPaths;
  readonly config: AnchorConfig;
  /** The newest checkpoint to anchor on the timer (e.g. `() => log.committed.note`). */
  readonly latest?: () => string;
  /** Our log's note verifiers: anchorNow refuses a checkpoint they do not verify. */
  readonly logVerifiers?: readonly NoteVerifier[];
  /** Defaults to the key in <state>/keys/, created when missing. */
  readonly key?: AnchorKey;
  /**
   * Cluster mode: the tenant's store (scoped to its prefix). The outbox is kept there too, so
   * the next holder of the tenant finishes the jobs this one leaves (outbox.ts), and the
   * anchoring public key is written there (`anchors/anchor-key.pem`, immutable): a node with
   * another key is refused at open instead of anchoring under a key the others do not have.
   */
  readonly store?: ObjectStore;
  readonly logger?: Logger;
  /** Milliseconds since the epoch (tests move time). */
  readonly now?: () => number;
  /** Test hooks: called at the named step; a hook that never resolves freezes the job there. */
  readonly hooks?: {
    readonly afterEnqueue?: (job: AnchorJob) => Promise<void>;
    readonly afterReceiptStored?: (job: AnchorJob) => Promise<void>;
  };
}

/** What callers see of a job: the job's own fields, with the receipt as an absolute path. */
export type AnchorRecord = Pick<
  AnchorJob,
  | 'treeSize'
  | 'state'
  | 'digest'
  | 'rekor'
  | 'createdAt'
  | 'attempts'
  | 'nextAttemptAt'
  | 'lastError'
  | 'doneAt'
  | 'rekorLogIndex'
  | 'attestedAt'
  | 'attestedBy'
> & {
  /** Absolute path of the receipt, once done. */
  readonly receipt?: string;
};

export class Anchorer {
  private readonly outbox: Outbox;
  private readonly trust: RekorTrust;
  private readonly tsa: readonly TsaTrust[];
  private readonly witness: Witness;
  private readonly files = new DurableWriter({ mode: 0o644 });
  private readonly logger: Logger;
  private readonly now: () => number;
  private queue: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | null = null;
  private ticking: Promise<void> | null = null;
  private stopped = false;

  private constructor(
    private readonly opts: AnchorerOptions,
    readonly key: AnchorKey,
    private readonly lock: FileLock,
    outbox: Outbox,
  ) {
    this.outbox = outbox;
    this.logger = opts.logger ?? silent;
    this.now = opts.now ?? Date.now;
    const rk = opts.config.rekor;
    this.trust = rekorTrust(rk.publicKey, rk.url, rk.origin);
    this.tsa = opts.config.tsa ? [tsaTrust(opts.config.tsa.certChain)] : [];
    this.witness = rk.apiVersion === 'v2' ? rekorV2Witness(opts.config, { logID: this.trust.logID, spki: key.spki }) : rekorV1Witness(opts.config);
  }

  /**
   * Opens the tenant's anchoring: loads (or creates) the key, takes the outbox lock (a second
   * process fails at once), publishes the anchoring public key. Does not start the timer.
   */
  static async open(opts: AnchorerOptions): Promise<Anchorer> {
    const key = opts.key ?? (await loadOrCreateAnchorKey(opts.paths.stateDir));
    const outbox = new Outbox(opts.paths.stateDir, opts.store);
    await outbox.init();
    const lockPath = path.join(outbox.dir, 'lock');
    await (await fsp.open(lockPath, fsc.O_WRONLY | fsc.O_CREAT, 0o600)).close();
    let lock: FileLock;
    try {
      lock = lockFileExclusive(lockPath);
    } catch (e) {
      if (e instanceof NativeError && e.code === LOCK_HELD) {
        throw new TlogError(ErrorCode.locked, `anchoring of tenant ${opts.paths.tenant} is run by another process (${lockPath} is locked)`);
      }
      throw e;
    }
    try {
      if (opts.store) {
        try {
          await opts.store.putImmutable(`${ANCHORS_DIR}/${ANCHOR_PUBLIC_KEY_FILE}`, Buffer.from(key.publicKeyPem));
        } catch (e) {
          if (!isTlogError(e, ErrorCode.immutableConflict)) throw e;
          throw new TlogError(
            ErrorCode.immutableConflict,
            `anchoring of tenant ${opts.paths.tenant}: this node's anchoring key is not the one in ${opts.store.where}${ANCHORS_DIR}/${ANCHOR_PUBLIC_KEY_FILE}: deploy the same ${'anchor-p256.pem'} (in the tenant's keysDir) to every node`,
            { cause: e },
          );
        }
        const imported = await outbox.importFromStore();
        if (imported.length > 0) opts.logger?.info({ tenant: opts.paths.tenant, treeSizes: imported }, 'anchoring: jobs left by the last holder taken over');
      }
      const a = new Anchorer(opts, key, lock, outbox);
      // Immutable: a different key under the same name means someone replaced the key file.
      await a.files.write([
        { path: path.join(opts.paths.historyDir, ANCHORS_DIR, ANCHOR_PUBLIC_KEY_FILE), data: Buffer.from(key.publicKeyPem), kind: 'immutable' },
      ]);
      return a;
    } catch (e) {
      lock.release();
      throw e;
    }
  }

  get config(): AnchorConfig {
    return this.opts.config;
  }

  /** Jobs waiting in the outbox (for Rekor or the TSA), as of the last time this process wrote or read it; no disk read. */
  get pendingJobs(): number {
    return this.outbox.pendingCount;
  }

  /** Starts the timer: non-blocking, unref'd; each tick retries due jobs and anchors when the interval passed. */
  start(): void {
    if (this.timer || this.stopped || !this.opts.config.enabled) return;
    this.timer = setInterval(() => void this.tick(), this.opts.config.tickMs);
    this.timer.unref();
    void this.tick();
  }

  /** One round of the timer's work; exposed for tests and for `tlog anchor now`-like callers. */
  tick(): Promise<void> {
    if (this.ticking) return this.ticking;
    this.ticking = this.runTick()
      .catch((e) => this.logger.error({ tenant: this.opts.paths.tenant, err: (e as Error).message }, 'anchoring tick failed'))
      .finally(() => {
        this.ticking = null;
      });
    return this.ticking;
  }

  private async runTick(): Promise<void> {
    await this.retryDue();
    if (this.stopped || !this.opts.latest) return;
    const note = this.opts.latest();
    const cp = parseCheckpoint(parseNote(note).text);
    const jobs = await this.outbox.all();
    const newest = jobs.reduce<AnchorJob | null>((a, j) => (!a || Date.parse(j.createdAt) > Date.parse(a.createdAt) ? j : a), null);
    // The empty tree is not worth a Rekor entry; an unchanged tree is anchored already.
    if (cp.treeSize === 0 || (newest && newest.treeSize >= cp.treeSize)) return;
    if (newest && this.now() - Date.parse(newest.createdAt) < this.opts.config.intervalHours * HOUR_MS) return;
    await this.anchorNow(note);
  }

  /** Runs every pending job whose next attempt is due. */
  async retryDue(): Promise<AnchorRecord[]> {
    const out: AnchorRecord[] = [];
    for (const job of await this.outbox.all()) {
      if (this.stopped) break;
      if (job.state !== 'pending') continue;
      if (job.nextAttemptAt && Date.parse(job.nextAttemptAt) > this.now()) continue;
      out.push(await this.serial(() => this.run(job.treeSize)));
    }
    return out;
  }

  /**
   * Anchors this checkpoint now: records the job durably, uploads, verifies, stores the receipt.
   * Resolves with the job's record, `done` or still `pending` with its error and next attempt
   * (the timer retries it). One job per tree size: a size already anchored returns its record
   * (a later, cosigned note of the same tree is the same tree head). Throws only for a note that
   * is not one of our checkpoints, or when the disk fails.
   */
  async anchorNow(note: string): Promise<AnchorRecord> {
    if (this.stopped) throw new TlogError(ErrorCode.unavailable, `anchoring of ${this.opts.paths.tenant} is stopped`);
    let treeSize: number;
    let origin: string;
    try {
      ({ treeSize, origin } = parseCheckpoint(parseNote(note).text));
      if (this.opts.logVerifiers) openNote(note, this.opts.logVerifiers);
    } catch (e) {
      throw new TlogError(ErrorCode.badInput, `anchor: not a checkpoint of this log: ${(e as Error).message}`);
    }
    return this.serial(async () => {
      const existing = await this.outbox.get(treeSize);
      if (existing?.state === 'done') return this.record(existing);
      if (existing) {
        // Asked explicitly: retry now, whatever the backoff said (and a failed job once more).
        await this.outbox.put({ ...existing, state: 'pending', nextAttemptAt: null });
        return this.run(treeSize);
      }
      const bytes = Buffer.from(note, 'utf8');
      const job: AnchorJob = {
        version: 1,
        treeSize,
        origin,
        digest: createHash('sha256').update(bytes).digest('hex'),
        note,
        signature: Buffer.from(this.key.sign(bytes)).toString('base64'),
        anchorKeyID: this.key.keyID,
        rekor: { apiVersion: this.opts.config.rekor.apiVersion, url: this.opts.config.rekor.url },
        state: 'pending',
        createdAt: new Date(this.now()).toISOString(),
        attempts: 0,
        nextAttemptAt: null,
        lastError: null,
      };
      // Recorded before the upload: whatever happens next, a restart finds it and finishes it.
      await this.outbox.put(job);
      await this.opts.hooks?.afterEnqueue?.(job);
      return this.run(treeSize);
    });
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.queue.then(fn, fn);
    this.queue = p.catch(() => {});
    return p;
  }

  private receiptPaths(treeSize: number): { receipt: string; checkpoint: string; rel: string } {
    const base = receiptBase(treeSize);
    return {
      rel: base + RECEIPT_SUFFIX,
      receipt: path.join(this.opts.paths.historyDir, base + RECEIPT_SUFFIX),
      checkpoint: path.join(this.opts.paths.historyDir, base + CHECKPOINT_SUFFIX),
    };
  }

  /** One attempt at a pending job. Never throws for Rekor trouble: that is recorded in the job. */
  private async run(treeSize: number): Promise<AnchorRecord> {
    const job = await this.outbox.get(treeSize);
    if (!job) throw new Error(`anchor job ${treeSize} vanished`);
    if (job.state !== 'pending') return this.record(job);
    const p = this.receiptPaths(treeSize);
    const noteBytes = Buffer.from(job.note, 'utf8');
    const verifyOpts = {
      rekor: this.trust,
      checkpointNote: noteBytes,
      anchorPublicKey: this.key.publicKeyPem,
      treeSize,
      tsa: this.tsa,
      ...(this.opts.logVerifiers ? { logVerifiers: this.opts.logVerifiers } : {}),
    };

    // A crash after the receipt was stored but before the job was marked done: finish the mark.
    const stored = await readIfExists(p.receipt);
    if (stored) {
      try {
        const bundle = parseBundle(stored.toString('utf8'));
        const summary = verifyAnchorBundle(bundle, verifyOpts);
        return this.record(await this.markDone(job, summary, p.rel, stored));
      } catch (e) {
        this.logger.warn({ tenant: this.opts.paths.tenant, treeSize, err: (e as Error).message }, 'stored anchor receipt does not verify: fetching it again');
      }
    }

    let attempt: AnchorJob = { ...job, attempts: job.attempts + 1 };
    try {
      const signature = Buffer.from(job.signature, 'base64');
      let stamp: Uint8Array | null = attempt.timestamp ? Buffer.from(attempt.timestamp, 'base64') : null;
      if (this.opts.config.tsa && !stamp) {
        stamp = await this.timestamp(attempt, noteBytes, signature);
        // Durable before the upload: a retry or a restart uses this timestamp, never asks again.
        attempt = { ...attempt, timestamp: Buffer.from(stamp).toString('base64') };
        await this.outbox.put(attempt);
      }
      const { MessageSignatureBundleBuilder } = await sigstoreSign();
      const builder = new MessageSignatureBundleBuilder({
        signer: new RecordedSigner(this.key, signature),
        witnesses: stamp ? [this.witness, recordedTimestamp(stamp)] : [this.witness],
      });
      const bundle = await builder.create({ data: noteBytes });
      // Nothing counts as done before it verifies against the configured Rekor key.
      const summary = verifyAnchorBundle(bundle, verifyOpts);
      const json = Buffer.from(JSON.stringify(bundleToJSON(bundle)) + '\n');
      // The checkpoint bytes first: a receipt on disk always has its checkpoint beside it.
      await this.files.write([{ path: p.checkpoint, data: noteBytes, kind: 'immutable' }]);
      await this.files.write([{ path: p.receipt, data: json, kind: 'replace' }]);
      await this.opts.hooks?.afterReceiptStored?.(attempt);
      const done = await this.markDone(attempt, summary, p.rel, json);
      this.logger.info(
        {
          tenant: this.opts.paths.tenant,
          treeSize,
          rekorLogIndex: summary.rekorLogIndex,
          receipt: p.rel,
          attestedAt: summary.attestedAt,
          attestedBy: summary.attestedBy,
        },
        'checkpoint anchored in rekor',
      );
      return this.record(done);
    } catch (e) {
      if (
        isTlogError(e) &&
        (e.code === ErrorCode.io || e.code === ErrorCode.diskFull || e.code === ErrorCode.immutableConflict || e.code === ErrorCode.corrupt)
      ) {
        // Our own disk or state is at fault, not Rekor: say so loudly, leave the job as it was.
        throw e;
      }
      const rekorErr = e instanceof RekorError ? e : null;
      // A receipt that does not verify is retried too: the usual cause is a wrong configured
      // key, and the entry stays in Rekor, so a later attempt (409) fetches it again.
      const retryable = rekorErr ? rekorErr.retryable : true;
      const msg = (e as Error).message ?? String(e);
      const delay = backoffDelay(this.opts.config, attempt.attempts, rekorErr?.retryAfterMs);
      const next: AnchorJob = retryable
        ? { ...attempt, lastError: msg, nextAttemptAt: new Date(this.now() + delay).toISOString() }
        : { ...attempt, state: 'failed', lastError: msg, nextAttemptAt: null };
      await this.outbox.put(next);
      this.logger.warn(
        { tenant: this.opts.paths.tenant, treeSize, attempts: next.attempts, retryInMs: retryable ? delay : null, err: msg },
        'anchoring attempt failed',
      );
      return this.record(next);
    }
  }

  /**
   * Gets an RFC 3161 timestamp over the job's signature and verifies it before it is used:
   * against the configured TSA chain, and its time must lie between the signature and now.
   */
  private async timestamp(job: AnchorJob, note: Buffer, signature: Buffer): Promise<Uint8Array> {
    const tsa = this.opts.config.tsa!;
    const content: SignatureBundle = {
      $case: 'messageSignature',
      messageSignature: { messageDigest: { algorithm: HashAlgorithm.SHA2_256, digest: createHash('sha256').update(note).digest() }, signature },
    };
    const der = await requestTimestamp(tsa.url, content, this.opts.config.timeoutMs);
    const { time } = verifyAnchorTimestamp(der, { signature, checkpointNote: note, signingKey: this.key.publicKey, tsa: this.tsa });
    if (!plausibleTime(time, Date.parse(job.createdAt), this.now(), TSA_CLOCK_SKEW_MS)) {
      throw new TlogError(
        ErrorCode.verification,
        `timestamp: the TSA's time ${time.toISOString()} is not between the signature (${job.createdAt}) and now (${new Date(this.now()).toISOString()}), give or take ${TSA_CLOCK_SKEW_MS / 60_000} minutes`,
      );
    }
    return Buffer.from(der);
  }

  /** Marks the job done with what the verified receipt says; `receipt` is its exact stored bytes. */
  private async markDone(job: AnchorJob, summary: ReceiptSummary, rel: string, receipt: Uint8Array): Promise<AnchorJob> {
    const done: AnchorJob = {
      ...job,
      state: 'done',
      nextAttemptAt: null,
      lastError: null,
      doneAt: new Date(this.now()).toISOString(),
      rekorLogIndex: summary.rekorLogIndex,
      receipt: rel,
      receiptSha256: createHash('sha256').update(receipt).digest('hex'),
      attestedAt: summary.attestedAt,
      attestedBy: summary.attestedBy,
    };
    await this.outbox.put(done);
    return done;
  }

  private record(j: AnchorJob): AnchorRecord {
    return {
      treeSize: j.treeSize,
      state: j.state,
      digest: j.digest,
      rekor: j.rekor,
      createdAt: j.createdAt,
      attempts: j.attempts,
      nextAttemptAt: j.nextAttemptAt,
      lastError: j.lastError,
      ...(j.doneAt ? { doneAt: j.doneAt } : {}),
      ...(j.rekorLogIndex !== undefined ? { rekorLogIndex: j.rekorLogIndex } : {}),
      ...(j.attestedAt ? { attestedAt: j.attestedAt, attestedBy: j.attestedBy } : {}),
      ...(j.receipt ? { receipt: path.join(this.opts.paths.historyDir, j.receipt) } : {}),
    };
  }

  /** Every job of the tenant, by tree size. */
  async list(): Promise<AnchorRecord[]> {
    return (await this.outbox.all()).map((j) => this.record(j));
  }

  /** Stops the timer, lets the job in flight finish, releases the outbox lock. Idempotent. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.ticking;
    await this.queue;
    this.lock.release();
  }
}
