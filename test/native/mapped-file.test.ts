import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { allocateFile, nativeAvailable, NativeError, openMappedFile, pageSize } from '../../native/index.js';
import { thrownBy } from '../helpers/errors.js';
import { tempDirPerTest } from '../helpers/temp-dirs.js';
import { mappedFileBackends } from './helpers.js';

it('koffi loads on this machine (the CI target)', () => {
  expect(nativeAvailable).toBe(true);
});

describe.each(mappedFileBackends)('MappedFile (%s)', (backend) => {
  const tmp = tempDirPerTest('tlog-mf-');

  it('round-trips integers and bytes, little-endian on disk', () => {
    const path = join(tmp.dir, 'a.bin');
    const f = openMappedFile(path, { create: true, size: 8192, backend });
    expect(f.size).toBe(8192);
    expect(f.backend).toBe(backend);
    f.writeU8(0, 0xab);
    f.writeU32(4, 0xdeadbeef);
    f.writeU64(8, 2 ** 53 - 1);
    f.writeBytes(100, Uint8Array.from([1, 2, 3, 4, 5]));
    expect(f.readU8(0)).toBe(0xab);
    expect(f.readU32(4)).toBe(0xdeadbeef);
    expect(f.readU64(8)).toBe(2 ** 53 - 1);
    expect([...f.readBytes(99, 7)]).toEqual([0, 1, 2, 3, 4, 5, 0]);
    expect(f.equals(100, Uint8Array.from([9, 1, 2, 3]), 1, 3)).toBe(true);
    expect(f.equals(100, Uint8Array.from([1, 2, 4]))).toBe(false);
    const into = new Uint8Array(10);
    f.readInto(101, into, 2, 3);
    expect([...into]).toEqual([0, 0, 2, 3, 4, 0, 0, 0, 0, 0]);
    f.fill(200, 100, 7);
    expect(f.readBytes(199, 102)).toEqual(Uint8Array.from([0, ...new Array(100).fill(7), 0]));
    f.sync();
    f.close();
    const disk = readFileSync(path);
    expect(disk.length).toBe(8192);
    expect(disk.readUInt32LE(4)).toBe(0xdeadbeef);
    expect(disk.readBigUInt64LE(8)).toBe(2n ** 53n - 1n);
    expect(disk[0]).toBe(0xab);
  });

  it('refuses out-of-range access and values instead of touching other memory', () => {
    const f = openMappedFile(join(tmp.dir, 'b.bin'), { create: true, size: 4096, backend });
    expect(() => f.readU32(4093)).toThrow(RangeError);
    expect(() => f.readU8(-1)).toThrow(RangeError);
    expect(() => f.readBytes(4000, 200)).toThrow(RangeError);
    expect(() => f.writeBytes(4095, new Uint8Array(2))).toThrow(RangeError);
    expect(() => f.writeU32(0, 2 ** 32)).toThrow(RangeError);
    expect(() => f.writeU64(0, 2 ** 53)).toThrow(RangeError);
    expect(() => f.readU32(0.5)).toThrow(RangeError);
    // A u64 above 2^53 on disk (only corruption makes one) is refused, not rounded.
    f.writeU32(12, 0xffffffff);
    expect(() => f.readU64(8)).toThrow(RangeError);
    f.close();
  });

  it('throws after close instead of touching freed memory', () => {
    const f = openMappedFile(join(tmp.dir, 'c.bin'), { create: true, size: 4096, backend });
    f.writeU32(0, 1);
    f.close();
    f.close(); // idempotent
    expect(f.closed).toBe(true);
    expect(() => f.readU32(0)).toThrow(/closed/);
    expect(() => f.writeU32(0, 1)).toThrow(/closed/);
    expect(() => f.readBytes(0, 4)).toThrow(/closed/);
  });

  it('grows without losing bytes and never shrinks', () => {
    const path = join(tmp.dir, 'd.bin');
    const f = openMappedFile(path, { create: true, size: 4096, backend });
    f.writeU64(4088, 42);
    f.grow(3 * 4096);
    expect(f.size).toBe(3 * 4096);
    expect(statSync(path).size).toBe(3 * 4096);
    expect(f.readU64(4088)).toBe(42);
    f.writeU64(3 * 4096 - 8, 43);
    expect(() => f.grow(4096)).toThrow(RangeError);
    f.close();
    // Reopening with a smaller size keeps the file as it is.
    const g = openMappedFile(path, { size: 4096, backend });
    expect(g.size).toBe(3 * 4096);
    expect(g.readU64(3 * 4096 - 8)).toBe(43);
    g.close();
  });

  it('read-only files refuse writes, and writes by another handle show up at once', () => {
    const path = join(tmp.dir, 'e.bin');
    const w = openMappedFile(path, { create: true, size: 4096, backend });
    const r = openMappedFile(path, { readOnly: true, backend });
    expect(r.readOnly).toBe(true);
    expect(() => r.writeU32(0, 1)).toThrow(/read-only/);
    w.writeU32(16, 77);
    expect(r.readU32(16)).toBe(77);
    expect(() => openMappedFile(path, { readOnly: true, size: 8192, backend })).toThrow(/wanted 8192/);
    r.close();
    w.close();
  });

  it('names the call, the file and the errno in errors', () => {
    const missing = join(tmp.dir, 'nope.bin');
    const err = thrownBy(() => openMappedFile(missing, { backend }));
    expect(err).toBeInstanceOf(NativeError);
    expect((err as NativeError).message).toBe(`open ${missing}: ENOENT`);
    expect((err as NativeError).code).toBe('ENOENT');
    writeFileSync(join(tmp.dir, 'exists.bin'), 'x');
    expect(() => openMappedFile(join(tmp.dir, 'exists.bin'), { create: true, exclusive: true, backend })).toThrow(
      `open ${join(tmp.dir, 'exists.bin')}: EEXIST`,
    );
    expect(existsSync(missing)).toBe(false);
  });

  it('allocateFile creates the file at once and sizes it on a thread; a later open maps it as it is', async () => {
    const path = join(tmp.dir, 'big.bin');
    const size = 64 << 20;
    const done = allocateFile(path, size, { backend });
    // Created (empty, private) before the promise settles.
    expect(existsSync(path)).toBe(true);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    await done;
    const st = statSync(path);
    expect(st.size).toBe(size);
    // Blocks reserved on the mmap backend (posix_fallocate); sparse on the plain one.
    if (backend === 'mmap') expect(st.blocks * 512).toBeGreaterThanOrEqual(size);
    const f = openMappedFile(path, { size, backend });
    expect(f.size).toBe(size);
    f.writeU32(size - 4, 7);
    expect(f.readU32(size - 4)).toBe(7);
    f.close();
  });

  it('allocateFile refuses a path that exists, leaving it as it was', async () => {
    const path = join(tmp.dir, 'taken.bin');
    writeFileSync(path, 'mine');
    await expect(allocateFile(path, 4096, { backend })).rejects.toThrow(`open ${path}: EEXIST`);
    expect(readFileSync(path, 'utf8')).toBe('mine');
  });

  it('syncAsync resolves once the writes before it are durable; a close meanwhile waits for it', async () => {
    const path = join(tmp.dir, 's.bin');
    const f = openMappedFile(path, { create: true, size: 3 * 4096, backend });
    f.writeU32(4096, 0xfeedface);
    const synced = f.syncAsync();
    f.close();
    await synced;
    expect(readFileSync(path).readUInt32LE(4096)).toBe(0xfeedface);
    const ro = openMappedFile(path, { readOnly: true, backend });
    await ro.syncAsync();
    ro.close();
    expect(() => ro.syncAsync()).toThrow(/closed/);
  });

  it('prefault changes no byte, checks its range, and is harmless after close', async () => {
    const path = join(tmp.dir, 'p.bin');
    const f = openMappedFile(path, { create: true, size: 16 * 4096, backend });
    f.writeU32(5 * 4096 + 8, 0x01020304);
    await f.prefault(4096, 8 * 4096, true);
    await f.prefault(0, 16 * 4096, false);
    expect(f.readU32(5 * 4096 + 8)).toBe(0x01020304);
    expect(f.readU32(6 * 4096)).toBe(0);
    f.writeU32(6 * 4096, 9);
    await expect(f.prefault(15 * 4096, 2 * 4096, true)).rejects.toThrow(RangeError);
    const late = f.prefault(0, 16 * 4096, true);
    f.close();
    await late;
    const bytes = readFileSync(path);
    expect(bytes.readUInt32LE(5 * 4096 + 8)).toBe(0x01020304);
    expect(bytes.readUInt32LE(6 * 4096)).toBe(9);
    expect(bytes.subarray(7 * 4096).every((b) => b === 0)).toBe(true);
  });

  it('sync and mlock run on sub-ranges', () => {
    const f = openMappedFile(join(tmp.dir, 'g.bin'), { create: true, size: 5 * 4096, backend });
    f.writeU32(4096 + 10, 5);
    f.sync(4096 + 8, 100);
    expect(f.mlock(4096, 4096)).toBe(backend === 'mmap');
    f.advise('random');
    f.close();
  });
});

