/**
 * Receipts on disk: reading, listing and verifying `checkpoints/<tenant>/anchors/<N path>.sigstore.json`
 * with the `.checkpoint` beside it. Verification is offline: all it needs is the Rekor log's
 * public key, for a Rekor v2 receipt the timestamp authority's certificate chain (and, to prove
 * the checkpoint is ours, our log's verifier keys).
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { TlogError, ErrorCode, ioError } from '../errors.js';
import type { NoteVerifier } from '../note/note.js';
import { readIfExists } from '../storage/durable.js';
import { parseTilePath } from '../tiles/layout.js';
import { ANCHORS_DIR, CHECKPOINT_SUFFIX, Outbox, RECEIPT_SUFFIX, type AnchorJob } from './outbox.js';
import { parseBundle, rekorTrust, verifyAnchorBundle, type ReceiptSummary } from './trust.js';
import { tsaTrust } from './tsa.js';

export interface VerifyReceiptOptions {
  /** The Rekor log's public key, SPKI PEM. */
  readonly rekorPublicKey: string;
  /** The exact checkpoint anchored; default: the `.checkpoint` file beside the receipt. */
  readonly checkpointNote?: string | Uint8Array;
  /** Our log's verifiers: when given, the checkpoint must be signed by the log. */
  readonly logVerifiers?: readonly NoteVerifier[];
  /** When given, the entry must be signed by this anchoring key (SPKI PEM). */
  readonly anchorPublicKey?: string;
  /** Matched against the names on Rekor's checkpoint signatures; default: the origin's host part. */
  readonly rekorUrl?: string;
  /** The Rekor log's origin (needed for an Ed25519 v2 log key). */
  readonly rekorOrigin?: string;
  /** Certificate chains (PEM, timestamping certificate first) of the trusted timestamp authorities. */
  readonly tsaCertChains?: readonly string[];
}

/** The tree size a receipt path names (anchors/x001/234.sigstore.json -> 1234), or null. */
export function treeSizeOfReceipt(file: string): number | null {
  const norm = '/' + file.split(path.sep).join('/');
  const i = norm.lastIndexOf(`/${ANCHORS_DIR}/`);
  const rel = i >= 0 ? norm.slice(i + ANCHORS_DIR.length + 2) : norm;
  if (!rel.endsWith(RECEIPT_SUFFIX)) return null;
  // The N path grammar is the tlog-tiles one: reuse its strict parser.
  const c = parseTilePath(`tile/0/${rel.slice(0, -RECEIPT_SUFFIX.length)}`);
  return c && c.width === 256 ? c.index : null;
}

/** Verifies a receipt file offline: see verifyAnchorBundle for every check made. */
export async function verifyReceipt(file: string, o: VerifyReceiptOptions): Promise<ReceiptSummary> {
  const data = await readIfExists(file);
  if (!data) throw new TlogError(ErrorCode.notFound, `no receipt at ${file}`);
  let note = o.checkpointNote;
  if (note === undefined) {
    const beside = file.endsWith(RECEIPT_SUFFIX) ? file.slice(0, -RECEIPT_SUFFIX.length) + CHECKPOINT_SUFFIX : '';
    const b = beside ? await readIfExists(beside) : null;
    if (!b) throw new TlogError(ErrorCode.notFound, `no anchored checkpoint beside ${file}: pass it explicitly`);
    note = b;
  }
  const bundle = parseBundle(data.toString('utf8'));
  const url = o.rekorUrl ?? rekorNameFromBundle(bundle.verificationMaterial.tlogEntries[0]?.inclusionProof?.checkpoint?.envelope);
  const treeSize = treeSizeOfReceipt(file);
  return verifyAnchorBundle(bundle, {
    rekor: rekorTrust(o.rekorPublicKey, url, o.rekorOrigin),
    checkpointNote: note,
    ...(o.logVerifiers ? { logVerifiers: o.logVerifiers } : {}),
    ...(o.anchorPublicKey ? { anchorPublicKey: o.anchorPublicKey } : {}),
    ...(treeSize !== null ? { treeSize } : {}),
    ...(o.tsaCertChains ? { tsa: o.tsaCertChains.map((c) => tsaTrust(c)) } : {}),
  });
}

/**
 * Without a configured URL, the checkpoint's own origin host stands in for @sigstore/verify's
 * name match: the key (hint and signature) is what is really checked.
 */
function rekorNameFromBundle(envelope: string | undefined): string {
  const origin = (envelope ?? '').split('\n')[0] ?? '';
  return `https://${origin.split(' ')[0] ?? ''}`;
}

