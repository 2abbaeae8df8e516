/**
 * Request and append counts are tallied and handed to prom-client at scrape time: the exposition
 * must be what Counter.inc() at once gives, values and order of label sets, scrape after scrape.
 */
import { Counter, Registry } from 'prom-client';
import { expect, it } from 'vitest';
import { Metrics } from '../../src/http/observe.js';

/** The same counters, incremented at once. */
function reference() {
  const registry = new Registry();
  const requests = new Counter({
    name: 'tlog_http_requests_total',
    help: 'HTTP requests by route and status',
    labelNames: ['route', 'status'],
    registers: [registry],
  });
  const appends = new Counter({ name: 'tlog_appends_total', help: 'Entries appended (new)', labelNames: ['tenant'], registers: [registry] });
  const duplicates = new Counter({
    name: 'tlog_duplicates_total',
    help: 'Appends answered with an existing entry',
    labelNames: ['tenant'],
    registers: [registry],
  });
  return {
    registry,
    countRequest: (route: string, status: number) => requests.inc({ route, status: String(status) }),
    countAppends: (tenant: string, a: number, d: number) => {
      if (a) appends.inc({ tenant }, a);
      if (d) duplicates.inc({ tenant }, d);
    },
  };
}

const counters = (text: string) =>
  text
    .split('\n')
    .filter((l) => /^tlog_(http_requests|appends|duplicates)_total/.test(l) || /^# (HELP|TYPE) tlog_(http_requests|appends|duplicates)_total/.test(l));

it('scrapes the same as counting at once, across scrapes and new label sets', async () => {
  const m = new Metrics(false);
  const ref = reference();
  const rounds: [string, number][][] = [
    [
      ['/:tenant/append', 200],
      ['/:tenant/append', 200],
      ['/*', 404],
      ['/append', 413],
    ],
    [
      ['/:tenant/append', 200],
      ['/:tenant/checkpoint', 200],
      ['/*', 404],
      ['/:tenant/append', 503],
    ],
    [],
    [['/:tenant/tile/*', 200]],
  ];
  for (const [i, round] of rounds.entries()) {
    for (const [route, status] of round) {
      m.countRequest(route, status);
      ref.countRequest(route, status);
    }
    m.countAppends('a', round.length, i % 2);
    ref.countAppends('a', round.length, i % 2);
    m.countAppends(`t${i}`, 0, 1);
    ref.countAppends(`t${i}`, 0, 1);
    expect(counters(await m.registry.metrics())).toEqual(counters(await ref.registry.metrics()));
  }
  expect((await m.requests.get()).values.find((v) => v.labels.status === '503')?.value).toBe(1);
});
