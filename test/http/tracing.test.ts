/**
 * Traces (src/http/tracing.ts, src/http/otel.ts, src/log/tracing.ts), on a real `tlog serve`
 * exporting to a real OTLP/HTTP receiver on loopback (JSON encoding, OTEL_EXPORTER_OTLP_PROTOCOL
 * =http/json, as the OpenTelemetry protocol specification defines it):
 * - on, an append gives a SERVER span (child of the caller's traceparent) linked to the span of
 *   the batch that integrated it, which links back and has the stages as children;
 * - off (no OTEL_* at all, or OTEL_SDK_DISABLED=true with an endpoint set), nothing is sent and
 *   no module of OpenTelemetry is even loaded: a module-load hook in the served process
 *   (node --import) lists every @opentelemetry module it loads, and lists the SDK when on.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tracingWanted } from '../../src/http/tracing.js';
import { ensureDist } from '../helpers/dist.js';
import { tempDirPerFile } from '../helpers/temp-dirs.js';
import { serveSpawner, stopServe } from '../helpers/tlog-cli.js';

const tmp = tempDirPerFile('tlog-tracing-');
const spawnServe = serveSpawner();

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes?: { key: string; value: Record<string, unknown> }[];
  links?: { traceId: string; spanId: string }[];
  status?: { code?: number };
}

/** An OTLP/HTTP trace receiver: every request it got, and the spans of those on /v1/traces. */
let receiver: http.Server;
let endpoint = '';
const received: { path: string; contentType: string }[] = [];
const spans: OtlpSpan[] = [];

beforeAll(async () => {
  ensureDist();
  receiver = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ path: req.url ?? '', contentType: req.headers['content-type'] ?? '' });
      if (req.url === '/v1/traces' && req.headers['content-type'] === 'application/json') {
        // ExportTraceServiceRequest: resourceSpans[].scopeSpans[].spans[]
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { resourceSpans: { scopeSpans: { spans: OtlpSpan[] }[] }[] };
        for (const rs of body.resourceSpans) for (const ss of rs.scopeSpans) spans.push(...ss.spans);
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
}, 240_000);
afterAll(() => new Promise<void>((r) => receiver.close(() => r())));

