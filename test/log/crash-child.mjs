/**
 * Child driver of the crash test (crash.test.ts): opens a log and appends to it until it is
 * killed with SIGKILL. Plain ESM JavaScript on purpose: it runs as plain `node` against the
 * compiled engine in dist/ (the test builds dist/ first when it is missing or stale).
 *
 *   node test/log/crash-child.mjs --tiles T --checkpoints C --state S --tenant t \
 *     --cycle N --seed X --mode mixed|heavy --acks FILE
 *
 * stdout: `opening` just before Log.open, `ready <treeSize>` once it returned, `acked` once the
 * first acknowledgements are in FILE.
 * FILE (appended with write(2), so a SIGKILL loses nothing already written):
 *   `ack <index> <id> <leafHashB64>[ dup]`  one line per append whose promise resolved, only after
 *                                     it resolved; ` dup` when the engine answered with the index
 *                                     of an earlier copy of the same bytes (dedup: entries shorter
 *                                     than their id header are not unique);
 *   `cp <treeSize> <noteB64>`         the checkpoint an acknowledged batch came back with.
 * The ack lines of a batch are written from a microtask queued when its first promise
 * resolves, i.e. after every promise of the batch has resolved. A SIGKILL in the middle of a
 * write can cut the last line: the parent ignores an unterminated last line.
 *
 * Any failure of the engine while running ends the child with exit code 2 and a message on
 * stderr; the parent expects only death by SIGKILL.
 */
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { Log } from '../../dist/src/log/log.js';
import { logPaths } from '../../dist/src/tile-store/paths.js';
import { entryBytes, entryId } from './crash-entries.mjs';
import { prng, randInt as randIntIn } from '../prng.mjs';

const { values: opt } = parseArgs({
  options: {
    tiles: { type: 'string' },
    checkpoints: { type: 'string' },
    state: { type: 'string' },
    tenant: { type: 'string', default: 'default' },
    cycle: { type: 'string' },
    seed: { type: 'string' },
    mode: { type: 'string', default: 'mixed' },
    acks: { type: 'string' },
  },
});
const cycle = Number(opt.cycle);
const heavy = opt.mode === 'heavy';

function die(msg) {
  try {
    fs.writeSync(2, `crash-child cycle ${cycle}: ${msg}\n`);
  } finally {
    process.exit(2);
  }
}

/** write(2) until everything is written (stdout may be a non-blocking pipe). */
function writeAll(fd, text) {
  const buf = Buffer.from(text, 'utf8');
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(fd, buf, off);
    } catch (e) {
      if (e.code !== 'EAGAIN') throw e;
    }
  }
}

// Nobody should need this: the parent kills within a second or so.
setTimeout(() => die('not killed after 60 s'), 60_000);

const rand = prng(Number(opt.seed));
const randInt = (lo, hi) => randIntIn(rand, lo, hi);

const ackFd = fs.openSync(opt.acks, 'a');
let lines = [];
let flushQueued = false;
let lastCp = -1;
let firstAck = true;
function flush() {
  flushQueued = false;
  const text = lines.join('');
  lines = [];
  writeAll(ackFd, text);
  if (firstAck) {
    firstAck = false;
    writeAll(1, 'acked\n');
  }
}
function record(id, r) {
  if (r.treeSize !== lastCp) {
    lastCp = r.treeSize;
    lines.push(`cp ${r.treeSize} ${Buffer.from(r.checkpoint, 'utf8').toString('base64')}\n`);
  }
  lines.push(`ack ${r.index} ${id} ${Buffer.from(r.leafHash).toString('base64')}${r.duplicate ? ' dup' : ''}\n`);
  if (!flushQueued) {
    flushQueued = true;
    queueMicrotask(flush);
  }
}

writeAll(1, 'opening\n');
let log;
try {
  log = await Log.open(logPaths({ tilesRoot: opt.tiles, checkpointsRoot: opt.checkpoints, stateRoot: opt.state }, opt.tenant));
} catch (e) {
  die(`open: ${e.stack ?? e}`);
}
writeAll(1, `ready ${log.treeSize}\n`);

// Entries queued in the engine and not yet acknowledged.
let inflight = 0;
const waiting = new Set();
// Entry making and integration share one thread: generating far ahead of the engine would
// starve the batch being written (each of its awaits waits for a turn of this loop), so wait
// for a batch to finish once this many entries are queued.
const maxInflight = heavy ? 4000 : 1500;
let seq = 0;

function track(p, id) {
  inflight++;
  const t = p.then(
    (r) => {
      inflight--;
      waiting.delete(t);
      record(id, r);
    },
    (e) => die(`append ${id}: ${e.stack ?? e}`),
  );
  waiting.add(t);
}

for (;;) {
  const r = rand();
  if (!heavy && r < 0.35) {
    // A few single appends, which group-commit together or integrate alone.
    for (let k = randInt(1, 8); k > 0; k--) {
      const s = seq++;
      track(log.append(entryBytes(cycle, s)), entryId(cycle, s));
    }
  } else {
    const n = heavy ? randInt(500, 2001) : r < 0.7 ? randInt(1, 60) : randInt(1, 2001);
    const first = seq;
    seq += n;
    const entries = [];
    for (let s = first; s < seq; s++) entries.push(entryBytes(cycle, s));
    log.appendMany(entries).forEach((p, k) => track(p, entryId(cycle, first + k)));
  }
  if (!heavy && rand() < 0.15) {
    // Quiet moment: let everything integrate, so that lone small batches happen too.
    await Promise.all(waiting);
  } else if (inflight > maxInflight) {
    while (inflight > maxInflight / 2) await Promise.race(waiting);
  } else {
    await new Promise((res) => setImmediate(res));
  }
}
