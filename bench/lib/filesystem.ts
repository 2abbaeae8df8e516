/**
 * What file system a benchmark writes to, printed with its figures: per-file costs differ by
 * an order of magnitude between file systems. On ext4 without a journal (this project's CI
 * machine's root) each new inode skips every inode freed in the last 60 s (the kernel's
 * recently_deleted()), so a log that replaces files every batch pays more the longer it runs.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

export function describeFilesystem(dir: string): string {
  let type = '?';
  let source = '?';
  try {
    [type = '?', source = '?'] = execFileSync('findmnt', ['-no', 'FSTYPE,SOURCE', '--target', dir], { encoding: 'utf8' }).trim().split(/\s+/);
  } catch {
    return `${dir}: file system unknown (no findmnt)`;
  }
  if (type !== 'ext4') return `${dir}: ${type} on ${source}`;
  // jbd2 lists each journaled device as <name>-8.
  const journaled = existsSync(`/proc/fs/jbd2/${path.basename(source)}-8`);
  return `${dir}: ext4 on ${source}, ${journaled ? 'with a journal' : 'WITHOUT a journal (new inodes skip those freed in the last 60 s: file creation slows as a run goes on)'}`;
}
