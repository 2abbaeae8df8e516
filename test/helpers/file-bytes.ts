/**
 * Damaging a file the way a disk or an attacker would, for the tests that check it is caught:
 * one byte changed in place (the file is neither truncated nor rewritten, so a process that has
 * it open or mapped sees only that byte change).
 */
import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';

/** XORs the byte at `offset` (from the end when negative: -1 is the last byte) with `mask`. */
export function flipBits(file: string, offset: number, mask = 0x01): void {
  const fd = openSync(file, 'r+');
  try {
    const at = offset < 0 ? fstatSync(fd).size + offset : offset;
    const b = Buffer.alloc(1);
    if (readSync(fd, b, 0, 1, at) !== 1) throw new Error(`flipBits: ${file} has no byte at ${at}`);
    b[0]! ^= mask;
    writeSync(fd, b, 0, 1, at);
  } finally {
    closeSync(fd);
  }
}
