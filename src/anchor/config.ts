/**
 * Per-tenant anchoring configuration: on or off, how often, which Rekor, which timestamp
 * authority, how patiently.
 *
 * Rekor v1 is one URL for ever (https://rekor.sigstore.dev). Rekor v2 logs are sharded by time
 * (log2025-1.rekor.sigstore.dev, ...): each shard is configured by its URL, with its own public
 * key; its tiles and checkpoint are read from `readUrl` (the same host unless told otherwise).
 * A v2 log gives no signed entry timestamp, so the time of a v2 anchor is attested by an RFC 3161
 * timestamp authority (`tsa`), which a v2 configuration must name.
 */
import { TlogError, ErrorCode } from '../errors.js';
import { tsaTrust } from './tsa.js';

export const REKOR_API_VERSIONS = ['v1', 'v2'] as const;
export type RekorApiVersion = (typeof REKOR_API_VERSIONS)[number];

export const DEFAULT_REKOR_V1_URL = 'https://rekor.sigstore.dev';
export const HOUR_MS = 3_600_000;

export interface RekorConfig {
  readonly apiVersion: RekorApiVersion;
  /** Base URL of the log's write API: v1 `<url>/api/v1/log/entries`, v2 `<url>/api/v2/log/entries`. */
  readonly url: string;
  /** v2: where the log's `checkpoint` and `tile/...` are served (default: `url`). */
  readonly readUrl?: string;
  /**
   * The log's public key (SPKI PEM): receipts are verified against it before they count.
   * Public Rekor's keys are in Sigstore's trusted_root.json; we never fetch trust online.
   */
  readonly publicKey: string;
  /**
   * The log's checkpoint origin (the key name on its checkpoints). Needed for Ed25519 v2 log
   * keys, whose log ID hashes the origin (c2sp.org/signed-note); default: the URL's host.
   */
  readonly origin?: string;
}

/** A timestamp authority speaking Sigstore's TSA protocol (sigstore/timestamp-authority). */
export interface TsaConfig {
  /** Base URL: requests go to `<url>/api/v1/timestamp` (or to `url` itself when it has a path). */
  readonly url: string;
  /**
   * The TSA's certificate chain, PEM, the timestamping certificate first and its root last:
   * timestamps are verified against it before a receipt counts. Configured, never fetched.
   */
  readonly certChain: string;
}

export interface AnchorConfig {
  readonly enabled: boolean;
  /** Hours between anchors (of the newest checkpoint, when the tree grew). Default 24. */
  readonly intervalHours: number;
  readonly rekor: RekorConfig;
  /** v2 only, and required there: who attests the time of each anchor. */
  readonly tsa?: TsaConfig;
  /** Per-request timeout. Default 30 s. */
  readonly timeoutMs: number;
  /** First retry delay; doubles per failed attempt up to maxBackoffMs. Default 30 s. */
  readonly initialBackoffMs: number;
  /** Default 1 h. */
  readonly maxBackoffMs: number;
  /** How often the background timer looks for due work. Default 60 s. */
  readonly tickMs: number;
}

export type AnchorConfigInput = Partial<Omit<AnchorConfig, 'rekor' | 'tsa'>> & {
  readonly rekor: Partial<RekorConfig> & { readonly publicKey: string };
  readonly tsa?: TsaConfig | undefined;
};

function bad(why: string): TlogError {
  return new TlogError(ErrorCode.badInput, `bad anchoring config: ${why}`);
}

function positive(v: number | undefined, def: number, name: string): number {
  const n = v ?? def;
  if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0) throw bad(`${name} must be a positive number`);
  return n;
}

function checkUrl(u: string, name: string): string {
  let parsed: URL;
  try {
    parsed = new URL(u);
  } catch {
    throw bad(`${name} ${JSON.stringify(u)} is not a URL`);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw bad(`${name} must be http(s)`);
  return u.replace(/\/+$/, '');
}

/** Fills in defaults and checks the values; throws `bad_input` naming the field. */
export function resolveAnchorConfig(input: AnchorConfigInput): AnchorConfig {
  const apiVersion = input.rekor.apiVersion ?? 'v1';
  if (!REKOR_API_VERSIONS.includes(apiVersion)) throw bad(`rekor.apiVersion must be v1 or v2`);
  if (apiVersion === 'v2' && !input.rekor.url) throw bad('a Rekor v2 log is configured by its URL: set rekor.url');
  const url = checkUrl(input.rekor.url ?? DEFAULT_REKOR_V1_URL, 'rekor.url');
  if (typeof input.rekor.publicKey !== 'string' || !input.rekor.publicKey.includes('BEGIN PUBLIC KEY')) {
    throw bad('rekor.publicKey must be the log public key as SPKI PEM');
  }
  const rekor: RekorConfig = {
    apiVersion,
    url,
    publicKey: input.rekor.publicKey,
    ...(input.rekor.readUrl ? { readUrl: checkUrl(input.rekor.readUrl, 'rekor.readUrl') } : {}),
    ...(input.rekor.origin ? { origin: input.rekor.origin } : {}),
  };
  let tsa: TsaConfig | undefined;
  if (input.tsa) {
    if (apiVersion !== 'v2') throw bad('tsa is for Rekor v2 logs: a v1 entry carries its signed entry timestamp');
    if (typeof input.tsa.certChain !== 'string') throw bad('tsa.certChain must be the TSA certificate chain, PEM');
    tsaTrust(input.tsa.certChain); // throws, naming what is wrong with the chain
    tsa = { url: checkUrl(input.tsa.url, 'tsa.url'), certChain: input.tsa.certChain };
  } else if (apiVersion === 'v2') {
    throw bad('a Rekor v2 log gives no signed time: configure tsa (the timestamp authority URL and its certificate chain)');
  }
  const initialBackoffMs = positive(input.initialBackoffMs, 30_000, 'initialBackoffMs');
  const maxBackoffMs = positive(input.maxBackoffMs, HOUR_MS, 'maxBackoffMs');
  if (maxBackoffMs < initialBackoffMs) throw bad('maxBackoffMs is below initialBackoffMs');
  return {
    enabled: input.enabled ?? true,
    intervalHours: positive(input.intervalHours, 24, 'intervalHours'),
    rekor,
    ...(tsa ? { tsa } : {}),
    timeoutMs: positive(input.timeoutMs, 30_000, 'timeoutMs'),
    initialBackoffMs,
    maxBackoffMs,
    tickMs: positive(input.tickMs, 60_000, 'tickMs'),
  };
}

/** Delay before attempt `attempts + 1`: exponential from initialBackoffMs, capped, never below Retry-After. */
export function backoffDelay(cfg: Pick<AnchorConfig, 'initialBackoffMs' | 'maxBackoffMs'>, attempts: number, retryAfterMs?: number): number {
  const exp = Math.min(cfg.maxBackoffMs, cfg.initialBackoffMs * 2 ** Math.max(0, Math.min(attempts - 1, 40)));
  // A server's Retry-After wins over our own guess, within a day (a bigger value is a bug or hostile).
  return Math.max(exp, Math.min(retryAfterMs ?? 0, 24 * HOUR_MS));
}

/** Parses Retry-After (RFC 9110 10.2.3: delay-seconds or an HTTP-date) into milliseconds. */
export function parseRetryAfter(v: string | null | undefined, now = Date.now()): number | undefined {
  if (!v) return undefined;
  if (/^[0-9]+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}
