/**
 * Child of journal.test.ts: opens a log whose deferred files are never flushed (so every batch
 * lives only in the journal and the page cache), appends batches of entries and reports each
 * acknowledged batch on stdout (`acked <first index> <count>`), then `done`, then waits to be
 * killed. Plain ESM against the compiled engine in dist/.
 *
 *   node test/log/journal-child.mjs <tilesRoot> <checkpointsRoot> <stateRoot> <tenant> <batches>
 */
import { Log } from '../../dist/src/log/log.js';
import { logPaths } from '../../dist/src/tile-store/paths.js';

const [tilesRoot, checkpointsRoot, stateRoot, tenant, batches] = process.argv.slice(2);
const log = await Log.open(logPaths({ tilesRoot, checkpointsRoot, stateRoot }, tenant), { flushIntervalMs: 1e9 });
let n = 0;
for (let b = 0; b < Number(batches); b++) {
  // Sizes cross tile boundaries: 1, 37, 255, 300, 1, 37, ...
  const count = [1, 37, 255, 300][b % 4];
  const entries = Array.from({ length: count }, () => Buffer.from(`journal child entry ${n++}`));
  const results = await Promise.all(log.appendMany(entries));
  process.stdout.write(`acked ${results[0].index} ${count}\n`);
}
process.stdout.write('done\n');
setInterval(() => {}, 1000);