export interface ReceiptEntry {
  readonly treeSize: number;
  /** Path relative to the tenant's history directory, with "/" separators. */
  readonly receipt: string;
  readonly checkpoint: string;
  readonly rekorLogIndex: number | null;
  readonly kind: string | null;
  /** Whether this service verified exactly these receipt bytes (Rekor proof and time evidence). */
  readonly verified: boolean;
  /** The attested time (ISO 8601): v1 the SET's integrated time, v2 the TSA's; null unless verified. */
  readonly attestedAt: string | null;
  readonly attestedBy: string | null;
  /** Why the receipt is not vouched for, when it is not. */
  readonly refused?: string;
}

/** The receipt files under <historyDir>/anchors: their paths below it and the tree sizes they name. */
async function receiptFiles(dir: string): Promise<{ rel: string; treeSize: number }[]> {
  let names: string[];
  try {
    names = (await fsp.readdir(dir, { recursive: true })) as string[];
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw ioError('readdir', dir, e);
  }
  const out: { rel: string; treeSize: number }[] = [];
  for (const n of names) {
    const rel = n.split(path.sep).join('/');
    if (!rel.endsWith(RECEIPT_SUFFIX) || rel.split('/').some((s) => s.startsWith('.'))) continue;
    const treeSize = treeSizeOfReceipt(`${ANCHORS_DIR}/${rel}`);
    if (treeSize !== null) out.push({ rel, treeSize });
  }
  return out;
}

/** One receipt's listing, and the anchoring job that made it (null when there is none). */
async function receiptEntry(dir: string, f: { rel: string; treeSize: number }, outbox: Outbox): Promise<{ entry: ReceiptEntry; job: AnchorJob | null }> {
  const { rel, treeSize } = f;
  const bytes = await fsp.readFile(path.join(dir, rel));
  let rekorLogIndex: number | null = null;
  let kind: string | null = null;
  try {
    const e = parseBundle(bytes.toString('utf8')).verificationMaterial.tlogEntries[0];
    if (e) {
      rekorLogIndex = Number(e.logIndex);
      kind = `${e.kindVersion.kind}/${e.kindVersion.version}`;
    }
  } catch {
    /* listed, not vouched for: `tlog anchor verify` says what is wrong */
  }
  const job = await outbox.get(treeSize);
  const sha = createHash('sha256').update(bytes).digest('hex');
  const refused = !job
    ? 'no anchoring record of this receipt: not verified by this service'
    : job.state !== 'done'
      ? `its anchoring job is ${job.state}`
      : job.receiptSha256 !== sha || !job.attestedAt
        ? 'the receipt is not the one this service verified'
        : null;
  const base = `${ANCHORS_DIR}/${rel.slice(0, -RECEIPT_SUFFIX.length)}`;
  const entry: ReceiptEntry = {
    treeSize,
    receipt: base + RECEIPT_SUFFIX,
    checkpoint: base + CHECKPOINT_SUFFIX,
    rekorLogIndex,
    kind,
    verified: refused === null,
    attestedAt: refused === null ? job!.attestedAt! : null,
    attestedBy: refused === null ? (job!.attestedBy ?? null) : null,
    ...(refused !== null ? { refused } : {}),
  };
  return { entry, job };
}

/**
 * Every receipt under <historyDir>/anchors, by tree size, with the attested time this service
 * verified for it. The anchorer marks a job done only after the receipt verified, time evidence
 * included, and records the SHA-256 of the receipt bytes it stored: a receipt is vouched for only
 * while its bytes are those (a receipt changed on disk, or without a done job, is listed with
 * `verified: false`, no time and the reason). Unreadable bundles are listed with nulls.
 */
export async function listReceipts(historyDir: string, stateDir: string): Promise<ReceiptEntry[]> {
  const dir = path.join(historyDir, ANCHORS_DIR);
  const outbox = new Outbox(stateDir);
  const out: ReceiptEntry[] = [];
  for (const f of await receiptFiles(dir)) out.push((await receiptEntry(dir, f, outbox)).entry);
  return out.sort((a, b) => a.treeSize - b.treeSize);
}

/**
 * The receipt of the largest tree size, as listReceipts lists it, with the Rekor log it went to
 * (from its anchoring job; null without one); null when there is no receipt. Reads that one
 * receipt only.
 */
export async function latestReceipt(historyDir: string, stateDir: string): Promise<{ entry: ReceiptEntry; rekor: AnchorJob['rekor'] | null } | null> {
  const dir = path.join(historyDir, ANCHORS_DIR);
  const files = await receiptFiles(dir);
  if (files.length === 0) return null;
  const newest = files.reduce((a, b) => (b.treeSize > a.treeSize ? b : a));
  const { entry, job } = await receiptEntry(dir, newest, new Outbox(stateDir));
  return { entry, rekor: job?.rekor ?? null };
}
