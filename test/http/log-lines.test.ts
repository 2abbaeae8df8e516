/**
 * What the service's log lines look like: JSON with level names when nobody reads them at a
 * terminal, one readable line per event when a terminal is attached (a fake TTY here; a spawned
 * `tlog serve` with its stdout on a pipe is checked in serve.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { createLogger, logFormatFor, prettyLine, type LogStream } from '../../src/http/log-lines.js';

/** A stream that keeps what is written to it, and says it is a terminal or not. */
function fakeStream(isTTY: boolean): LogStream & { out: string[] } {
  const out: string[] = [];
  return { isTTY, out, write: (s: string) => void out.push(s) };
}

describe('log lines', () => {
  it('off a terminal: one JSON object per line, the level by name', () => {
    const s = fakeStream(false);
    const log = createLogger({ stream: s, level: 'debug' });
    log.info({ tenant: 'audit', treeSize: 5 }, 'tenant opened');
    log.warn({ witness: 'http://w.example' }, 'witness did not cosign');
    log.debug({ key: 'k' }, 'digging');
    const lines = s.out
      .join('')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l.level)).toEqual(['info', 'warn', 'debug']);
    expect(lines[0]).toMatchObject({ msg: 'tenant opened', tenant: 'audit', treeSize: 5 });
    expect(lines[0]!.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  it('on a terminal: time, level name, message, then key=value', () => {
    const s = fakeStream(true);
    const log = createLogger({ stream: s, color: false });
    log.info({ method: 'GET', path: '/audit/checkpoint', status: 200, ms: 0.42, tenant: 'audit' }, 'request');
    log.warn({ tenant: 'audit', err: 'witness http://w: HTTP 500: "no"' }, 'witness did not cosign');
    log.error({ err: { message: 'boom', stack: 'Error: boom\n    at f (x.js:1:1)\n    at g (y.js:2:2)' } }, 'internal error');
    log.debug({}, 'not at info level');
    const out = s.out.join('');
    const lines = out.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}request method=GET path=\/audit\/checkpoint status=200 ms=0\.42 tenant=audit$/);
    expect(lines[1]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} WARN {2}witness did not cosign tenant=audit err="witness http:\/\/w: HTTP 500: \\"no\\""$/);
    expect(lines[2]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} ERROR internal error err=boom$/);
    expect(lines.slice(3)).toEqual(['    at f (x.js:1:1)', '    at g (y.js:2:2)']);
    expect(out).not.toContain('{"');
    expect(out).not.toContain('\x1b[');
  });

  it('colours the level on a terminal unless told not to', () => {
    const s = fakeStream(true);
    createLogger({ stream: s, color: true }).warn({}, 'careful');
    expect(s.out.join('')).toContain('\x1b[33mWARN \x1b[0m careful');
  });

  it('TLOG_LOG_FORMAT overrides what the stream says; an explicit format overrides both', () => {
    expect(logFormatFor({ write() {}, isTTY: true }, undefined, {})).toBe('pretty');
    expect(logFormatFor({ write() {} }, undefined, {})).toBe('json');
    expect(logFormatFor({ write() {}, isTTY: true }, undefined, { TLOG_LOG_FORMAT: 'json' })).toBe('json');
    expect(logFormatFor({ write() {} }, undefined, { TLOG_LOG_FORMAT: 'pretty' })).toBe('pretty');
    expect(logFormatFor({ write() {} }, undefined, { TLOG_LOG_FORMAT: 'yaml' })).toBe('json');
    expect(logFormatFor({ write() {} }, 'pretty', { TLOG_LOG_FORMAT: 'json' })).toBe('pretty');
  });

  it('a terminal line quotes only the values that need it', () => {
    const line = prettyLine({
      time: '2026-01-02T03:04:05.678Z',
      level: 'info',
      msg: 'm',
      a: 'plain',
      b: 'two words',
      c: 'x=y',
      d: '',
      e: [1, 2],
      f: null,
      g: true,
    });
    expect(line).toBe('03:04:05.678 INFO  m a=plain b="two words" c="x=y" d="" e=[1,2] f=null g=true\n');
  });
});
