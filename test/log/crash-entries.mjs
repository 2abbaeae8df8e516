/**
 * The entries of the crash test, shared by the child driver (crash-child.mjs, plain node) and
 * the parent test (crash.test.ts): the bytes of an entry are a pure function of its id
 * (cycle, seq), so the parent can recompute every acknowledged entry and compare it byte for
 * byte with what the log serves after a crash.
 *
 * Plain ESM JavaScript on purpose: the child runs as `node test/log/crash-child.mjs` without a
 * TypeScript loader, against the compiled engine in dist/.
 */
import { prng } from '../prng.mjs';

/** Entry sizes are uniform in [1, MAX_CRASH_ENTRY]. */
export const MAX_CRASH_ENTRY = 3000;

/** The id of entry `seq` of child run `cycle`, as written in the ack lines. */
export function entryId(cycle, seq) {
  return `${cycle}.${seq}`;
}

/** Parses an id made by entryId. */
export function parseEntryId(id) {
  const m = /^(\d+)\.(\d+)$/.exec(id);
  if (!m) throw new Error(`bad entry id ${JSON.stringify(id)}`);
  return { cycle: Number(m[1]), seq: Number(m[2]) };
}

/** Random bytes that entries are cut from (prng from a fixed seed: the same in every process). */
const POOL_SIZE = 1 << 20;
const pool = (() => {
  const out = new Uint8Array(POOL_SIZE);
  const rand = prng(0x2545f491);
  for (let i = 0; i < POOL_SIZE; i += 4) {
    // prng's 32-bit word: its float times 2^32 is exact.
    const t = rand() * 4294967296;
    out[i] = t;
    out[i + 1] = t >>> 8;
    out[i + 2] = t >>> 16;
    out[i + 3] = t >>> 24;
  }
  return out;
})();

/**
 * The bytes of entry (cycle, seq): an "e<cycle>.<seq>:" header (cut to the size), then bytes
 * from the pool at an offset; size and offset come from a hash of the id. Cheap to make, so
 * the child spends its time appending, not generating.
 */
export function entryBytes(cycle, seq) {
  let h = (Math.imul(cycle + 1, 0x9e3779b1) ^ Math.imul(seq + 1, 0x85ebca77)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b) >>> 0;
  h = (h ^ (h >>> 16)) >>> 0;
  const size = 1 + (h % MAX_CRASH_ENTRY);
  const offset = (h >>> 12) % (POOL_SIZE - MAX_CRASH_ENTRY);
  const out = new Uint8Array(size);
  const header = new TextEncoder().encode(`e${entryId(cycle, seq)}:`);
  out.set(header.subarray(0, size));
  if (size > header.length) out.set(pool.subarray(offset, offset + size - header.length), header.length);
  return out;
}
