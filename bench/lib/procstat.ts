/**
 * What a server process costs, from /proc: CPU seconds (all threads, and its child processes
 * for nginx's workers) and resident memory, now and at its peak.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { fmt } from './format.js';

/** Clock ticks per second of /proc/<pid>/stat times (`getconf CLK_TCK`, 100 on Linux nearly always). */
const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU seconds (user + system, all threads) a process has used, from /proc/<pid>/stat. */
function ownCpuSeconds(pid: number): number {
  return statCpuSeconds(`/proc/${pid}/stat`);
}

/**
 * CPU seconds of a process's first thread alone (/proc/<pid>/task/<pid>/stat): for node, the
 * event loop, where HTTP is parsed and answered.
 */
export function mainThreadCpuSeconds(pid: number): number {
  return statCpuSeconds(`/proc/${pid}/task/${pid}/stat`);
}

function statCpuSeconds(file: string): number {
  const stat = readFileSync(file, 'utf8');
  // Fields after "(comm)", which may itself hold spaces: state is field 3, utime 14, stime 15.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

/** The live child processes of `pid` (nginx's workers), from /proc/<pid>/task/<pid>/children. */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * CPU seconds of a process and its live children. A child's time is counted while it runs: use it
 * for servers whose children live as long as they do (nginx's workers).
 */
export function cpuSecondsOf(pid: number): number {
  let s = ownCpuSeconds(pid);
  for (const c of childrenOf(pid)) {
    try {
      s += ownCpuSeconds(c);
    } catch {
      // gone in between
    }
  }
  return s;
}

export function rssOf(pid: number): { rssMiB: number; peakMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+([0-9]+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMiB: kb('VmRSS') / 1024, peakMiB: kb('VmHWM') / 1024 };
}

export interface CpuUse {
  /** Server CPU seconds over the run. */
  readonly serverSeconds: number;
  readonly serverPct: number;
  readonly benchPct: number;
  /** Server CPU microseconds per request (or entry) given to the meter, NaN for 0. */
  readonly perUs: number;
  readonly text: string;
}

/**
 * Starts measuring the CPU of the server and of this process (the load generator runs in it)
 * over a run. On a 2-core machine the load generator takes most of a core: when server + bench
 * come near 200%, the machine, not the server, is the limit.
 */
export function cpuMeter(serverPid: number): (requests: number, per?: string) => CpuUse {
  const t0 = performance.now();
  const s0 = cpuSecondsOf(serverPid);
  const b0 = process.cpuUsage();
  return (requests, per = 'request') => {
    const wall = (performance.now() - t0) / 1000;
    const server = cpuSecondsOf(serverPid) - s0;
    const b = process.cpuUsage(b0);
    const bench = (b.user + b.system) / 1e6;
    const serverPct = (server / wall) * 100;
    const benchPct = (bench / wall) * 100;
    const perUs = requests > 0 ? (server / requests) * 1e6 : NaN;
    const perText = requests > 0 ? `, ${fmt(perUs)} us server CPU per ${per}` : '';
    return {
      serverSeconds: server,
      serverPct,
      benchPct,
      perUs,
      text: `CPU: server ${fmt(serverPct)}%, bench ${fmt(benchPct)}% of ${os.cpus().length * 100}%${perText}`,
    };
  };
}
