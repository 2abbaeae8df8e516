/**
 * The tracing switch. Traces are off unless the standard OpenTelemetry environment asks for
 * them (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/):
 * an OTLP endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), or
 * an `OTEL_TRACES_EXPORTER` other than `none`; `OTEL_SDK_DISABLED=true` turns them off whatever
 * else is set. Off, nothing of OpenTelemetry is loaded (the SDK is imported here lazily, from
 * otel.ts), no middleware is installed and the engine gets no tracer: tracing off costs nothing
 * per request. On, otel.ts traces each request and each batch (src/log/tracing.ts).
 */
import type { MiddlewareHandler } from 'hono';
import type { BatchTracer } from '../log/tracing.js';

export interface Tracing {
  /** A span per request (hono middleware), the current span while the request runs. */
  readonly requests: MiddlewareHandler;
  /** A span per batch with its stages, linked to the requests whose entries it integrated. */
  readonly batches: BatchTracer;
  /** Exports what is still buffered, then stops. */
  shutdown(): Promise<void>;
}

/** Whether the environment asks for traces (see above). */
export function tracingWanted(env: NodeJS.ProcessEnv = process.env): boolean {
  if ((env.OTEL_SDK_DISABLED ?? '').trim().toLowerCase() === 'true') return false;
  const exporters = (env.OTEL_TRACES_EXPORTER ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (exporters.length > 0) return exporters.some((s) => s !== 'none');
  return (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? '').trim() !== '' || (env.OTEL_EXPORTER_OTLP_ENDPOINT ?? '').trim() !== '';
}

/** Starts the OpenTelemetry SDK when the environment asks for traces; null (and nothing loaded) otherwise. */
export async function startTracing(env: NodeJS.ProcessEnv = process.env): Promise<Tracing | null> {
  if (!tracingWanted(env)) return null;
  const { startOtel } = await import('./otel.js');
  return startOtel(env);
}
