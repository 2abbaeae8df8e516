/**
 * Appends at a fixed rate (open loop: a request is due on schedule whether or not earlier ones
 * were answered, as independent clients send) over a bounded pool of keep-alive connections, and
 * the time from when an entry was due (so waiting for a free connection counts) to
 *   - its answer, and
 *   - the first published checkpoint that covers it (tree size > its index), seen by watching the
 *     checkpoint file on disk (inotify, with a 5 ms poll as a fallback): what a client polling
 *     the log's checkpoint would see at best, with no HTTP polling load on the server.
 */
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { nextEntry } from './entries.js';

/** Tree sizes of a log's published checkpoint as they change, with when they were seen. */
export class CheckpointWatch {
  /** Increasing sizes, each with the performance.now() it was first seen. */
  private readonly seen: { t: number; size: number }[] = [];
  private readonly watcher: FSWatcher;
  private readonly poll: NodeJS.Timeout;

  constructor(private readonly file: string) {
    this.check();
    this.watcher = watch(path.dirname(file), (_event, name) => {
      if (name === path.basename(file)) this.check();
    });
    this.poll = setInterval(() => this.check(), 5);
  }

  private check(): void {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch {
      return; // between a rename's unlink and link, or not there yet
    }
    // c2sp.org/tlog-checkpoint: origin line, then the tree size in decimal.
    const size = Number(text.split('\n')[1]);
    if (Number.isSafeInteger(size) && size > this.size) this.seen.push({ t: performance.now(), size });
  }

  get size(): number {
    return this.seen.length ? this.seen[this.seen.length - 1]!.size : -1;
  }

  /** When a checkpoint covering `index` was first seen, or undefined if none has been. */
  coveredAt(index: number): number | undefined {
    let lo = 0;
    let hi = this.seen.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.seen[mid]!.size > index) hi = mid;
      else lo = mid + 1;
    }
    return this.seen[lo]?.t;
  }

  /** Resolves once a checkpoint covers `index`; false after `timeoutMs`. */
  async waitCovering(index: number, timeoutMs: number): Promise<boolean> {
    const until = performance.now() + timeoutMs;
    while (this.size <= index) {
      if (performance.now() > until) return false;
      await new Promise((r) => setTimeout(r, 5));
    }
    return true;
  }

  close(): void {
    this.watcher.close();
    clearInterval(this.poll);
  }
}

/** What an answer says: the entry's index and, if it carries a checkpoint, that checkpoint's size. */
export type AnswerParser = (body: string) => { index: number; checkpointSize?: number };

export interface FixedRateRun {
  readonly sent: number;
  readonly answered: number;
  /** Non-200 answers and transport errors. */
  readonly failed: number;
  /** What failed, by HTTP status or error code. */
  readonly failures: Record<string, number>;
  /** Send -> answer, ms, of each answered entry. */
  readonly answerMs: number[];
  /** Send -> first published checkpoint covering it, ms. */
  readonly publishedMs: number[];
  /** Answers carrying a checkpoint that did not cover their entry (should be 0). */
  readonly answerNotCovering: number;
  /** Answered entries no checkpoint covered within the wait after the run. */
  readonly neverPublished: number;
  /** Wall seconds from the first send to the last answer. */
  readonly seconds: number;
  /** How late this process sent entries after they were due, p99, ms: large means the load generator, not the server, fell behind. */
  readonly lagP99Ms: number;
}

/**
 * Sends `rate` single-entry POSTs a second to `url` + `urlPath` for `seconds` (distinct 64-byte
 * entries) over at most `connections` keep-alive connections, then waits up to `settleMs` for the
 * answers and for a checkpoint in `checkpointFile` covering every answered entry.
 * The pool is bounded because an unbounded one turns a slow answer into a storm of new
 * connections, and a full listen backlog then costs SYN retransmits (1 s, 3 s, 7 s ...): a
 * measure of the kernel's backlog, not of the log. Connections are used in turn (fifo), so none
 * idles into the server's keep-alive timeout.
 */
export async function fixedRate(o: {
  url: string;
  urlPath: string;
  rate: number;
  seconds: number;
  connections: number;
  checkpointFile: string;
  parse: AnswerParser;
  settleMs?: number;
}): Promise<FixedRateRun> {
  const { hostname, port } = new URL(o.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: o.connections, maxFreeSockets: o.connections, scheduling: 'fifo' });
  const cp = new CheckpointWatch(o.checkpointFile);
  const total = Math.round(o.rate * o.seconds);
  const answers: { sent: number; answered: number; index: number }[] = [];
  let sent = 0;
  let settled = 0;
  let failed = 0;
  const failures: Record<string, number> = {};
  const fail = (why: string) => {
    failed++;
    failures[why] = (failures[why] ?? 0) + 1;
  };
  let answerNotCovering = 0;
  let lastAnswer = 0;
  let allSettled: () => void = () => {};
  const done = new Promise<void>((r) => (allSettled = r));
  const settle = () => {
    if (++settled === total) allSettled();
  };

  const lags: number[] = [];
  const send = (due: number) => {
    const body = nextEntry();
    const t0 = due;
    lags.push(performance.now() - due);
    const req = http.request(
      { hostname, port, method: 'POST', path: o.urlPath, agent, headers: { 'content-type': 'application/octet-stream', 'content-length': body.length } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const t1 = performance.now();
          lastAnswer = t1;
          if (res.statusCode !== 200) fail(`HTTP ${res.statusCode}`);
          else {
            const a = o.parse(Buffer.concat(chunks).toString('utf8'));
            if (a.checkpointSize !== undefined && a.checkpointSize <= a.index) answerNotCovering++;
            answers.push({ sent: t0, answered: t1, index: a.index });
          }
          settle();
        });
      },
    );
    req.on('error', (e: NodeJS.ErrnoException) => {
      fail(e.code ?? e.message);
      settle();
    });
    req.end(body);
  };

  const start = performance.now();
  // Catch up to the schedule every millisecond or two: timers are late under load, the rate is not.
  const ticker = setInterval(() => {
    const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * o.rate) + 1);
    while (sent < due) send(start + (sent++ * 1000) / o.rate);
    if (sent >= total) clearInterval(ticker);
  }, 1);
  const settleMs = o.settleMs ?? 60_000;
  const timedOut = await Promise.race([done.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), o.seconds * 1000 + settleMs))]);
  clearInterval(ticker);
  if (timedOut) for (let i = settled; i < total; i++) fail('no answer');
  const maxIndex = answers.reduce((m, a) => Math.max(m, a.index), -1);
  if (maxIndex >= 0) await cp.waitCovering(maxIndex, settleMs);
  cp.close();
  agent.destroy();

  const answerMs: number[] = [];
  const publishedMs: number[] = [];
  let neverPublished = 0;
  for (const a of answers) {
    answerMs.push(a.answered - a.sent);
    const t = cp.coveredAt(a.index);
    if (t === undefined) neverPublished++;
    // A checkpoint seen before the entry was sent covers an older copy (a duplicate): not counted.
    else publishedMs.push(Math.max(0, t - a.sent));
  }
  return {
    sent,
    answered: answers.length,
    failed,
    failures,
    answerMs,
    publishedMs,
    answerNotCovering,
    neverPublished,
    seconds: ((lastAnswer || performance.now()) - start) / 1000,
    lagP99Ms: percentile(lags, 99),
  };
}

/** The p-th percentile (0-100) of `xs` (nearest rank), NaN if empty. */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}
