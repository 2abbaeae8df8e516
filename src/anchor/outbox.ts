/**
 * The anchoring outbox: one JSON record per anchored tree size in <state>/<tenant>/anchor-outbox/.
 *
 * Contract: put() is durable on return (temp file, fsync, rename, fsync directory). A job is
 * put (state `pending`, with the exact checkpoint bytes and the signature) BEFORE its first
 * upload, updated after every failed attempt (attempts, next attempt time: backoff survives
 * restarts), and put with state `done` only after its receipt is durable and verified. So after
 * a crash anywhere, every upload that may have reached Rekor has a pending record that re-sends
 * byte-identical content, which Rekor answers with 409 and the existing entry: one entry per job.
 * Not safe for two processes: the Anchorer holds the outbox lock.
 *
 * A tenant of a cluster (src/cluster) moves between nodes, and the directory above is in the
 * node's local cache: there the outbox is also kept in the tenant's store, written before the
 * local file on every put(), so the record of a job is in the store before its first upload:
 *
 *   anchors/jobs/<16 digits>.json   mutable (If-Match the version this holder last wrote or
 *                                   read): the job while it is not done
 *   anchors/done/<16 digits>.json   immutable: the job once done
 *
 * The next holder imports (importFromStore) every job not done, to retry at once (Rekor answers
 * a re-sent entry with 409 and the existing one: still one entry per job), and the newest done
 * one (the anchoring interval counts from it). A holder that lost the tenant and still runs
 * fails its next write's condition.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { TlogError, ErrorCode, ioError } from '../errors.js';
import { formatIndexPath } from '../tiles/layout.js';
import { writeFileDurably } from '../storage/durable.js';
import type { RekorApiVersion } from './config.js';
import { isPreconditionFailed, type ObjectStore } from '../storage/object-store.js';

export const OUTBOX_DIR = 'anchor-outbox';
export const ANCHORS_DIR = 'anchors';
export const RECEIPT_SUFFIX = '.sigstore.json';
export const CHECKPOINT_SUFFIX = '.checkpoint';
export const ANCHOR_PUBLIC_KEY_FILE = 'anchor-key.pem';

export const JOB_STATES = ['pending', 'done', 'failed'] as const;
export type JobState = (typeof JOB_STATES)[number];

export interface AnchorJob {
  readonly version: 1;
  readonly treeSize: number;
  readonly origin: string;
  /** Hex SHA-256 of `note` as UTF-8 bytes: the hashedrekord digest. */
  readonly digest: string;
  /** The exact signed checkpoint anchored (cosigned where witnesses are configured). */
  readonly note: string;
  /** Base64 DER ECDSA signature over the note by the anchoring key, made once at enqueue. */
  readonly signature: string;
  /** Hex SHA-256 of the anchoring key's SPKI. */
  readonly anchorKeyID: string;
  readonly rekor: { readonly apiVersion: RekorApiVersion; readonly url: string };
  readonly state: JobState;
  readonly createdAt: string;
  readonly attempts: number;
  /** ISO time before which no retry is made; null once done. */
  readonly nextAttemptAt: string | null;
  readonly lastError: string | null;
  readonly doneAt?: string;
  /**
   * Rekor v2: the TSA's TimeStampResp over `signature` (base64 DER), recorded once it verified,
   * before the upload; every later attempt puts this same timestamp into the receipt.
   */
  readonly timestamp?: string;
  /** Rekor's index of the entry, once done. */
  readonly rekorLogIndex?: number;
  /** Receipt path relative to the tenant's history directory, once done. */
  readonly receipt?: string;
  /** Hex SHA-256 of the receipt's bytes as verified and stored: what the listing vouches for. */
  readonly receiptSha256?: string;
  /** The verified time of the anchor (ISO 8601), once done: v1 the SET's, v2 the TSA's. */
  readonly attestedAt?: string;
  /** Who attested it: `rekor <url>` (v1 SET) or the TSA certificate's subject (v2). */
  readonly attestedBy?: string;
}

/** anchors/<tlog-tiles N path>: anchors/005, anchors/x001/234: beside log/<N path>. */
export function receiptBase(treeSize: number): string {
  return `${ANCHORS_DIR}/${formatIndexPath(treeSize)}`;
}

const JOBS_KEY = 'anchors/jobs/';
const DONE_KEY = 'anchors/done/';
const jobName = (treeSize: number) => `${String(treeSize).padStart(16, '0')}.json`;
const JOB_NAME = /^([0-9]{16})\.json$/;

export class Outbox {
  readonly dir: string;
  /** Tree sizes of the jobs pending as this object last wrote or listed them (for metrics: no disk read). */
  private readonly pending = new Set<number>();
  /** Cluster mode: per tree size, the etag of anchors/jobs/<N> as this holder last wrote or read it. */
  private readonly etags = new Map<number, string>();
  constructor(
    stateDir: string,
    /** Cluster mode: the tenant's store, where every record is kept too (see the head of this file). */
    private readonly store?: ObjectStore,
  ) {
    this.dir = path.join(stateDir, OUTBOX_DIR);
  }

