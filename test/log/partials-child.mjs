/**
 * Child of partials.test.ts: opens a log with small journal segments and no timed flush, appends
 * entries one at a time (each answered before the next is sent), flushes after the entries
 * listed, reports `acked <index>` for each and `done` at the end, then waits to be killed.
 * Plain ESM against the compiled engine in dist/.
 *
 *   node test/log/partials-child.mjs <tilesRoot> <checkpointsRoot> <stateRoot> <tenant> <count> <entry bytes> <segment bytes> <flush after, comma-separated>
 */
import { Log } from '../../dist/src/log/log.js';
import { logPaths } from '../../dist/src/tile-store/paths.js';

const [tilesRoot, checkpointsRoot, stateRoot, tenant, count, size, segmentBytes, flushAfter] = process.argv.slice(2);
const log = await Log.open(logPaths({ tilesRoot, checkpointsRoot, stateRoot }, tenant), {
  flushIntervalMs: 1e9,
  journal: { segmentBytes: Number(segmentBytes) },
});
const flushes = new Set(
  flushAfter
    .split(',')
    .filter((s) => s !== '')
    .map(Number),
);
for (let i = log.treeSize; i < Number(count); i++) {
  const e = Buffer.alloc(Number(size), 0x61 + (i % 26));
  e.writeUInt32BE(i, 0);
  const r = await log.append(e);
  process.stdout.write(`acked ${r.index}\n`);
  if (flushes.has(i + 1)) {
    await log.flush();
    await log.settled();
  }
}
process.stdout.write('done\n');
setInterval(() => {}, 1000);
