/**
 * The log's cosigning loop: on its own cadence (every few seconds, not every batch: public
 * witnesses serve many logs), send the newest committed checkpoint to every witness URL of the
 * tenant's policy, keep the cosignatures that verify, and publish the checkpoint with them.
 *
 * fail-closed: a checkpoint is published only when the policy's quorum cosigned it.
 * fail-open: it is published anyway, with whatever cosignatures came back.
 * Either way appends never wait for witnesses: they are answered at commit time.
 */
import { errorChain, TlogError, ErrorCode } from '../errors.js';
import type { Log, Logger } from '../log/log.js';
import { extraSignatures } from '../log/publisher.js';
import { parseCheckpoint } from '../note/checkpoint.js';
import { formatNote, parseNote, type NoteSignature } from '../note/note.js';
import { cosignatureTimestamp } from '../note/signers.js';
import { policySatisfied, witnessesByUrl, type PolicyWitness, type WitnessPolicy } from '../note/witness-policy.js';
import { WitnessEndpoint } from './client.js';

export type FailMode = 'fail-open' | 'fail-closed';

/** One witness of the policy, as the service last saw it (the log's page shows this). */
export interface WitnessStatus {
  readonly name: string;
  readonly vkey: string;
  /** Its submission prefix; null for a witness that pushes its cosignatures. */
  readonly url: string | null;
  /**
   * Its newest cosignature this service verified: the tree size and when it was made, in POSIX
   * seconds (the timestamp it signed; for a key type without one, when it came in; null when
   * that is unknown, e.g. read back from the published checkpoint after a restart).
   */
  readonly last: { readonly treeSize: number; readonly time: number | null } | null;
  /** Why the last round at its URL failed; null when it answered (or was not asked yet). */
  readonly lastError: string | null;
}

export interface CosignerOptions {
  readonly mode: FailMode;
  readonly intervalMs?: number;
  readonly timeoutMs?: number;
  readonly logger: Logger;
}

export class Cosigner {
  private readonly endpoints: WitnessEndpoint[];
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  /** Size of the last checkpoint published by this loop. */
  private lastPublished = -1;
  /** Unlisted keys already reported, by "url key": each is logged once (debug), not every round. */
  private readonly reportedUnlisted = new Set<string>();
  /** The newest verified cosignature of each witness, by policy name. */
  private readonly lastCosigned = new Map<string, { treeSize: number; time: number | null }>();
  /** The error of the last round at each witness URL that failed. */
  private readonly urlErrors = new Map<string, string>();
  /** The published note whose cosignatures lastCosigned already holds. */
  private foldedNote: string | null = null;

  constructor(
    private readonly log: Log,
    readonly policy: WitnessPolicy,
    private readonly opts: CosignerOptions,
  ) {
    this.endpoints = [...witnessesByUrl(policy)].map(([url, ws]) => new WitnessEndpoint(url, ws, opts.timeoutMs ?? 10_000));
  }

