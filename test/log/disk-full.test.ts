/**
 * A full disk (src/log/disk-space.ts, src/log/sequencer.ts): appends are refused with 503 disk_full
 * and Retry-After before the disk is full, /healthz names the tenant that cannot write and why,
 * a signed batch that meets ENOSPC waits for room instead of stopping the log, writes resume
 * by themselves once space is back (no restart), and no acknowledged entry is ever lost. A
 * small disk (20 MiB) takes appends: the journal segments and the index are sized to it.
 *
 * Real full disks: each test mounts its own tmpfs (size=20m), which gives a real ENOSPC. That
 * needs root (CI runs as root); elsewhere those tests are skipped, and say so loudly. The
 * injected-ENOSPC tests run everywhere.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readdirSync, rmSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../../src/config/config.js';
import { ErrorCode, isTlogError } from '../../src/errors.js';
import { createApp } from '../../src/http/app.js';
import { Log, type LogOptions } from '../../src/log/log.js';
import { logPaths, type LogPaths } from '../../src/tile-store/paths.js';
import { journalDir } from '../../src/log/replay.js';
import { indexPath } from '../../src/log/open-index.js';
import { freeBytes } from '../../src/storage/space.js';
import { OPEN_AUTH, TenantRegistry } from '../../src/tenants/registry.js';
import { until } from '../helpers/wait.js';
import { dataRootsIn, makeTempDir, removeDir } from '../helpers/temp-dirs.js';
import { auditLogFiles } from './helpers.js';

const ORIGIN = 'example.com/disk-full';
const TENANT = 'df';
const isRoot = process.getuid?.() === 0;
if (!isRoot) {
  console.warn(
    '\n*** test/log/disk-full.test.ts: SKIPPING the real-ENOSPC tests: mounting a tmpfs needs root (CI runs them as root). ' +
      'Run as root to check the log on a really full disk. ***\n',
  );
}

const noSpace = () => Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
/** A tmpfs of `size` at a new directory (root only: the caller skips otherwise). */
function mountTmpfs(size: string): string {
  const d = makeTempDir('tlog-full-');
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', d]);
  return d;
}

function unmount(d: string): void {
  // Lazily: a test that failed may have left a log open on it.
  execFileSync('umount', ['-l', d]);
  removeDir(d);
}

/** Fills the filesystem holding `dir` until at most `leave` bytes are free; returns the filler file. */
function fill(dir: string, leave: number): string {
  const f = path.join(dir, `filler-${process.hrtime.bigint()}`);
  const fd = openSync(f, 'w');
  const chunk = Buffer.alloc(1 << 20, 0x5a);
  try {
    for (let free = freeBytes(dir); free > leave; free = freeBytes(dir)) {
      try {
        writeSync(fd, chunk, 0, Math.min(chunk.length, free - leave));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOSPC') break;
        throw e;
      }
    }
  } finally {
    closeSync(fd);
  }
  return f;
}

/** Every acknowledged entry is in the log at its index, with its bytes; and the whole log audits. */
async function checkAcked(log: Log, p: LogPaths, acked: Map<number, string>): Promise<void> {
  const size = log.treeSize;
  const { entries } = await log.readEntries(0, size);
  for (const [index, entry] of acked) expect(Buffer.from(entries[index]!).toString(), `entry ${index}`).toBe(entry);
  expect((await auditLogFiles(log, p, ORIGIN)).treeSize).toBe(size);
}

/** The HTTP service over one log (open writes, as on loopback). */
async function serve(log: Log) {
  const registry = new TenantRegistry();
  await registry.add(log, OPEN_AUTH, DEFAULT_LIMITS);
  const app = createApp(registry, { logger: pino({ level: 'silent' }) });
  const append = (body: string) => app.request(`/${TENANT}/append`, { method: 'POST', body, headers: { 'Content-Type': 'application/octet-stream' } });
  const health = async () => {
    const r = await app.request('/healthz');
    return { status: r.status, body: (await r.json()) as { status: string; tenants: Record<string, { writable: boolean; cannotWrite?: string }> } };
  };
  return { app, append, health };
}

