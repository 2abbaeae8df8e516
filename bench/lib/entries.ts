/** Entries for load runs: distinct across the whole run (dedup would otherwise answer from the index). */

let entryCounter = 0;
const RUN = Math.random().toString(36).slice(2, 10);

/** 64 bytes: a run tag, a counter and padding. */
export function nextEntry(): Buffer {
  const s = `bench ${RUN} ${entryCounter++} `;
  return Buffer.from(s.padEnd(64, '.'));
}

/** `n` new entries in the entry bundle encoding of c2sp.org/tlog-tiles (u16 length ‖ entry)*, as append-batch takes them. */
export function bundleOf(n: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const e = nextEntry();
    const len = Buffer.allocUnsafe(2);
    len.writeUInt16BE(e.length);
    parts.push(len, e);
  }
  return Buffer.concat(parts);
}