  get mode(): FailMode {
    return this.opts.mode;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), this.opts.intervalMs ?? 5000);
    this.timer.unref();
    void this.tick();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  /** One round; rounds never overlap. Resolves when it is done. */
  tick(): Promise<void> {
    if (!this.running) this.running = this.round().finally(() => (this.running = null));
    return this.running;
  }

  private async round(): Promise<void> {
    const cp = this.log.committed;
    if (cp.treeSize === this.lastPublished && this.log.published.treeSize === cp.treeSize) return;
    const results = await Promise.allSettled(this.endpoints.map((e) => e.cosign(cp.note, cp.treeSize, (old) => this.log.consistencyProof(old, cp.treeSize))));
    const got: { witness: string; signature: NoteSignature }[] = [];
    results.forEach((r, i) => {
      const url = this.endpoints[i]!.url;
      if (r.status === 'fulfilled') {
        got.push(...r.value.signatures);
        this.urlErrors.delete(url);
        for (const g of r.value.signatures) this.noteCosignature(g.witness, g.signature, cp.treeSize, Math.floor(Date.now() / 1000));
        if (r.value.ignored > 0)
          this.opts.logger.warn({ tenant: this.log.paths.tenant, witness: url, ignored: r.value.ignored }, 'witness returned lines that do not verify');
        for (const key of r.value.unlisted) {
          if (this.reportedUnlisted.has(`${url} ${key}`)) continue;
          this.reportedUnlisted.add(`${url} ${key}`);
          this.opts.logger.debug?.({ tenant: this.log.paths.tenant, witness: url, key }, 'witness also cosigns with a key the policy does not list: ignored');
        }
      } else {
        this.urlErrors.set(url, errorChain(r.reason));
        this.opts.logger.warn({ tenant: this.log.paths.tenant, witness: url, err: errorChain(r.reason) }, 'witness did not cosign');
      }
    });
    const names = new Set(got.map((g) => g.witness));
    const ok = policySatisfied(this.policy, names);
    if (!ok && this.opts.mode === 'fail-closed') {
      this.opts.logger.warn(
        { tenant: this.log.paths.tenant, treeSize: cp.treeSize, cosignedBy: [...names] },
        'witness quorum not reached: checkpoint not published (fail-closed)',
      );
      return;
    }
    if (!ok)
      this.opts.logger.warn(
        { tenant: this.log.paths.tenant, treeSize: cp.treeSize, cosignedBy: [...names] },
        'witness quorum not reached: publishing anyway (fail-open)',
      );
    // Filed in cosigned/ only when the quorum cosigned; failing open serves it all the same.
    await this.log.publishCosigned(
      withSignatures(
        cp.note,
        got.map((g) => g.signature),
      ),
      ok,
    );
    this.lastPublished = cp.treeSize;
  }

  /**
   * Cosignatures pushed to the log (POST /<tenant>/cosignature): `note` is a checkpoint the
   * log signed with extra lines. Every extra line must verify against a configured witness key,
   * or nothing changes. They are merged into the published checkpoint when it is that one.
   */
  async accept(note: string): Promise<{ treeSize: number; added: number }> {
    const parsed = parseNote(note);
    const logVerifiers = this.log.verifiers;
    if (!parsed.signatures.some((s) => logVerifiers.some((v) => v.name === s.name && v.keyID === s.keyID && v.verify(parsed.text, s.signature)))) {
      throw new TlogError(ErrorCode.verification, 'not a checkpoint signed by this log');
    }
    const extra = extraSignatures(note, logVerifiers);
    if (extra.length === 0) throw new TlogError(ErrorCode.badInput, "no cosignature lines beyond the log's own");
    for (const s of extra) {
      const w = [...this.policy.witnesses.values()].find((x) => x.verifier.name === s.name && x.verifier.keyID === s.keyID);
      if (!w) throw new TlogError(ErrorCode.verification, `cosignature from ${s.name} is not from a configured witness key`);
      if (!w.verifier.verify(parsed.text, s.signature)) throw new TlogError(ErrorCode.verification, `cosignature of witness ${w.name} does not verify`);
    }
    const size = parseCheckpoint(parsed.text).treeSize;
    if (size > this.log.committed.treeSize) throw new TlogError(ErrorCode.conflict, `checkpoint size ${size} is beyond the committed tree`);
    const published = this.log.published;
    if (size < published.treeSize) {
      throw new TlogError(ErrorCode.conflict, `checkpoint size ${size} is older than the published one (${published.treeSize}): cosign that one`);
    }
    // Merge into what is published for this size, or into the log's own signatures of a newer one.
    const base =
      size === published.treeSize
        ? published.note
        : formatNote({ text: parsed.text, signatures: parsed.signatures.filter((s) => logVerifiers.some((v) => v.name === s.name && v.keyID === s.keyID)) });
    const merged = withSignatures(base, extra);
    const names = new Set(
      extraSignatures(merged, logVerifiers).flatMap((s) =>
        [...this.policy.witnesses.values()].filter((w) => w.verifier.name === s.name && w.verifier.keyID === s.keyID).map((w) => w.name),
      ),
    );
    const meetsPolicy = policySatisfied(this.policy, names);
    if (size > published.treeSize && this.opts.mode === 'fail-closed' && !meetsPolicy) {
      throw new TlogError(ErrorCode.verification, 'these cosignatures do not reach the witness quorum (fail-closed)');
    }
    const before = parseNote(base).signatures.length;
    const cp = await this.log.publishCosigned(merged, meetsPolicy);
    for (const s of extra) {
      const w = this.witnessOf(s);
      if (w) this.noteCosignature(w.name, s, size, Math.floor(Date.now() / 1000));
    }
    return { treeSize: cp.treeSize, added: parseNote(merged).signatures.length - before };
  }

  /**
   * Every witness of the policy with its newest cosignature this service verified (from the
   * rounds, the pushed cosignatures, and the published checkpoint, which survives a restart)
   * and the last error at its URL.
   */
  witnessStatus(): WitnessStatus[] {
    const published = this.log.published;
    if (published.note !== this.foldedNote) {
      const n = parseNote(published.note);
      for (const s of n.signatures) {
        const w = this.witnessOf(s);
        if (w && w.verifier.verify(n.text, s.signature)) this.noteCosignature(w.name, s, published.treeSize, null);
      }
      this.foldedNote = published.note;
    }
    return [...this.policy.witnesses.values()].map((w) => ({
      name: w.name,
      vkey: w.vkey,
      url: w.url ?? null,
      last: this.lastCosigned.get(w.name) ?? null,
      lastError: w.url ? (this.urlErrors.get(w.url) ?? null) : null,
    }));
  }

  private witnessOf(s: NoteSignature): PolicyWitness | undefined {
    return [...this.policy.witnesses.values()].find((w) => w.verifier.name === s.name && w.verifier.keyID === s.keyID);
  }

  /** Keeps a verified cosignature of `witness` if it is newer than the one known. */
  private noteCosignature(witness: string, s: NoteSignature, treeSize: number, receivedAt: number | null): void {
    const w = this.policy.witnesses.get(witness);
    if (!w) return;
    const time = cosignatureTimestamp(w.verifier.type, s.signature) ?? receivedAt;
    const known = this.lastCosigned.get(witness);
    if (known && (known.treeSize > treeSize || (known.treeSize === treeSize && (known.time ?? -1) >= (time ?? -1)))) return;
    this.lastCosigned.set(witness, { treeSize, time });
  }
}

/**
 * The note with extra signature lines: a line from a key (name and key ID) the note already has a
 * signature from replaces it (a newer cosignature), so no key ever appears twice (C2SP#257).
 */
export function withSignatures(note: string, extra: readonly NoteSignature[]): string {
  const n = parseNote(note);
  const byKey = new Map<string, NoteSignature>();
  for (const s of [...n.signatures, ...extra]) byKey.set(`${s.name} ${s.keyID}`, s);
  return formatNote({ text: n.text, signatures: [...byKey.values()] });
}
