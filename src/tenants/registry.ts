/**
 * The tenants one process serves: each a Log with its own origin, keys, files, credentials and
 * limits. Contract: get() returns an open tenant or undefined; tenants can be added and
 * reconfigured while serving; closeAll() drains every log.
 */
import path from 'node:path';
import { TlogError, ErrorCode } from '../errors.js';
import { DEFAULT_LIMITS, type TenantConfig, type TenantLimits } from '../config/config.js';
import { Log, readLogConfig, type LogOptions } from '../log/log.js';
import type { CreateOutcome } from '../log/create.js';
import { DEFAULT_TENANT, logPaths, type DataRoots, type LogPaths } from '../tile-store/paths.js';
import { createAnchorKey, type Anchorer } from '../anchor/index.js';
import { parseNote } from '../note/note.js';
import { cosignatureTimestamp } from '../note/signers.js';
import { readIfExists } from '../storage/durable.js';
import { CounterStore, type CounterPersistence } from './counters.js';
import { RateLimiter } from './rate-limit.js';
import type { Cosigner } from '../witness-client/cosigner.js';

export interface TenantAuth {
  /** SHA-256 hex of accepted bearer tokens for writes. */
  readonly tokens: ReadonlySet<string>;
  /** Ed25519 public keys (32 bytes) of clients that sign their requests, by client id. */
  readonly clients: ReadonlyMap<string, Uint8Array>;
  /** When set, reads need a bearer token whose hash is here (or a write token). */
  readonly readTokens: ReadonlySet<string> | null;
  /** The embedded default on loopback: writes need no credentials. */
  readonly open: boolean;
}

export class Tenant {
  limiter: RateLimiter;
  /** Entries admitted by the HTTP layer but not queued yet (see api.ts admit). */
  reserved = 0;
  /** The cosigning loop, when the tenant has witnesses. */
  cosigner: Cosigner | null = null;
  /** The Rekor anchoring job, when the tenant anchors. */
  anchorer: Anchorer | null = null;
  /**
   * Retired (`retired: true` in the configuration): appends are refused (410 tenant_retired);
   * reads, proofs, tiles, witnesses' cosignatures and anchoring go on. A WORM log is never deleted.
   */
  retired = false;
  /** The published note publishedAt was read from, and what it gave. */
  private signedNote: string | null = null;
  private signedAt: number | null = null;
  constructor(
    readonly name: string,
    readonly log: Log,
    public auth: TenantAuth,
    public limits: TenantLimits,
    readonly counters: CounterStore,
  ) {
    this.limiter = new RateLimiter(limits.ratePerSecond, limits.burst);
  }

  /**
   * When the log signed its published checkpoint, in POSIX seconds: the timestamp of its own
   * ML-DSA-44 subtree signature (type 0x06, c2sp.org/tlog-cosignature); null when it has none.
   * Read once per published note.
   */
  get publishedAt(): number | null {
    const note = this.log.published.note;
    if (note !== this.signedNote) {
      const n = parseNote(note);
      this.signedAt = null;
      for (const v of this.log.verifiers) {
        const s = n.signatures.find((x) => x.name === v.name && x.keyID === v.keyID);
        const ts = s ? cosignatureTimestamp(v.type, s.signature) : null;
        if (ts !== null) {
          this.signedAt = ts;
          break;
        }
      }
      this.signedNote = note;
    }
    return this.signedAt;
  }

  reconfigure(auth: TenantAuth, limits: TenantLimits): void {
    this.auth = auth;
    if (limits.ratePerSecond !== this.limits.ratePerSecond || limits.burst !== this.limits.burst) {
      this.limiter = new RateLimiter(limits.ratePerSecond, limits.burst);
    }
    this.limits = limits;
  }
}

export function authFromConfig(c: TenantConfig): TenantAuth {
  return {
    tokens: new Set(c.credentials.tokens),
    clients: new Map(c.credentials.clients.map((k) => [k.id, Buffer.from(k.publicKey, 'base64')])),
    readTokens: c.credentials.readTokens ? new Set([...c.credentials.readTokens, ...c.credentials.tokens]) : null,
    open: false,
  };
}

export const OPEN_AUTH: TenantAuth = { tokens: new Set(), clients: new Map(), readTokens: null, open: true };

export class TenantRegistry {
  private readonly tenants = new Map<string, Tenant>();
  /** Tenants whose logs are being opened: requests for them get 503 + Retry-After until add(). */
  private readonly opening = new Set<string>();

  get(name: string): Tenant | undefined {
    return this.tenants.get(name);
  }

  /** Whether the tenant is being opened (configured, not served yet). */
  isOpening(name: string): boolean {
    return this.opening.has(name);
  }

