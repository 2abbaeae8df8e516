/**
 * The engine's tracing hook: how a batch tells a tracer (OpenTelemetry, src/http/otel.ts) what
 * it did, without the engine knowing any tracing library. Without a tracer (the default) the
 * engine calls nothing here: tracing off costs an optional-chaining test per batch stage and
 * one undefined field per entry.
 */

/**
 * The stages of a batch (sequencer.ts, batch.ts), in order: hashing it into the tree, putting
 * its bundles and tiles in place, signing its checkpoint, making its journal record durable,
 * moving the commit point, publishing the checkpoint (and its history copy), indexing its
 * leaves for deduplication.
 */
export type TraceStage = 'sequence' | 'write' | 'sign' | 'journal' | 'commit' | 'publish' | 'index';

export interface BatchTracer {
  /**
   * What the caller is tracing when it appends (the request's span), kept with each entry it
   * appends and handed back in startBatch; undefined when nothing is traced.
   */
  current(): unknown;
  /** A batch was taken at `startedAt` (performance.now()) with its entries' `current()`s, in order. */
  startBatch(tenant: string, startedAt: number, requests: readonly unknown[]): BatchTrace;
}

/** One batch's trace, from taking it to answering it (or failing). */
export interface BatchTrace {
  /** A stage of the batch ran from `from` to `to` (performance.now()). */
  stage(stage: TraceStage, from: number, to: number): void;
  /** The batch was answered (no error) or failed; `start` is its first index, `end` its tree size. */
  end(batch: { readonly start: number; readonly end: number; readonly entries: number }, error?: unknown): void;
}
