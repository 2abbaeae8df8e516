/**
 * Traces with OpenTelemetry (loaded only when tracing is on: tracing.ts). The Node SDK is
 * configured from the standard environment (exporter, OTLP endpoint and protocol, headers,
 * sampler, batch delays); only traces are exported, no metrics (those are /metrics) nor logs.
 *
 * - A SERVER span per HTTP request, the child of the caller's W3C `traceparent` if it sent one,
 *   named by its route (`POST /:tenant/append`), with the method, path, route, status and tenant.
 * - A span per batch (`tlog.batch`, a root: one batch serves many requests, each of its own
 *   trace), linked to each request whose entries it integrated, while each of those requests
 *   gets a link back to it; its children are the stages (src/log/tracing.ts): `sequence`,
 *   `write` (bundles and tiles), `sign`, `journal` (record and fdatasync), `commit`, `publish`,
 *   `index`. This is OpenTelemetry's pattern for batch processing: links, not parents, between
 *   traces that fan in.
 */
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Link, type Span, type TextMapGetter } from '@opentelemetry/api';
import { NodeSDK } from '@opentelemetry/sdk-node';
import type { MiddlewareHandler } from 'hono';
import type { BatchTrace, BatchTracer, TraceStage } from '../log/tracing.js';
import type { Tracing } from './tracing.js';

const headerGetter: TextMapGetter<Headers> = {
  get: (h, key) => h.get(key) ?? undefined,
  keys: (h) => [...h.keys()],
};

/**
 * A time of performance.now() as milliseconds since the epoch, the same way for every span: the
 * SDK converts a performance.now() time with an offset it takes from Date.now() per span, a
 * millisecond's jitter that put stages of a batch out of order.
 */
const epochMs = (t: number): number => performance.timeOrigin + t;

export function startOtel(env: NodeJS.ProcessEnv): Tracing {
  const sdk = new NodeSDK({
    // OTEL_SERVICE_NAME, when set, names the service; this is the default.
    ...(env.OTEL_SERVICE_NAME ? {} : { serviceName: 'tlog-worm' }),
    metricReaders: [],
    logRecordProcessors: [],
  });
  sdk.start();
  const tracer = trace.getTracer('tlog-worm');

  const requests: MiddlewareHandler = async (c, next) => {
    const parent = propagation.extract(ROOT_CONTEXT, c.req.raw.headers, headerGetter);
    const method = c.req.method;
    const span = tracer.startSpan(method, { kind: SpanKind.SERVER, attributes: { 'http.request.method': method, 'url.path': c.req.path } }, parent);
    let status = 500;
    try {
      await context.with(trace.setSpan(parent, span), next);
      status = c.res.status;
    } catch (e) {
      span.recordException(e as Error);
      throw e;
    } finally {
      const route = c.req.routePath;
      if (route && route !== '/*') {
        span.updateName(`${method} ${route}`);
        span.setAttribute('http.route', route);
      }
      span.setAttribute('http.response.status_code', status);
      const tenant = c.get('tenant');
      if (tenant && tenant !== '-') span.setAttribute('tlog.tenant', tenant);
      // Server spans are errors for 5xx only (OpenTelemetry's HTTP semantic conventions).
      if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    }
  };

  const batches: BatchTracer = {
    current: () => trace.getSpan(context.active()),
    startBatch(tenant: string, startedAt: number, appenders: readonly unknown[]): BatchTrace {
      const spans = new Set<Span>();
      for (const a of appenders) if (a !== undefined) spans.add(a as Span);
      const links: Link[] = [...spans].map((s) => ({ context: s.spanContext() }));
      const span = tracer.startSpan(
        'tlog.batch',
        { startTime: epochMs(startedAt), links, root: true, attributes: { 'tlog.tenant': tenant, 'tlog.batch.entries': appenders.length } },
        ROOT_CONTEXT,
      );
      const back: Link = { context: span.spanContext() };
      for (const s of spans) s.addLink(back);
      const parent = trace.setSpan(ROOT_CONTEXT, span);
      let ended = false;
      return {
        stage(stage: TraceStage, from: number, to: number) {
          tracer.startSpan(stage, { startTime: epochMs(from) }, parent).end(epochMs(to));
        },
        end(b, error) {
          if (ended) return;
          ended = true;
          span.setAttributes({ 'tlog.batch.start': b.start, 'tlog.tree_size': b.end });
          if (error !== undefined) {
            span.recordException(error instanceof Error ? error : String(error));
            span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
          }
          span.end(epochMs(performance.now()));
        },
      };
    },
  };

  return { requests, batches, shutdown: () => sdk.shutdown() };
}
