/**
 * autocannon (the HTTP load generator the benchmarks share), typed for what they use: the
 * package ships no types.
 */
import { createRequire } from 'node:module';

export interface ACRequest {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  setupRequest?: (req: ACRequest, context: Record<string, unknown>) => ACRequest;
}
export interface ACOptions {
  url: string;
  connections: number;
  /** Seconds; ignored when `amount` is given. */
  duration?: number;
  /** Requests to send in all, then stop. */
  amount?: number;
  pipelining?: number;
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  requests?: ACRequest[];
  timeout?: number;
}
export interface ACHisto {
  average: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  total: number;
}
export interface ACResult {
  requests: ACHisto & { sent: number };
  latency: ACHisto;
  throughput: ACHisto;
  errors: number;
  timeouts: number;
  non2xx: number;
  duration: number;
  '2xx': number;
  statusCodeStats?: Record<string, { count: number }>;
}

export const autocannon = createRequire(import.meta.url)('autocannon') as (o: ACOptions) => Promise<ACResult>;

/** "2xx N" and, when there were any, the other statuses, errors and timeouts. */
export function statusSummary(r: ACResult): string {
  const parts = [`2xx ${r['2xx']}`];
  if (r.non2xx)
    parts.push(
      `non-2xx ${r.non2xx}${r.statusCodeStats ? ` ${JSON.stringify(Object.fromEntries(Object.entries(r.statusCodeStats).map(([k, v]) => [k, v.count])))}` : ''}`,
    );
  if (r.errors) parts.push(`errors ${r.errors}`);
  if (r.timeouts) parts.push(`timeouts ${r.timeouts}`);
  return parts.join(', ');
}

/**
 * POSTs octet-stream bodies to `path` of `url` over `connections` connections for `duration`
 * seconds, a new body from `body()` for every request (entries must stay distinct: dedup would
 * otherwise answer from the index). A request unanswered after `timeout` seconds counts as an error.
 */
export function postBodies(url: string, path: string, connections: number, duration: number, body: () => Buffer, timeout = 60): Promise<ACResult> {
  return autocannon({
    url,
    connections,
    duration,
    timeout,
    requests: [{ method: 'POST', path, headers: { 'content-type': 'application/octet-stream' }, setupRequest: (req) => ({ ...req, body: body() }) }],
  });
}