describe('a signed batch that meets ENOSPC waits for room, then commits by itself (injected)', () => {
  let dir: string;
  let paths: LogPaths;
  beforeEach(() => {
    dir = makeTempDir('tlog-disk-full-');
    paths = logPaths(dataRootsIn(dir), TENANT);
  });
  afterEach(() => removeDir(dir));

  const cases: { where: string; reason: RegExp; opts: (full: () => boolean) => LogOptions }[] = [
    {
      where: 'its journal record',
      reason: /disk full \(ENOSPC\) writing the journal record: a signed batch waits for room/,
      opts: (full) => ({
        journal: {
          beforeAppend: () => {
            if (full()) throw noSpace();
          },
        },
      }),
    },
    {
      where: 'its checkpoint and history copy (after the commit point moved)',
      reason: /disk full \(ENOSPC\) writing the checkpoint and its history copy: a signed batch waits for room/,
      opts: (full) => ({
        durable: {
          beforeWrite: (p) => {
            if (full() && p.startsWith(paths.historyDir)) throw noSpace();
          },
        },
      }),
    },
  ];

  for (const c of cases) {
    it(`at ${c.where}: 503 disk_full and healthz say why, no restart needed, nothing acked lost`, async () => {
      await (await Log.init(paths, ORIGIN)).close();
      let full = false;
      const log = await Log.open(
        paths,
        c.opts(() => full),
      );
      const acked = new Map<number, string>();
      const { append, health } = await serve(log);
      for (let i = 0; i < 5; i++) {
        const r = await append(`before ${i}`);
        expect(r.status).toBe(200);
        acked.set(((await r.json()) as { index: number }).index, `before ${i}`);
      }
      expect((await health()).status).toBe(200);

      full = true;
      const held = log.append(Buffer.from('held'));
      await until('the batch waits for room', () => c.reason.test(log.cannotWrite ?? ''), 30_000);
      // New appends are refused, with the reason and a time to come back.
      const refused = await append('refused while full');
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('10');
      const body = (await refused.json()) as { error: string; code: string };
      expect(body.code).toBe('disk_full');
      expect(body.error).toMatch(c.reason);
      const h = await health();
      expect(h.status).toBe(503);
      expect(h.body.status).toBe('degraded');
      expect(h.body.tenants[TENANT]).toMatchObject({ writable: false, cannotWrite: expect.stringMatching(c.reason) });

      // Space is back: the waiting batch commits and is answered; appends go on.
      full = false;
      const r = await held;
      expect(r.index).toBe(5);
      acked.set(5, 'held');
      expect(log.cannotWrite).toBeNull();
      const after = await append('after');
      expect(after.status).toBe(200);
      acked.set(((await after.json()) as { index: number }).index, 'after');
      expect((await health()).body).toMatchObject({ status: 'ok', tenants: { [TENANT]: { writable: true } } });
      expect(log.treeSize).toBe(7);
      await checkAcked(log, paths, acked);
      await log.close();
      const again = await Log.open(paths);
      expect(again.treeSize).toBe(7);
      await checkAcked(again, paths, acked);
      await again.close();
    });
  }

  it('closing while a batch waits for room gives it up; a restart recovers every acknowledged entry', async () => {
    let full = false;
    const log = await Log.init(paths, ORIGIN, {
      durable: {
        beforeWrite: (p) => {
          if (full && p.startsWith(paths.historyDir)) throw noSpace();
        },
      },
    });
    const acked = new Map<number, string>();
    for (const r of await Promise.all(log.appendMany(['a', 'b', 'c'].map((s) => Buffer.from(s))))) acked.set(r.index, ['a', 'b', 'c'][r.index]!);
    full = true;
    const held = log.append(Buffer.from('committed, never answered')).catch((e: unknown) => e);
    await until('the batch waits for room', () => /waits for room/.test(log.cannotWrite ?? ''), 30_000);
    await log.close();
    expect(String(await held)).toMatch(/log df stopped: write .*ENOSPC/);
    full = false;
    // Its commit point had moved: the restart publishes it.
    const again = await Log.open(paths);
    expect(again.treeSize).toBe(4);
    await checkAcked(again, paths, acked);
    await again.close();
  });
});

