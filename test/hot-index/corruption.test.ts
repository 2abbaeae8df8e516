import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, truncateSync, writeFileSync, writeSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { beforeEach, describe, expect, it } from 'vitest';
import { nativeAvailable } from '../../native/index.js';
import { IndexError, openIndex, type HotIndex } from '../../src/hot-index/index.js';
import { tempDirPerTest } from '../helpers/temp-dirs.js';
import { mappedFileBackends } from '../native/helpers.js';
import { flipBits } from '../helpers/file-bytes.js';

const TABLE_OFFSET = 8192;
const SLOT_A = 4096;
const SLOT_B = 4096 + 512;

function poke(path: string, offset: number, bytes: Uint8Array): void {
  const fd = openSync(path, 'r+');
  writeSync(fd, bytes, 0, bytes.length, offset);
  closeSync(fd);
}
/** Offsets of occupied table slots, found by reading the file directly. */
function occupiedSlots(path: string): number[] {
  const b = readFileSync(path);
  const out: number[] = [];
  for (let bucket = TABLE_OFFSET; bucket < b.length; bucket += 512) {
    for (let s = 0; s < 12; s++) {
      const at = bucket + s * 40;
      if (b.readBigUInt64LE(at + 32) !== 0n) out.push(at);
    }
  }
  return out;
}