  /** Tenants being opened, in the order they were announced. */
  openingNames(): string[] {
    return [...this.opening];
  }

  /** Announces a tenant whose log is about to be opened (see isOpening); add() ends it, as does forgetOpening(). */
  markOpening(name: string): void {
    if (!this.tenants.has(name)) this.opening.add(name);
  }

  /** The tenant will not be opened after all (its open failed, or the reload was refused). */
  forgetOpening(name: string): void {
    this.opening.delete(name);
  }

  names(): string[] {
    return [...this.tenants.keys()];
  }

  all(): Tenant[] {
    return [...this.tenants.values()];
  }

  /**
   * Serves `log`. Its signed-request counters are a file in its state directory unless
   * `counters` says where else (a cluster keeps them in the store).
   */
  async add(log: Log, auth: TenantAuth, limits: TenantLimits = DEFAULT_LIMITS, retired = false, counters?: CounterPersistence): Promise<Tenant> {
    const name = log.paths.tenant;
    if (this.tenants.has(name)) throw new TlogError(ErrorCode.conflict, `tenant ${name} is already served`);
    const t = new Tenant(name, log, auth, limits, await (counters ? CounterStore.openWith(counters) : CounterStore.open(log.paths.stateDir)));
    t.retired = retired;
    this.tenants.set(name, t);
    this.opening.delete(name);
    return t;
  }

  async remove(name: string): Promise<void> {
    const t = this.tenants.get(name);
    if (!t) return;
    this.tenants.delete(name);
    await t.cosigner?.stop();
    await t.anchorer?.stop();
    await t.log.close();
  }

  async closeAll(): Promise<void> {
    await Promise.all(
      [...this.tenants.values()].map(async (t) => {
        await t.cosigner?.stop();
        await t.anchorer?.stop();
        await t.log.close();
      }),
    );
  }
}

/**
 * Creates a tenant's log and all its keys, all or nothing: the log's signing keys and the ECDSA
 * P-256 key it anchors checkpoints into Rekor with (Rekor takes neither ML-DSA nor, in v2, plain
 * Ed25519), made with the rest of its private state before the log exists (log/create.ts).
 */
export async function initLog(paths: LogPaths, origin: string, opts: LogOptions = {}): Promise<Log> {
  return Log.init(paths, origin, opts, { extraState: anchorKeyState });
}

/**
 * `tlog init`: creates a log; an implicit one (made by `tlog serve` on first start) that is still
 * empty is replaced when the origin differs, and kept when it is the same (see log/create.ts).
 */
export async function createLog(paths: LogPaths, origin: string, opts: LogOptions = {}): Promise<{ log: Log; outcome: CreateOutcome }> {
  return Log.create(paths, origin, opts, { extraState: anchorKeyState });
}

async function anchorKeyState(stateDir: string): Promise<void> {
  await createAnchorKey(stateDir);
}

/** Opens a tenant's log, creating it (and its keys) on first start. */
export async function openOrInit(roots: DataRoots, tenant: string, origin: string, opts: LogOptions = {}): Promise<{ log: Log; created: boolean }> {
  const paths = logPaths(roots, tenant);
  if (await readIfExists(path.join(paths.stateDir, 'log.json'))) {
    const log = await Log.open(paths, opts);
    if (log.origin !== origin) {
      await log.close();
      throw new TlogError(ErrorCode.badInput, `tenant ${tenant} has origin ${log.origin}, but the configuration says ${origin}`);
    }
    return { log, created: false };
  }
  return { log: await initLog(paths, origin, opts), created: true };
}

/**
 * The embedded default: tenant "default" under the given roots, created on first start with
 * `origin`, or with `defaultOrigin` when none is given (then it is implicit: while empty, `tlog
 * init --origin` or a later `--origin` may still choose its origin). An existing log is opened;
 * `origin` must then be its origin, unless it is implicit and empty (then it is replaced).
 */
export async function openOrInitDefault(
  roots: DataRoots,
  origin: string | undefined,
  defaultOrigin: string,
  opts: LogOptions = {},
): Promise<{ log: Log; outcome: CreateOutcome | { result: 'opened' } }> {
  const paths = logPaths(roots, DEFAULT_TENANT);
  if (await readIfExists(path.join(paths.stateDir, 'log.json'))) {
    const existing = await readLogConfig(paths.stateDir);
    if (origin === undefined || origin === existing.origin) return { log: await Log.open(paths, opts), outcome: { result: 'opened' } };
  }
  return Log.create(paths, origin ?? defaultOrigin, opts, { extraState: anchorKeyState, implicit: origin === undefined });
}