describe.skipIf(!isRoot)('a really full disk (tmpfs, size=20m)', () => {
  let mnt: string;
  let paths: LogPaths;
  beforeEach(() => {
    mnt = mountTmpfs('20m');
    paths = logPaths(dataRootsIn(mnt), TENANT);
  });
  afterEach(() => unmount(mnt));

  it('a 20 MiB filesystem takes appends: the journal segments and the index are sized to it', async () => {
    const log = await Log.init(paths, ORIGIN);
    const acked = new Map<number, string>();
    const first = await log.append(Buffer.from('first'));
    acked.set(first.index, 'first');
    // 3 MiB more, in batches.
    for (let b = 0; b < 6; b++) {
      const batch = Array.from({ length: 500 }, (_, i) => `batch ${b} entry ${i} `.padEnd(1024, '.'));
      for (const r of await Promise.all(log.appendMany(batch.map((e) => Buffer.from(e))))) acked.set(r.index, batch[r.index - 1 - b * 500]!);
    }
    expect(statSync(indexPath(paths)).size).toBeLessThanOrEqual((20 << 20) / 32);
    for (const seg of readdirSync(journalDir(paths))) expect(statSync(path.join(journalDir(paths), seg)).size).toBeLessThanOrEqual((20 << 20) / 32);
    await checkAcked(log, paths, acked);
    await log.close();
    const again = await Log.open(paths);
    expect(again.treeSize).toBe(3001);
    await checkAcked(again, paths, acked);
    await again.close();
  });

  it('refuses appends with 503 disk_full before the disk is full, says why in healthz, and resumes by itself once space is back', async () => {
    const log = await Log.init(paths, ORIGIN);
    const { app, append, health } = await serve(log);
    const acked = new Map<number, string>();
    for (let i = 0; i < 20; i++) {
      const r = await append(`entry ${i}`);
      expect(r.status).toBe(200);
      acked.set(((await r.json()) as { index: number }).index, `entry ${i}`);
    }
    // Leave less than the reserve (the next 512 KiB journal segment and 256 KiB of slack).
    const filler = fill(mnt, 600 << 10);
    const refused = await append('refused');
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toMatch(/^[1-9][0-9]*$/);
    const body = (await refused.json()) as { error: string; code: string };
    expect(body.code).toBe('disk_full');
    expect(body.error).toMatch(/^log df cannot write: disk full: [0-9.]+ KiB free for the log's tiles and checkpoints and state, [0-9.]+ (KiB|MiB) needed/);
    const batch = await app.request(`/${TENANT}/append-batch`, {
      method: 'POST',
      body: JSON.stringify([Buffer.from('x').toString('base64')]),
      headers: { 'Content-Type': 'application/json' },
    });
    expect(batch.status).toBe(503);
    expect(((await batch.json()) as { code: string }).code).toBe('disk_full');
    // Refused before the disk was full: the room is still there, and nothing was written.
    expect(freeBytes(mnt)).toBeGreaterThan(256 << 10);
    expect(log.treeSize).toBe(20);
    const h = await health();
    expect(h.status).toBe(503);
    expect(h.body.tenants[TENANT]).toMatchObject({ writable: false, cannotWrite: expect.stringMatching(/^disk full: /) });

    rmSync(filler);
    // No append needed for healthz to see it: it reads the disk again.
    expect((await health()).body).toMatchObject({ status: 'ok', tenants: { [TENANT]: { writable: true } } });
    const ok = await append('after');
    expect(ok.status).toBe(200);
    acked.set(((await ok.json()) as { index: number }).index, 'after');
    expect(log.treeSize).toBe(21);
    await checkAcked(log, paths, acked);
    await log.close();
    const again = await Log.open(paths);
    await checkAcked(again, paths, acked);
    await again.close();
  });

  it('with the free-space check off, a real ENOSPC anywhere in a batch loses nothing acknowledged and the log writes again by itself', async () => {
    const reasons = new Set<string>();
    // A small index, so that growing it meets the full disk too.
    const opts: LogOptions = { checkFreeSpace: false, indexCapacity: 1024 };
    const log = await Log.init(paths, ORIGIN, opts);
    const acked = new Map<number, string>();
    const first = await log.append(Buffer.from('first'));
    acked.set(first.index, 'first');
    let n = 0;
    // Round after round the disk is filled to leave a little more room (a page more each time),
    // so that it runs out at a different point of the batch: its tiles (refused cleanly), the
    // history copy after the commit point, the index's growth (the batch waits for room).
    let leave = 0;
    let roomy = 0;
    for (let round = 0; round < 150 && !(roomy > 0 && reasons.has('clean') && reasons.has('held')); round++) {
      const filler = fill(mnt, leave);
      const entries = Array.from({ length: 300 }, () => `entry ${n++} `.padEnd(200, '.'));
      const results = log.appendMany(entries.map((e) => Buffer.from(e)));
      let answered = 0;
      for (const p of results)
        p.then(
          () => answered++,
          () => answered++,
        );
      await until(
        'every append answered, or a batch waiting for room',
        () => answered === entries.length || /waits for room/.test(log.cannotWrite ?? ''),
        30_000,
      );
      const held = answered < entries.length;
      rmSync(filler);
      const answers = await Promise.allSettled(results);
      let refused = 0;
      answers.forEach((r, i) => {
        if (r.status === 'fulfilled') acked.set(r.value.index, entries[i]!);
        else {
          refused++;
          expect(isTlogError(r.reason, ErrorCode.diskFull), String(r.reason)).toBe(true);
        }
      });
      if (held) reasons.add('held');
      else if (refused > 0) reasons.add('clean');
      else roomy++;
      leave = roomy > 0 && !held && refused === 0 ? 0 : leave + 4096;
      // Space is back: the next append goes through, and the log says it can write.
      const probe = await log.append(Buffer.from(`after round ${round}`));
      acked.set(probe.index, `after round ${round}`);
      expect(log.cannotWrite).toBeNull();
    }
    // The disk really was full in a batch, before its signature and after it.
    expect([...reasons].sort()).toEqual(['clean', 'held']);
    await checkAcked(log, paths, acked);
    await log.close();
    // No write cut short left its temp file behind to hold the space.
    expect((readdirSync(mnt, { recursive: true }) as string[]).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    const again = await Log.open(paths);
    await checkAcked(again, paths, acked);
    await again.close();
    // Dozens of rounds, each filling the disk: more than the default minute on a busy machine.
  }, 240_000);
});