describe.each(mappedFileBackends)('corruption (%s)', (backend) => {
  const tmp = tempDirPerTest('tlog-corrupt-');
  let path: string;
  let hashes: Buffer;
  const open = (mode: 'writer' | 'readOnly' = 'writer'): HotIndex => openIndex(path, { backend, mode, onWarning: () => {} });
  function openError(mode: 'writer' | 'readOnly' = 'writer'): IndexError {
    try {
      open(mode).close();
    } catch (e) {
      expect(e).toBeInstanceOf(IndexError);
      return e as IndexError;
    }
    throw new Error('open succeeded');
  }

  beforeEach(() => {
    path = join(tmp.dir, 'index.idx');
    hashes = randomBytes(20 * 32);
    const ix = open();
    ix.writeCommitPoint({ treeSize: 10, rootHash: new Uint8Array(32).fill(1), checkpointHash: new Uint8Array(32).fill(2) });
    ix.writeCommitPoint({ treeSize: 20, rootHash: new Uint8Array(32).fill(3), checkpointHash: new Uint8Array(32).fill(4) });
    ix.insertMany(hashes, 0);
    ix.close(); // seq 3: the table watermark
  });

  it.each([
    [0, 'bad magic'],
    [20, 'header crc mismatch'],
    [30, 'header crc mismatch'],
    [70, 'header crc mismatch'],
    [110, 'header crc mismatch'],
    [125, 'header crc mismatch'],
  ])('a flipped header byte at %i is reported (%s)', (offset, reason) => {
    flipBits(path, offset);
    for (const mode of ['writer', 'readOnly'] as const) {
      const e = openError(mode);
      expect(e.code).toBe('index_corrupt');
      expect(e.reason).toBe(reason);
      expect(e.message).toBe(`index ${path}: ${reason}`);
    }
  });

  it('an unknown layout version is named even with a valid CRC', () => {
    const h = readFileSync(path).subarray(0, 128);
    h.writeUInt32LE(2, 8);
    h.writeUInt32LE(crc32(h.subarray(0, 124)), 124);
    poke(path, 0, h);
    expect(openError().reason).toBe('unknown layout version 2');
  });

  it('a byte-swapped endianness marker is named', () => {
    poke(path, 12, Uint8Array.of(1, 2, 3, 4));
    expect(openError().reason).toBe('wrong endianness marker 0x4030201');
  });

  it('a file longer or shorter than its header says is refused without mapping past EOF', () => {
    const size = readFileSync(path).length;
    appendFileSync(path, new Uint8Array(4096));
    expect(openError().reason).toBe(`size mismatch: header says ${size}, file is ${size + 4096}`);
    truncateSync(path, size - 100);
    expect(openError().reason).toBe(`size mismatch: header says ${size}, file is ${size - 100}`);
    truncateSync(path, 5000);
    expect(openError().reason).toBe('file too short (5000 bytes)');
    truncateSync(path, 0);
    expect(openError().reason).toBe('file too short (0 bytes)');
  });

  it('random garbage is refused', () => {
    writeFileSync(path, randomBytes(1 << 16));
    expect(openError().code).toBe('index_corrupt');
  });

  it('one bad commit slot falls back to the other; both bad is corrupt', () => {
    // seq 3 (the close) is in slot B, seq 2 (treeSize 20) in slot A.
    flipBits(path, SLOT_B + 9);
    const ix = open();
    expect(ix.commitPoint.seq).toBe(2);
    expect(ix.commitPoint.treeSize).toBe(20);
    expect([...ix.commitPoint.rootHash]).toEqual(new Array(32).fill(3));
    // The live record (same boot) still says the table holds all 20.
    expect(ix.indexedSize).toBe(20);
    expect(ix.lookup(hashes, 19 * 32)).toBe(19);
    // The next write goes into the damaged slot, repairing it.
    ix.writeCommitPoint({ treeSize: 21, rootHash: new Uint8Array(32).fill(5), checkpointHash: new Uint8Array(32) });
    ix.close();
    expect(open('readOnly').commitPoint.treeSize).toBe(21);

    flipBits(path, SLOT_A + 40);
    flipBits(path, SLOT_B + 99);
    const e = openError();
    expect(e.reason).toBe('both commit slots are corrupt');
  });

  it('a commit slot with a CRC that matches but impossible numbers is rejected', () => {
    const slot = readFileSync(path).subarray(SLOT_B, SLOT_B + 100);
    slot.writeBigUInt64LE(30n, 80); // indexedSize 30 > treeSize 20
    slot.writeUInt32LE(crc32(slot.subarray(0, 96)), 96);
    poke(path, SLOT_B, slot);
    expect(open('readOnly').commitPoint.seq).toBe(2);
  });

  it('a live record from another boot is ignored: the durable watermark is used', () => {
    const ix = open();
    ix.writeCommitPoint({ treeSize: 40, rootHash: new Uint8Array(32).fill(6), checkpointHash: new Uint8Array(32) });
    ix.insertMany(randomBytes(20 * 32), 20);
    expect(ix.durableIndexedSize).toBe(20);
    // Simulate a crash: copy the file while the writer is still open.
    const snapshot = readFileSync(path);
    ix.close();
    writeFileSync(path, snapshot);
    expect(open('readOnly').indexedSize).toBe(40);
    if (nativeAvailable) {
      // Rewrite the boot id (with a valid CRC) as if written before a reboot.
      const live = readFileSync(path).subarray(4096 + 1024, 4096 + 1024 + 36);
      live[0] = live[0]! ^ 0xff;
      live.writeUInt32LE(crc32(live.subarray(0, 32)), 32);
      poke(path, 4096 + 1024, live);
      expect(open('readOnly').indexedSize).toBe(20);
    }
  });

  it('check() finds an index field damaged beyond the tree', () => {
    const slots = occupiedSlots(path);
    expect(slots).toHaveLength(20);
    let ix = open();
    expect(ix.check()).toMatchObject({ entries: 20, problems: [], problemCount: 0 });
    ix.close();

    // An index beyond the tree.
    poke(path, slots[0]! + 32 + 4, Uint8Array.of(0x10));
    ix = open('readOnly');
    const r = ix.check();
    expect(r.problemCount).toBeGreaterThanOrEqual(1);
    expect(r.problems.join('\n')).toMatch(/leaf index \d+ is beyond 20/);
    ix.close();
  });

  it('check() finds a hash whose home slot no longer matches its place', () => {
    // One entry alone in its run: a change of its first byte moves its home away.
    const lone = join(tmp.dir, 'lone.idx');
    const ix = openIndex(lone, { backend, onWarning: () => {} });
    ix.writeCommitPoint({ treeSize: 1, rootHash: new Uint8Array(32).fill(1), checkpointHash: new Uint8Array(32) });
    const h = randomBytes(32);
    ix.insertMany(h, 0);
    ix.close();
    const [slot] = occupiedSlots(lone);
    flipBits(lone, slot!);
    const ro = openIndex(lone, { backend, mode: 'readOnly' });
    expect(ro.check().problems.join('\n')).toMatch(/unreachable from its home slot/);
    expect(ro.lookup(h)).toBe(-1);
    ro.close();
    poke(lone, TABLE_OFFSET + 12 * 40 + 3, Uint8Array.of(9));
    const ro2 = openIndex(lone, { backend, mode: 'readOnly' });
    expect(ro2.check().problems.join('\n')).toMatch(/bucket 0: padding is not zero/);
    ro2.close();
  });
});
