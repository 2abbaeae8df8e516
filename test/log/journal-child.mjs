/**
 * Child of journal.test.ts: opens a log whose deferred files are never flushed (so every batch
 * lives only in the journal and the page cache), appends batches of entries and reports each
 * acknowledged batch on stdout (`acked <first index> <count>`, then `checkpoint <size> <note in
 * base64>`), then `done`, then waits to be killed. Plain ESM against the compiled engine in dist/.
 * With <flushAfter>, it flushes once after that many batches and reports the commit point the
 * hot index then has on disk (`durable <size> <seq>`); <segmentBytes> sets the journal's.
 *
 *   node test/log/journal-child.mjs <tilesRoot> <checkpointsRoot> <stateRoot> <tenant> <batches> [<flushAfter> [<segmentBytes>]]
 */
import { Log } from '../../dist/src/log/log.js';
import { logPaths } from '../../dist/src/tile-store/paths.js';

const [tilesRoot, checkpointsRoot, stateRoot, tenant, batches, flushAfter, segmentBytes] = process.argv.slice(2);
const log = await Log.open(logPaths({ tilesRoot, checkpointsRoot, stateRoot }, tenant), {
  flushIntervalMs: 1e9,
  ...(segmentBytes ? { journal: { segmentBytes: Number(segmentBytes) } } : {}),
});
let n = 0;
for (let b = 0; b < Number(batches); b++) {
  // Sizes cross tile boundaries: 1, 37, 255, 300, 1, 37, ...
  const count = [1, 37, 255, 300][b % 4];
  const entries = Array.from({ length: count }, () => Buffer.from(`journal child entry ${n++}`));
  const results = await Promise.all(log.appendMany(entries));
  process.stdout.write(`acked ${results[0].index} ${count}\n`);
  process.stdout.write(`checkpoint ${results[0].treeSize} ${Buffer.from(results[0].checkpoint).toString('base64')}\n`);
  if (flushAfter !== undefined && b + 1 === Number(flushAfter)) {
    await log.flush();
    // The engine's own index (a private field to TypeScript, reachable from plain JS).
    const d = log.index.durableCommitPoint;
    process.stdout.write(`durable ${d.treeSize} ${d.seq}\n`);
  }
}
process.stdout.write('done\n');
setInterval(() => {}, 1000);
