/**
 * Free space on the filesystems a log writes to, read with statfs(2), and what the batches in
 * flight in this process have claimed of it.
 *
 * Why: a write that fails half-way through a batch for want of space (ENOSPC) leaves the batch
 * stuck between its files and its commit. The log instead checks, before it admits entries and
 * before it starts a batch, that the space the batch needs plus a reserve is free, and refuses
 * the work (HTTP 503) when it is not: the disk never gets full under a batch the log started.
 * Claims are per filesystem and shared by every log of the process (tenants often share a
 * disk), so two batches in flight never count the same free bytes twice.
 */
import { statfsSync, statSync } from 'node:fs';
import path from 'node:path';

/** Bytes claimed by batches in flight in this process, by filesystem (st_dev). */
const claimed = new Map<number, number>();

/** The nearest existing directory at or above `dir` (statfs needs a path that exists). */
function existing(dir: string): string {
  let d = path.resolve(dir);
  for (;;) {
    try {
      statSync(d);
      return d;
    } catch {
      const up = path.dirname(d);
      if (up === d) return d;
      d = up;
    }
  }
}

/** Bytes an unprivileged writer may still use on the filesystem holding `dir` (statfs f_bavail). */
export function freeBytes(dir: string): number {
  const s = statfsSync(existing(dir));
  return s.bavail * s.bsize;
}

export interface SpaceReading {
  /** The fewest bytes free over the filesystems, less what batches in flight claimed there. */
  readonly free: number;
  /** Which of the named directories that filesystem holds (its name, not its path). */
  readonly where: string;
}

export class DiskSpace {
  private readonly filesystems: { readonly dir: string; readonly dev: number; readonly names: string[] }[] = [];

  /** `dirs`: a name for each directory the owner writes to (several may share one filesystem). */
  constructor(dirs: Readonly<Record<string, string>>) {
    for (const [name, dir] of Object.entries(dirs)) {
      const at = existing(dir);
      const dev = statSync(at).dev;
      const fs = this.filesystems.find((f) => f.dev === dev);
      if (fs) fs.names.push(name);
      else this.filesystems.push({ dir: at, dev, names: [name] });
    }
  }

  /**
   * Reads every filesystem now (one statfs each, a few microseconds). One that cannot be read
   * (its directory went away) is left out: the writes there will tell.
   */
  read(): SpaceReading {
    let best: SpaceReading | null = null;
    for (const f of this.filesystems) {
      let bytes: number;
      try {
        bytes = freeBytes(f.dir);
      } catch {
        continue;
      }
      const free = bytes - (claimed.get(f.dev) ?? 0);
      if (!best || free < best.free) best = { free, where: f.names.join(' and ') };
    }
    return best ?? { free: Number.POSITIVE_INFINITY, where: '' };
  }

  /**
   * Claims `bytes` on every filesystem until the returned function is called (once the
   * claimant's writes have landed, when statfs counts them itself).
   */
  claim(bytes: number): () => void {
    for (const f of this.filesystems) claimed.set(f.dev, (claimed.get(f.dev) ?? 0) + bytes);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      for (const f of this.filesystems) claimed.set(f.dev, (claimed.get(f.dev) ?? 0) - bytes);
    };
  }
}

/** Bytes as a short readable figure ("1.5 MiB"). */
export function formatBytes(n: number): string {
  if (n < 1024) return `${Math.max(0, Math.floor(n))} bytes`;
  if (n < 1 << 20) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1 << 30) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  return `${(n / (1 << 30)).toFixed(1)} GiB`;
}