  /**
   * Cluster mode, on taking the tenant: copies into the local outbox every job of the store not
   * done (due at once) and the newest done one, and done records of jobs the local copy still
   * has as not done. Returns the tree sizes imported as pending.
   */
  async importFromStore(): Promise<number[]> {
    if (!this.store) return [];
    // Keys only (one listing each): what is imported is read.
    const sizes = (keys: string[], prefix: string) =>
      new Set(
        keys.flatMap((k) => {
          const m = JOB_NAME.exec(k.slice(prefix.length));
          return m ? [Number(m[1])] : [];
        }),
      );
    const [jobs, done] = await Promise.all([
      this.store.list(JOBS_KEY).then((l) => sizes(l, JOBS_KEY)),
      this.store.list(DONE_KEY).then((l) => sizes(l, DONE_KEY)),
    ]);
    const local = new Map((await this.all()).map((j) => [j.treeSize, j]));
    const fetch = async (key: string): Promise<{ job: AnchorJob; etag: string } | null> => {
      const o = await this.store!.get(key);
      return o === null ? null : { job: parseJob(new TextDecoder().decode(o.bytes), `${this.store!.where}${key}`), etag: o.etag };
    };
    const imported: number[] = [];
    for (const n of jobs) {
      if (done.has(n)) continue;
      const got = await fetch(JOBS_KEY + jobName(n));
      if (got === null) continue;
      this.etags.set(n, got.etag);
      // A new holder tries at once: the last one's backoff was its own.
      const job = got.job.state === 'pending' ? { ...got.job, nextAttemptAt: null } : got.job;
      await this.writeLocal(job);
      if (job.state === 'pending') imported.push(n);
    }
    const newestDone = Math.max(-1, ...done.keys());
    for (const n of done.keys()) {
      if (local.get(n)?.state === 'done' || (n !== newestDone && !local.has(n))) continue;
      const got = await fetch(DONE_KEY + jobName(n));
      if (got !== null) await this.writeLocal(got.job);
    }
    return imported;
  }

  async init(): Promise<void> {
    await fsp.mkdir(this.dir, { recursive: true, mode: 0o700 });
  }

  private file(treeSize: number): string {
    // Zero-padded so a directory listing sorts by tree size.
    return path.join(this.dir, `${String(treeSize).padStart(16, '0')}.json`);
  }

  /** Durable on return (in the store first, in cluster mode). */
  async put(job: AnchorJob): Promise<void> {
    if (this.store) await this.putInStore(job);
    await this.writeLocal(job);
  }

  private async writeLocal(job: AnchorJob): Promise<void> {
    await writeFileDurably(this.file(job.treeSize), JSON.stringify(job, null, 2) + '\n', 0o600);
    this.note(job);
  }

  private async putInStore(job: AnchorJob): Promise<void> {
    const bytes = new TextEncoder().encode(JSON.stringify(job, null, 2) + '\n');
    const name = jobName(job.treeSize);
    if (job.state === 'done') {
      await this.store!.putImmutable(DONE_KEY + name, bytes);
      return;
    }
    const known = this.etags.get(job.treeSize);
    try {
      this.etags.set(job.treeSize, await this.store!.putMutable(JOBS_KEY + name, bytes, known === undefined ? 'absent' : { etag: known }));
    } catch (e) {
      if (!isPreconditionFailed(e)) throw e;
      throw new TlogError(ErrorCode.conflict, `anchoring job ${job.treeSize}: another holder of the tenant wrote ${this.store!.where}${JOBS_KEY}${name}`, {
        cause: e,
      });
    }
  }

  /** Jobs pending, as of the last put() or all() of this object. */
  get pendingCount(): number {
    return this.pending.size;
  }

  private note(job: AnchorJob): void {
    if (job.state === 'pending') this.pending.add(job.treeSize);
    else this.pending.delete(job.treeSize);
  }

  async get(treeSize: number): Promise<AnchorJob | null> {
    const p = this.file(treeSize);
    let text: string;
    try {
      text = await fsp.readFile(p, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw ioError('read', p, e);
    }
    return parseJob(text, p);
  }

  /** Every job, by tree size. */
  async all(): Promise<AnchorJob[]> {
    let names: string[];
    try {
      names = await fsp.readdir(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw ioError('readdir', this.dir, e);
    }
    const jobs: AnchorJob[] = [];
    for (const n of names.filter((n) => /^[0-9]{16}\.json$/.test(n)).sort()) {
      const p = path.join(this.dir, n);
      jobs.push(parseJob(await fsp.readFile(p, 'utf8'), p));
    }
    this.pending.clear();
    for (const j of jobs) this.note(j);
    return jobs;
  }
}

function parseJob(text: string, where: string): AnchorJob {
  let j: AnchorJob;
  try {
    j = JSON.parse(text) as AnchorJob;
  } catch (e) {
    throw new TlogError(ErrorCode.corrupt, `${where}: ${(e as Error).message}`);
  }
  if (j.version !== 1 || !Number.isSafeInteger(j.treeSize) || typeof j.note !== 'string' || !JOB_STATES.includes(j.state)) {
    throw new TlogError(ErrorCode.corrupt, `${where}: not an anchoring job record`);
  }
  return j;
}