describe.runIf(nativeAvailable)('mmap chunks', () => {
  const tmp = tempDirPerTest('tlog-chunk-');

  it('big chunks (torn down on a thread) keep every byte through grow and close, and stay unusable after', async () => {
    const path = join(tmp.dir, 'big.bin');
    const size = 32 << 20;
    const f = openMappedFile(path, { create: true, size, chunkSize: 16 << 20, backend: 'mmap' });
    f.writeU32(size - 8, 0xcafe);
    f.writeU32(5, 0xbeef);
    f.grow(size + (16 << 20));
    f.writeU32(size + 4, 0xf00d);
    expect(f.readU32(size - 8)).toBe(0xcafe);
    f.close();
    expect(() => f.readU32(5)).toThrow(/closed/);
    // The teardown finishes on its thread meanwhile; the file never saw it.
    await new Promise((r) => setTimeout(r, 50));
    const bytes = readFileSync(path);
    expect([bytes.readUInt32LE(5), bytes.readUInt32LE(size - 8), bytes.readUInt32LE(size + 4)]).toEqual([0xbeef, 0xcafe, 0xf00d]);
  });

  it('makes its views on first access, over windows of at most 16 MiB (V8 counts them as external memory)', () => {
    // Each view over a mapping counts as external memory to V8, and every 64 MiB of it forces a
    // collection: one whole-file view per index made opening 100 indexes of 64 MiB cost 100.
    const path = join(tmp.dir, 'lazy.bin');
    const size = 64 << 20;
    const external = () => process.memoryUsage().external;
    const before = external();
    const f = openMappedFile(path, { create: true, size, backend: 'mmap' });
    expect(external() - before).toBeLessThan(1 << 20);
    f.writeU32(8, 0xfeed);
    expect(external() - before).toBeLessThanOrEqual((16 << 20) + (1 << 20));
    f.writeU32(size - 8, 0xbeef);
    expect(external() - before).toBeLessThanOrEqual((32 << 20) + (1 << 20));
    expect([f.readU32(8), f.readU32(size - 8)]).toEqual([0xfeed, 0xbeef]);
    f.close();
    const disk = readFileSync(path);
    expect([disk.readUInt32LE(8), disk.readUInt32LE(size - 8)]).toEqual([0xfeed, 0xbeef]);
  });

  it('reads and writes across chunk boundaries', () => {
    const path = join(tmp.dir, 'h.bin');
    const f = openMappedFile(path, { create: true, size: 4 * pageSize, chunkSize: pageSize, backend: 'mmap' });
    const edge = pageSize - 3;
    f.writeU64(edge, 2 ** 40 + 12345);
    expect(f.readU64(edge)).toBe(2 ** 40 + 12345);
    f.writeU32(2 * pageSize - 2, 0x01020304);
    expect(f.readU32(2 * pageSize - 2)).toBe(0x01020304);
    const big = Uint8Array.from({ length: 2 * pageSize + 10 }, (_, i) => i & 0xff);
    f.writeBytes(pageSize - 5, big);
    expect(f.readBytes(pageSize - 5, big.length)).toEqual(big);
    expect(f.equals(pageSize - 5, big)).toBe(true);
    // A difference on either side of a window boundary is seen.
    const far = big.slice(0, 10);
    far[9] = far[9]! ^ 1;
    expect(f.equals(pageSize - 5, far)).toBe(false);
    const near = big.slice(0, 10);
    near[0] = near[0]! ^ 1;
    expect(f.equals(pageSize - 5, near)).toBe(false);
    f.fill(pageSize - 1, 2, 9);
    expect([...f.readBytes(pageSize - 1, 2)]).toEqual([9, 9]);
    f.grow(6 * pageSize);
    expect(f.readBytes(pageSize - 5 + 10, 100)).toEqual(big.subarray(10, 110));
    f.sync();
    f.close();
    const disk = readFileSync(path);
    expect(disk.subarray(pageSize + 20, pageSize + 40)).toEqual(Buffer.from(big.subarray(25, 45)));
  });

  it('rejects chunk sizes that are not page multiples or over 1 GiB', () => {
    const path = join(tmp.dir, 'i.bin');
    expect(() => openMappedFile(path, { create: true, size: 4096, chunkSize: 1000, backend: 'mmap' })).toThrow(RangeError);
    expect(() => openMappedFile(path, { create: true, size: 4096, chunkSize: 2 ** 31, backend: 'mmap' })).toThrow(RangeError);
  });
});
