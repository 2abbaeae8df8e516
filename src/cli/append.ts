/**
 * `tlog append --lines`: one entry per line of a stream, however long. The input is read as it
 * comes and appended in batches while the rest is still being read, so memory holds a few
 * batches, not the input: a million lines cost what a hundred thousand do. Lines are bytes
 * (split on "\n" only; no decoding), each 1 to 65535 bytes like any entry.
 */
import { TlogError, ErrorCode } from '../errors.js';
import type { AppendResult, Log } from '../log/log.js';
import { encodeBase64 } from '../note/note.js';
import { MAX_ENTRY_SIZE, checkEntrySize } from '../tiles/bundle.js';

/** Lines per batch handed to the log: one log batch (Log's maxBatch), one signed checkpoint. */
export const LINES_PER_BATCH = 16384;
/** Bytes of lines per batch, so that long lines do not make a batch huge. */
const BYTES_PER_BATCH = 16 << 20;
/** Batches handed to the log before the oldest is answered: keeps its pipeline busy. */
const BATCHES_IN_FLIGHT = 2;

/**
 * Splits a byte stream on "\n" (a trailing newline ends the last line; it does not start an
 * empty one) into batches. A line is checked as soon as it ends, so an empty or oversized line
 * stops the stream at that line: `line 12: entry is empty...`. A line is never buffered beyond
 * 65535 bytes.
 */
export async function* lineBatches(input: AsyncIterable<Uint8Array>, maxLines = LINES_PER_BATCH, maxBytes = BYTES_PER_BATCH): AsyncGenerator<Buffer[]> {
  let partial: Buffer[] = [];
  let partialBytes = 0;
  let lineNo = 0;
  let batch: Buffer[] = [];
  let batchBytes = 0;
  const push = (line: Buffer) => {
    lineNo++;
    try {
      checkEntrySize(line);
    } catch (e) {
      throw new TlogError((e as TlogError).code, `line ${lineNo}: ${(e as Error).message}`);
    }
    batch.push(line);
    batchBytes += line.length;
  };
  for await (const chunk of input) {
    const buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let start = 0;
    for (let nl = buf.indexOf(0x0a, start); nl !== -1; nl = buf.indexOf(0x0a, start)) {
      const tail = buf.subarray(start, nl);
      // A line kept whole: the chunk it lies in stays alive only while its batch does.
      push(partial.length === 0 ? tail : Buffer.concat([...partial, tail]));
      partial = [];
      partialBytes = 0;
      start = nl + 1;
      if (batch.length >= maxLines || batchBytes >= maxBytes) {
        yield batch;
        batch = [];
        batchBytes = 0;
      }
    }
    if (start < buf.length) {
      partial.push(buf.subarray(start));
      partialBytes += buf.length - start;
      if (partialBytes > MAX_ENTRY_SIZE) {
        throw new TlogError(
          ErrorCode.tooLarge,
          `line ${lineNo + 1} is longer than ${MAX_ENTRY_SIZE} bytes: entries are 1 to 65535 bytes (c2sp.org/tlog-tiles entry bundles)`,
        );
      }
    }
  }
  if (partialBytes > 0) push(Buffer.concat(partial));
  if (batch.length > 0) yield batch;
}

export interface AppendLinesResult {
  /** Lines appended (or found already in the log). */
  readonly lines: number;
  readonly treeSize: number;
}

/**
 * Appends every line of `input` to `log`, writing one JSON result line per entry to `out`, in
 * input order, as batches are answered. `onProgress` hears the running count. On a bad line the
 * lines before it stay appended (and reported); the error says so.
 */
export async function appendLines(
  log: Log,
  input: AsyncIterable<Uint8Array>,
  out: (text: string) => void,
  onProgress?: (lines: number, treeSize: number) => void,
): Promise<AppendLinesResult> {
  let lines = 0;
  // Each batch's results are written as soon as it is answered, in input order (a chain); at
  // most BATCHES_IN_FLIGHT batches are handed to the log and not yet written.
  let written: Promise<void> = Promise.resolve();
  const window: Promise<void>[] = [];
  try {
    for await (const batch of lineBatches(input)) {
      const answered = Promise.all(log.appendMany(batch));
      written = written.then(async () => {
        const results = await answered;
        let text = '';
        for (const r of results) text += resultLine(r);
        out(text);
        lines += results.length;
        onProgress?.(lines, log.treeSize);
      });
      // Awaited through the chain; a failure must not count as unhandled meanwhile.
      answered.catch(() => {});
      written.catch(() => {});
      window.push(written);
      if (window.length >= BATCHES_IN_FLIGHT) await window.shift();
    }
    await written;
  } catch (e) {
    // A bad line: the batches handed to the log before it are answered on their own; report them.
    await written.catch(() => {});
    if (lines > 0 && e instanceof TlogError) {
      throw new TlogError(e.code, `${e.message} (the ${lines} lines before it were appended; tree size ${log.treeSize})`, { cause: e });
    }
    throw e;
  }
  return { lines, treeSize: log.treeSize };
}

export function resultLine(r: AppendResult): string {
  return JSON.stringify({ index: r.index, leafHash: encodeBase64(r.leafHash), treeSize: r.treeSize, ...(r.duplicate ? { duplicate: true } : {}) }) + '\n';
}
