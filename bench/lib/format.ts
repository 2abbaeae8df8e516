/** Number and load-average formatting shared by the benchmarks' output. */
import os from 'node:os';

export function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

/** The 1, 5 and 15 minute load averages: other processes on the machine skew every figure. */
export function loadAverage(): string {
  return os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
}