/** A module-load hook for `node --import`: appends the URL of every @opentelemetry module loaded to $TLOG_TEST_MODULES. */
function moduleHook(dir: string): { env: Record<string, string>; loaded: () => string[] } {
  const hooks = path.join(dir, 'hooks.mjs');
  writeFileSync(
    hooks,
    `import { appendFileSync } from 'node:fs';
export async function load(url, context, nextLoad) {
  if (url.includes('/@opentelemetry/')) appendFileSync(process.env.TLOG_TEST_MODULES, url + '\\n');
  return nextLoad(url, context);
}
`,
  );
  const register = path.join(dir, 'register.mjs');
  writeFileSync(register, `import { register } from 'node:module';\nregister(${JSON.stringify(`file://${hooks}`)});\n`);
  const list = path.join(dir, 'modules.txt');
  writeFileSync(list, '');
  return {
    env: { NODE_OPTIONS: `--import=${register}`, TLOG_TEST_MODULES: list },
    loaded: () =>
      readFileSync(list, 'utf8')
        .split('\n')
        .filter((l) => l !== ''),
  };
}

/** Every OTEL_* variable of this process, unset (an empty value counts as unset). */
const noOtelEnv = Object.fromEntries(
  Object.keys(process.env)
    .filter((k) => k.startsWith('OTEL_'))
    .map((k) => [k, '']),
);

async function append(url: string, body: string, headers: Record<string, string> = {}): Promise<{ index: number; treeSize: number }> {
  const r = await fetch(`${url}/default/append`, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream', ...headers } });
  expect(r.status).toBe(200);
  return (await r.json()) as { index: number; treeSize: number };
}

const attr = (s: OtlpSpan, key: string): unknown => {
  const v = s.attributes?.find((a) => a.key === key)?.value;
  return v === undefined ? undefined : Object.values(v)[0];
};

describe('tracing on', () => {
  it('exports a span per request, linked both ways to its batch span, whose children are the stages', async () => {
    const cwd = mkdtempSync(path.join(tmp.dir, 'on-'));
    const hook = moduleHook(cwd);
    const p = await spawnServe([], {
      cwd,
      env: { ...noOtelEnv, ...hook.env, OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_BSP_SCHEDULE_DELAY: '50' },
    });
    const callerTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
    const callerSpan = '00f067aa0ba902b7';
    const a = await append(p.url, 'traced entry', { traceparent: `00-${callerTrace}-${callerSpan}-01` });
    expect(await stopServe(p)).toBe(0);
    // Shutdown exports what was buffered: everything is in by now.
    expect(received.every((r) => r.path === '/v1/traces' && r.contentType === 'application/json')).toBe(true);

    const request = spans.find((s) => s.traceId === callerTrace && /append$/.test(s.name));
    expect(request, `spans: ${spans.map((s) => s.name).join(', ')}`).toBeDefined();
    expect(request!.name).toBe('POST /:tenant/append');
    expect(request!.kind).toBe(2); // SPAN_KIND_SERVER
    expect(request!.parentSpanId).toBe(callerSpan);
    expect(attr(request!, 'http.route')).toBe('/:tenant/append');
    expect(attr(request!, 'http.response.status_code')).toBe(200);
    expect(attr(request!, 'tlog.tenant')).toBe('default');

    // The batch: its own trace, linked to the request, and the request linked to it.
    const batch = spans.find((s) => s.name === 'tlog.batch' && s.links?.some((l) => l.spanId === request!.spanId));
    expect(batch).toBeDefined();
    expect(batch!.links).toEqual([expect.objectContaining({ traceId: callerTrace, spanId: request!.spanId })]);
    expect(request!.links).toEqual([expect.objectContaining({ traceId: batch!.traceId, spanId: batch!.spanId })]);
    expect(batch!.parentSpanId ?? '').toBe('');
    expect(attr(batch!, 'tlog.tenant')).toBe('default');
    expect(attr(batch!, 'tlog.batch.entries')).toBe(1);
    expect(attr(batch!, 'tlog.batch.start')).toBe(a.index);
    expect(attr(batch!, 'tlog.tree_size')).toBe(a.treeSize);

    // Its stages, in pipeline order, each within the batch's span.
    // (Ties on the start, possible at the clock's resolution, go by the end.)
    const ns = (t: string) => BigInt(t);
    const stages = spans
      .filter((s) => s.parentSpanId === batch!.spanId)
      .sort((x, y) => Number(ns(x.startTimeUnixNano) - ns(y.startTimeUnixNano) || ns(x.endTimeUnixNano) - ns(y.endTimeUnixNano)));
    expect(stages.map((s) => s.name)).toEqual(['sequence', 'write', 'sign', 'journal', 'commit', 'publish', 'index']);
    for (const s of stages) {
      expect(s.traceId).toBe(batch!.traceId);
      expect(BigInt(s.startTimeUnixNano) >= BigInt(batch!.startTimeUnixNano)).toBe(true);
      expect(BigInt(s.endTimeUnixNano) <= BigInt(batch!.endTimeUnixNano)).toBe(true);
    }
    // The module hook works: it saw the SDK loaded (the control for the tests below).
    expect(hook.loaded().some((u) => u.includes('/@opentelemetry/sdk-node/'))).toBe(true);
  });
});

describe('tracing off', () => {
  it.each<[string, Record<string, string>]>([
    ['no OTEL_* variable at all', {}],
    ['OTEL_SDK_DISABLED=true with an endpoint set', { OTEL_SDK_DISABLED: 'true' }],
    ['OTEL_TRACES_EXPORTER=none with an endpoint set', { OTEL_TRACES_EXPORTER: 'none' }],
  ])('%s: nothing is exported and no module of OpenTelemetry is loaded', async (_, extra) => {
    const cwd = mkdtempSync(path.join(tmp.dir, 'off-'));
    const hook = moduleHook(cwd);
    const withEndpoint: Record<string, string> =
      Object.keys(extra).length > 0 ? { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' } : {};
    const before = received.length;
    const p = await spawnServe([], { cwd, env: { ...noOtelEnv, ...hook.env, OTEL_BSP_SCHEDULE_DELAY: '50', ...withEndpoint, ...extra } });
    await append(p.url, 'untraced entry', { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' });
    expect(await stopServe(p)).toBe(0);
    expect(received.length).toBe(before);
    expect(hook.loaded()).toEqual([]);
  });
});

describe('tracingWanted', () => {
  it('is on for an OTLP endpoint or an exporter other than none, and off otherwise or when the SDK is disabled', () => {
    expect(tracingWanted({})).toBe(false);
    expect(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: '' })).toBe(false);
    expect(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).toBe(true);
    expect(tracingWanted({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' })).toBe(true);
    expect(tracingWanted({ OTEL_TRACES_EXPORTER: 'console' })).toBe(true);
    expect(tracingWanted({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).toBe(false);
    expect(tracingWanted({ OTEL_TRACES_EXPORTER: 'none,otlp' })).toBe(true);
    expect(tracingWanted({ OTEL_SDK_DISABLED: 'true', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).toBe(false);
    expect(tracingWanted({ OTEL_SDK_DISABLED: 'TRUE', OTEL_TRACES_EXPORTER: 'otlp' })).toBe(false);
    expect(tracingWanted({ OTEL_SDK_DISABLED: 'false', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).toBe(true);
  });
});
