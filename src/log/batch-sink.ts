/**
 * The one hook a log that keeps its truth elsewhere (an object store: src/cluster/store-log.ts)
 * has in the engine: told about every batch once it is signed, while its local journal record
 * is written (that record is then only this node's cache of the store's: the two writes overlap,
 * so the store's round trips are the only ones a batch waits for), and before its commit point
 * moves; the batch is acknowledged only once the hook resolved and the local record is durable.
 * Absent (the embedded default), the sequencer does exactly what it did before: one `if`.
 *
 * A rejection stops the log (the batch may count: the store may have its record; stop-rule.ts), with
 * the rejection's code (conflict: another writer owns the batch's place; unavailable: the store
 * cannot be reached), so nothing after it is acknowledged by this process. A sink that fails
 * later, on its own (writing what it derives from batches it already took), stops the log
 * through `attach`.
 */
import type { TlogError } from '../errors.js';
import type { TileFile } from '../tile-store/tile-store.js';

export interface SinkBatch {
  /** The tree size the batch starts at. */
  readonly start: number;
  /** Its journal record's payload (journal-record.ts): its entries and signed note. */
  readonly record: Uint8Array;
  /** The bundles and tiles it produced (c2sp.org/tlog-tiles), full and partial. */
  readonly files: readonly TileFile[];
  /** Its signed checkpoint (tree size start + entries). */
  readonly note: string;
}

export interface BatchSink {
  /**
   * Makes the batch durable where the log's truth is: resolves once it is (the batch may then
   * be acknowledged). Called in batch order, each call once the previous batch's `journaled`
   * was called (its record is where the truth is), not once it finished: the sink calls
   * `journaled` as soon as this batch's record is stored.
   */
  batch(b: SinkBatch, journaled: () => void): Promise<void>;
  /** Called once by the log: `stop` stops it (every later append fails with the error). */
  attach?(stop: (e: TlogError) => void): void;
  /** Resolves once the sink has nothing left to write (called by Log.close after the last batch; never rejects). */
  drain?(): Promise<void>;
}
