/**
 * A batch and what it is made of: the appends waiting for it (Pending), the batch as it moves
 * through the pipeline (PreparedBatch), and what it gives back: an answer to every append
 * (AppendResult) and its figures (BatchStats).
 */
import { inclusionProof as buildInclusionProof, ProofMemo } from '../merkle/proof.js';
import type { Answers } from './answers.js';
import { nodeReaderOver } from '../tiles/tree.js';
import type { Extension } from './edge.js';
import type { BatchTrace } from './tracing.js';

export interface AppendResult {
  readonly index: number;
  readonly leafHash: Uint8Array;
  /** The tree size of the checkpoint that first included the entry. */
  readonly treeSize: number;
  /** That checkpoint, signed, exactly as published. */
  readonly checkpoint: string;
  /** RFC 6962 inclusion proof of the entry in that checkpoint, leaf side first. */
  readonly proof: readonly Uint8Array[];
  /** True when the entry was already in the log: index and proof are of the first copy. */
  readonly duplicate: boolean;
}

export interface BatchStats {
  readonly tenant: string;
  readonly entries: number;
  /** From taking the batch to answering it. */
  readonly seconds: number;
  /** Putting its bundles and tiles in place, then making its journal record durable. */
  readonly writeSeconds: number;
  /** Moving the commit point (a write into the mapped commit slot; synced by the flush). */
  readonly commitSeconds: number;
}

/** An accepted append, not yet answered: queued, or in a batch. */
export interface Pending {
  readonly entry: Uint8Array;
  readonly leafHash: Uint8Array;
  /** Key of the in-flight dedup map, or '' when duplicates are allowed. */
  readonly key: string;
  /** What the appender was tracing (BatchTracer.current()), or undefined. */
  readonly trace: unknown;
  /** Where its answer goes: entry `slot` of its call's answers. */
  readonly answers: Answers;
  readonly slot: number;
}

/**
 * How far a batch got: `prepared` (hashed into the tree; its files being written and its
 * checkpoint signed), `journaled` (its record durable in the journal: it counts after a
 * restart), `committed` (the commit point moved to it: it is part of the log).
 */
export type BatchStage = 'prepared' | 'journaled' | 'committed';

/** What the appends of one batch build their inclusion proofs from (shared by all of them). */
interface ProofSource {
  readonly end: number;
  readonly node: ReturnType<typeof nodeReaderOver>;
  readonly memo: ProofMemo;
}

/**
 * The answer to one append of a committed batch. Its proof is built when first read (an
 * append-batch answer without proofs never reads it), so the getter lives on the prototype:
 * a batch of thousands allocates one object per append and no closure. Being a getter,
 * `proof` is not an own property: copy a result field by field, not with a spread.
 */
class BatchAppendResult implements AppendResult {
  readonly duplicate = false;
  #proofs: ProofSource;
  #proof: Uint8Array[] | undefined;
  constructor(
    readonly index: number,
    readonly leafHash: Uint8Array,
    readonly treeSize: number,
    readonly checkpoint: string,
    proofs: ProofSource,
  ) {
    this.#proofs = proofs;
  }
  get proof(): Uint8Array[] {
    const p = this.#proofs;
    this.#proof ??= buildInclusionProof(this.index, p.end, p.node, p.memo);
    return this.#proof;
  }
}

/** A batch hashed into the tree, on its way through the pipeline (sequencer.ts). */
export class PreparedBatch {
  readonly start: number;
  readonly end: number;
  stage: BatchStage = 'prepared';
  /** The batch's bundles and tiles in place (not yet durable) and its checkpoint signed. */
  readonly written: Promise<void>;
  /** The signed checkpoint of the tree of size `end`, set when `written` resolves. */
  note = '';
  /** Seconds spent putting its files in place, then making its journal record durable. */
  writeSeconds = 0;

  /**
   * Starts the batch's writes at once and signs its checkpoint once they are done: a batch that
   * cannot write its files fails before any signature over its root exists.
   */
  constructor(
    readonly batch: readonly Pending[],
    /** The tree grown by the batch: its root, and every file the new size implies. */
    readonly ext: Extension,
    /** When the batch was taken (performance.now()). */
    readonly startedAt: number,
    writeFiles: () => Promise<void>,
    sign: (treeSize: number, rootHash: Uint8Array) => Promise<string>,
    /** Its trace (tracing.ts), or null when nothing is traced. */
    readonly trace: BatchTrace | null,
  ) {
    this.start = ext.start;
    this.end = ext.end;
    const t0 = performance.now();
    trace?.stage('sequence', startedAt, t0);
    this.written = writeFiles().then(async () => {
      const t1 = performance.now();
      this.writeSeconds = (t1 - t0) / 1000;
      trace?.stage('write', t0, t1);
      this.note = await sign(ext.end, ext.rootHash);
      trace?.stage('sign', t1, performance.now());
    });
  }

  /**
   * Resolves every append of the batch, once committed. Proofs are built when a caller reads
   * them (an append-batch answer without proofs never does), sharing the batch's tiles and the
   * work common to one tree size.
   */
  answer(): void {
    const { batch, start, end, note } = this;
    const proofs: ProofSource = { end, node: nodeReaderOver(this.ext.lookup), memo: new ProofMemo() };
    for (let i = 0; i < batch.length; i++) {
      const p = batch[i]!;
      p.answers.settle(p.slot, new BatchAppendResult(start + i, p.leafHash, end, note, proofs));
    }
  }

  /** Bytes of its entries. */
  get entryBytes(): number {
    let n = 0;
    for (const p of this.batch) n += p.entry.length;
    return n;
  }
}
