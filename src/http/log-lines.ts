/**
 * How the service's log lines look: one JSON object per line for machines (a file, a pipe, a
 * log collector), and one readable line per event on a terminal. Levels are names ("info",
 * "warn") in both, never pino's numbers.
 *
 * The terminal format is a pino destination of our own: it takes pino's JSON line, and writes
 * `HH:MM:SS.mmm LEVEL message key=value ...` (with an error's stack below it). It runs only on
 * a terminal, where a person reads at human speed; the JSON path is pino's own, untouched.
 */
import pino, { type DestinationStream, type Logger as PinoLogger } from 'pino';

export type LogFormat = 'json' | 'pretty';

/** What the terminal format writes to: a stream that may say it is a terminal. */
export interface LogStream {
  write(s: string): unknown;
  readonly isTTY?: boolean;
}

export interface LoggerOptions {
  /** pino level name; default TLOG_LOG_LEVEL, else "info". */
  readonly level?: string;
  /** Where lines go; default stdout. */
  readonly stream?: LogStream;
  /**
   * Default: TLOG_LOG_FORMAT ("json" or "pretty") if set, else pretty on a terminal and JSON
   * otherwise.
   */
  readonly format?: LogFormat;
  /** Colour the level on the terminal; default: unless NO_COLOR is set (no-color.org). */
  readonly color?: boolean;
}

/** The format a stream gets: an explicit choice, TLOG_LOG_FORMAT, or whether it is a terminal. */
export function logFormatFor(stream: LogStream, explicit?: LogFormat, env: NodeJS.ProcessEnv = process.env): LogFormat {
  if (explicit) return explicit;
  const v = env.TLOG_LOG_FORMAT;
  if (v === 'json' || v === 'pretty') return v;
  return stream.isTTY === true ? 'pretty' : 'json';
}

export function createLogger(o: LoggerOptions = {}): PinoLogger {
  const stream = o.stream ?? process.stdout;
  const level = o.level ?? process.env.TLOG_LOG_LEVEL ?? 'info';
  const options = {
    level,
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  if (logFormatFor(stream, o.format) === 'pretty') {
    return pino(options, prettyDestination(stream, o.color ?? process.env.NO_COLOR === undefined));
  }
  // pino's own fast destination for stdout; any other stream as given.
  return pino(options, stream === process.stdout ? pino.destination(1) : (stream as DestinationStream));
}

const LEVEL_COLOR: Record<string, string> = {
  trace: '\x1b[90m',
  debug: '\x1b[36m',
  info: '\x1b[32m',
  warn: '\x1b[33m',
  error: '\x1b[31m',
  fatal: '\x1b[41m',
};

/** A value as it reads best after `key=`: bare when that is unambiguous, else JSON. */
function value(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=\\\x00-\x1f\x7f]+$/.test(v) ? v : JSON.stringify(v);
  return JSON.stringify(v) ?? String(v);
}

/** One pino JSON object as a terminal line (and an error's stack, indented, below it). */
export function prettyLine(o: Record<string, unknown>, color = false): string {
  const { time, level, msg, err, ...rest } = o;
  const t = typeof time === 'string' ? time.slice(11, 23) : new Date(typeof time === 'number' ? time : Date.now()).toISOString().slice(11, 23);
  const name = String(level ?? '')
    .toUpperCase()
    .padEnd(5);
  const lvl = color ? `${LEVEL_COLOR[String(level)] ?? ''}${name}\x1b[0m` : name;
  const fields = Object.entries(rest).map(([k, v]) => `${k}=${value(v)}`);
  let stack = '';
  if (err !== undefined) {
    const e = err as { message?: unknown; stack?: unknown };
    if (typeof e === 'object' && e !== null && typeof e.message === 'string') fields.push(`err=${value(e.message)}`);
    else fields.push(`err=${value(err)}`);
    if (typeof e === 'object' && e !== null && typeof e.stack === 'string') {
      stack =
        '\n' +
        e.stack
          .split('\n')
          .slice(1)
          .map((l) => `    ${l.trim()}`)
          .join('\n');
    }
  }
  return `${t} ${lvl} ${typeof msg === 'string' ? msg : ''}${fields.length ? ' ' + fields.join(' ') : ''}${stack}\n`;
}

/** A pino destination writing terminal lines to `stream`. */
export function prettyDestination(stream: LogStream, color: boolean): DestinationStream {
  return {
    write(line: string) {
      let o: Record<string, unknown>;
      try {
        o = JSON.parse(line) as Record<string, unknown>;
      } catch {
        stream.write(line);
        return;
      }
      stream.write(prettyLine(o, color));
    },
  };
}
