/**
 * bench/reopen: how long a big log takes to open again after its writer was killed with
 * SIGKILL mid-append (recovery to the commit point, index catch-up), and to rebuild its hot
 * index from the tiles.
 *
 *   npm run build && node dist/bench/reopen.js [--entries 10000000] [--dir /path]
 *
 * Target on a 2-core machine: reopen after SIGKILL under 2 s at 10 million entries.
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Log } from '../src/log/log.js';
import { logPaths, type LogPaths } from '../src/tile-store/paths.js';

const { values } = parseArgs({
  options: {
    entries: { type: 'string', default: '1000000' },
    dir: { type: 'string', default: os.tmpdir() },
    child: { type: 'string' },
  },
});

function pathsIn(dir: string): LogPaths {
  return logPaths({ tilesRoot: path.join(dir, 'tiles'), checkpointsRoot: path.join(dir, 'cp'), stateRoot: path.join(dir, 'state') }, 'bench');
}

if (values.child) {
  // The writer: appends in chunks until killed, telling the parent the committed size.
  const log = await Log.init(pathsIn(values.child), 'bench.example/reopen', { maxBatch: 16384, indexCapacity: Number(values.entries) * 2 });
  const target = Number(values.entries);
  let next = 0;
  for (;;) {
    const chunk = Array.from({ length: 16384 }, () => Buffer.from(`entry-${next++}-${'x'.repeat(40)}`));
    // Keep going past the target so the kill lands mid-batch.
    await Promise.all(log.appendMany(chunk));
    process.send!({ size: log.treeSize });
    if (log.treeSize >= target) process.send!({ ready: true });
  }
} else {
  const n = Number(values.entries);
  const dir = mkdtempSync(path.join(values.dir!, 'tlog-reopen-'));
  console.log(`bench/reopen: ${n} entries in ${dir}`);
  const t0 = performance.now();
  const child = fork(new URL(import.meta.url).pathname, ['--child', dir, '--entries', String(n)], { stdio: 'inherit' });
  let killedAt = 0;
  let lastSize = 0;
  await new Promise<void>((resolve) => {
    child.on('message', (m: { size?: number; ready?: boolean }) => {
      if (m.size !== undefined) lastSize = m.size;
      if (m.ready && !killedAt) {
        killedAt = lastSize;
        // Let the next batch start, then kill it mid-write.
        setTimeout(() => child.kill('SIGKILL'), 20);
      }
    });
    child.on('exit', () => resolve());
  });
  console.log(`built ${killedAt}+ entries in ${((performance.now() - t0) / 1000).toFixed(1)} s, writer killed with SIGKILL mid-batch`);
  let t = performance.now();
  const log = await Log.open(pathsIn(dir));
  const reopen = performance.now() - t;
  console.log(`reopen after SIGKILL: ${reopen.toFixed(0)} ms (tree size ${log.treeSize})`);
  await log.close();
  t = performance.now();
  await Log.rebuildIndex(pathsIn(dir));
  console.log(`index rebuild from tiles: ${((performance.now() - t) / 1000).toFixed(2)} s`);
  t = performance.now();
  const again = await Log.open(pathsIn(dir));
  console.log(`open after rebuild: ${(performance.now() - t).toFixed(0)} ms`);
  const heap = process.memoryUsage();
  console.log(`heap used ${(heap.heapUsed / 2 ** 20).toFixed(0)} MiB, RSS ${(heap.rss / 2 ** 20).toFixed(0)} MiB`);
  await again.close();
  rmSync(dir, { recursive: true, force: true });
}
