/**
 * The service configuration file (YAML or JSON): the listen address, the data roots and the
 * tenants, each with its origin, credentials and limits. Validated on load with errors that name
 * the field (`tenants[1].credentials.tokens[0]: ...`).
 *
 * Secrets are never stored in clear: bearer tokens as SHA-256 hex, client keys as public keys.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { errnoWords, TlogError, ErrorCode } from '../errors.js';
import { checkKeyName } from '../note/note.js';

const tenantName = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'want 1-63 of a-z, 0-9, "-", "_", starting with a letter or digit');
const sha256Hex = z
  .string()
  .regex(/^[0-9a-f]{64}$/, 'want the lowercase hex SHA-256 of the token (`tlog token hash` prints it; `tlog token new` makes a token)');
const origin = z.string().superRefine((s, ctx) => {
  const p = checkKeyName(s);
  if (p) ctx.addIssue({ code: z.ZodIssueCode.custom, message: p });
});

const limits = z
  .object({
    /** Largest request body, bytes. */
    maxBodyBytes: z
      .number()
      .int()
      .min(1)
      .max(256 << 20)
      .default(16 << 20),
    /** Entries waiting to be integrated beyond which appends get 503 + Retry-After. */
    maxPending: z
      .number()
      .int()
      .min(1)
      .default(1 << 18),
    /** Appends (entries) per second per credential, and the burst allowed above it. */
    ratePerSecond: z.number().positive().default(1_000_000),
    burst: z.number().positive().default(1_000_000),
  })
  .strict()
  .default({});

const client = z
  .object({
    id: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'want 1-64 of A-Z, a-z, 0-9, ".", "_", "-"'),
    /** Ed25519 public key, base64 (32 bytes). */
    publicKey: z.string().regex(/^[A-Za-z0-9+/]{43}=$/, 'want base64 of a 32-byte Ed25519 public key'),
  })
  .strict();

const witnesses = z
  .object({
    /** The witness policy text (Sigsum/Tessera syntax with vkeys), or a file holding it. */
    policy: z.string().optional(),
    policyFile: z.string().optional(),
    /** fail-closed: only cosigned checkpoints are published; fail-open: publish anyway. */
    mode: z.enum(['fail-open', 'fail-closed']).default('fail-open'),
    intervalSeconds: z.number().positive().max(3600).default(5),
    timeoutSeconds: z.number().positive().max(300).default(10),
  })
  .strict()
  .refine((w) => (w.policy === undefined) !== (w.policyFile === undefined), { message: 'give exactly one of policy and policyFile' });

const anchoring = z
  .object({
    enabled: z.boolean().default(true),
    intervalHours: z.number().positive().default(24),
    rekor: z
      .object({
        apiVersion: z.enum(['v1', 'v2']).default('v1'),
        url: z.string().url().optional(),
        readUrl: z.string().url().optional(),
        /** The Rekor log's public key (SPKI PEM), or a file holding it. */
        publicKey: z.string().optional(),
        publicKeyFile: z.string().optional(),
        origin: z.string().optional(),
      })
      .strict()
      .refine((r) => (r.publicKey === undefined) !== (r.publicKeyFile === undefined), { message: 'give exactly one of publicKey and publicKeyFile' }),
    /** Rekor v2 only, and required there: the RFC 3161 timestamp authority that attests each anchor's time. */
    tsa: z
      .object({
        url: z.string().url(),
        /** Its certificate chain (PEM, timestamping certificate first, root last), or a file holding it. */
        certChain: z.string().optional(),
        certChainFile: z.string().optional(),
      })
      .strict()
      .refine((t) => (t.certChain === undefined) !== (t.certChainFile === undefined), { message: 'give exactly one of certChain and certChainFile' })
      .optional(),
    timeoutSeconds: z.number().positive().default(30),
    /** How often the job looks for due work (retries, the next anchor). */
    tickSeconds: z.number().positive().default(60),
  })
  .strict()
  .refine((a) => a.rekor.apiVersion !== 'v2' || a.tsa !== undefined, {
    message: 'a Rekor v2 log gives no signed time: configure tsa (url and certChainFile)',
    path: ['tsa'],
  })
  .refine((a) => a.rekor.apiVersion === 'v2' || a.tsa === undefined, {
    message: 'tsa is for Rekor v2: a v1 entry carries its signed entry timestamp',
    path: ['tsa'],
  });

const tenant = z
  .object({
    name: tenantName,
    origin,
    /**
     * Retired (`tlog tenant retire`): appends are refused (410 tenant_retired); reads, proofs,
     * tiles, cosignatures and anchoring go on. The log is never deleted: it is write-once.
     */
    retired: z.boolean().default(false),
    allowDuplicates: z.boolean().default(false),
    witnesses: witnesses.optional(),
    anchoring: anchoring.optional(),
    credentials: z
      .object({
        tokens: z.array(sha256Hex).default([]),
        clients: z.array(client).default([]),
        /** Tokens (hashed) that may read; when set, reads need one too. */
        readTokens: z.array(sha256Hex).optional(),
      })
      .strict()
      .default({}),
    limits,
    /**
     * Cluster mode: the directory of the tenant's key files (the same files as a local log's
     * keys/), deployed to every node; relative to the configuration file.
     */
    keysDir: z.string().optional(),
    /**
     * Cluster mode: S3 Object Lock retention of everything immutable the tenant's log writes in
     * the store (tiles, bundles, journal, history), checked against the bucket's Object Lock
     * configuration when the node starts and before each take-over (storage/object-lock.ts).
     */
    retention: z
      .object({ mode: z.enum(['COMPLIANCE', 'GOVERNANCE']), days: z.number().int().min(1).max(36_600) })
      .strict()
      .optional(),
  })
  .strict();

/**
 * The object store a cluster's logs live in (S3 or S3-compatible). Credentials are never in
 * the file: they come from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
 * AWS_SESSION_TOKEN) or from credentialsFile, a 0600 JSON file {accessKeyId, secretAccessKey,
 * sessionToken?} (refused when group or others may read it).
 */
const store = z
  .object({
    type: z.literal('s3').default('s3'),
    /** e.g. http://127.0.0.1:7070; absent: AWS, by region. */
    endpoint: z.string().url().optional(),
    region: z.string().min(1).default('us-east-1'),
    bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'want an S3 bucket name (3-63 of a-z, 0-9, ".", "-")'),
    /** Key prefix of everything the service writes in the bucket: "" or ending in "/". */
    prefix: z
      .string()
      .regex(/^([A-Za-z0-9_-][A-Za-z0-9._-]*\/)*$/, 'want "" or "/"-separated segments ending in "/" (e.g. "tlog/")')
      .default(''),
    credentialsFile: z.string().optional(),
  })
  .strict();

/** Several `tlog serve` nodes sharing the tenants of one store (src/cluster, src/tenants/cluster.ts). */
const cluster = z
  .object({
    /**
     * How long a tenant's lease lasts after each renewal (renewed every third of it). A node that
     * dies is replaced within about this plus a third of it, plus the time to open the log from
     * the store; shorter means more lease writes (3 per ttl per tenant) and a node paused longer
     * than 90% of it (GC, swap) loses its tenants.
     */
    leaseTtlSeconds: z.number().min(1).max(600).default(5),
  })
  .strict();

/** The HTTP server's bounds across all tenants (see src/http/connections.ts and body-budget.ts). */
const http = z
  .object({
    /** Request-body bytes all requests together may hold; a request past it gets 503 + Retry-After. */
    maxBodyBytesInFlight: z
      .number()
      .int()
      .min(1)
      .default(128 << 20),
    /** A request's headers must all arrive within this (node's headersTimeout). */
    headersTimeoutSeconds: z.number().positive().max(3600).default(20),
    /** The whole request, body included, within this (node's requestTimeout). */
    requestTimeoutSeconds: z.number().positive().max(3600).default(120),
    /** A connection where nothing moves this long, while the client owes a body or does not read its answer, is closed. */
    idleTimeoutSeconds: z.number().positive().max(3600).default(30),
    /** An idle kept-alive connection is closed after this. */
    keepAliveTimeoutSeconds: z.number().positive().max(3600).default(5),
  })
  .strict()
  .refine((h) => h.headersTimeoutSeconds <= h.requestTimeoutSeconds, {
    message: 'headersTimeoutSeconds must not exceed requestTimeoutSeconds',
    path: ['headersTimeoutSeconds'],
  })
  .default({});

export const configSchema = z
  .object({
    listen: z.string().default('127.0.0.1:8080'),
    tilesDir: z.string().default('tiles'),
    checkpointsDir: z.string().default('checkpoints'),
    stateDir: z.string().default('.tlog'),
    /** Hashed token for the admin routes (reload); none disables them. */
    adminToken: sha256Hex.optional(),
    http,
    store: store.optional(),
    cluster: cluster.optional(),
    /** May be empty: a service is set up first, its tenants added with `tlog tenant add`. */
    tenants: z.array(tenant),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.cluster && !c.store)
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['cluster'], message: 'a cluster needs a store (the bucket its logs live in)' });
    const seen = new Set<string>();
    c.tenants.forEach((t, i) => {
      if (seen.has(t.name)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['tenants', i, 'name'], message: `tenant ${t.name} is listed twice` });
      seen.add(t.name);
      if (t.retention && !c.store) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ['tenants', i, 'retention'],
          message: 'Object Lock retention is for a tenant kept in a store (S3): the configuration has no store',
        });
      }
      if (c.cluster && t.keysDir === undefined) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ['tenants', i, 'keysDir'],
          message: 'a cluster tenant needs keysDir (its key files, deployed to every node)',
        });
      }
      // A body the in-flight budget cannot hold would be refused forever.
      if (t.limits.maxBodyBytes > c.http.maxBodyBytesInFlight) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ['tenants', i, 'limits', 'maxBodyBytes'],
          message: `over http.maxBodyBytesInFlight (${c.http.maxBodyBytesInFlight})`,
        });
      }
    });
  });

export type ServiceConfig = z.infer<typeof configSchema>;
export type TenantConfig = ServiceConfig['tenants'][number];
export type TenantLimits = TenantConfig['limits'];
export const DEFAULT_LIMITS: TenantLimits = limits.parse({});
export type StoreConfig = NonNullable<ServiceConfig['store']>;
export type ClusterConfig = NonNullable<ServiceConfig['cluster']>;
export type HttpLimits = ServiceConfig['http'];
export const DEFAULT_HTTP_LIMITS: HttpLimits = http.parse({});

function fieldPath(p: (string | number)[]): string {
  return p.reduce<string>((acc, k) => (typeof k === 'number' ? `${acc}[${k}]` : acc ? `${acc}.${k}` : k), '');
}

/** Validates a parsed configuration object; throws one bad_input error naming every bad field. */
export function validateConfig(raw: unknown, source = 'configuration'): ServiceConfig {
  const r = configSchema.safeParse(raw);
  if (r.success) return r.data;
  const problems = r.error.issues.map((i) => `${fieldPath(i.path) || '(top level)'}: ${i.message}`);
  throw new TlogError(ErrorCode.badInput, `${source}: ${problems.join('; ')}`);
}

/** Loads a YAML or JSON configuration file; data roots are resolved relative to the file. */
export function loadConfig(file: string): ServiceConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new TlogError(ErrorCode.badInput, `cannot read configuration ${file}: ${errnoWords(e)}`);
  }
  let raw: unknown;
  try {
    raw = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new TlogError(ErrorCode.badInput, `configuration ${file} does not parse: ${(e as Error).message.split('\n')[0]}`);
  }
  const cfg = validateConfig(raw, file);
  const base = path.dirname(path.resolve(file));
  for (const t of cfg.tenants) {
    if (t.anchoring?.rekor.publicKeyFile) {
      const p = path.resolve(base, t.anchoring.rekor.publicKeyFile);
      try {
        t.anchoring.rekor.publicKey = readFileSync(p, 'utf8');
      } catch (e) {
        throw new TlogError(ErrorCode.badInput, `${file}: tenants.${t.name}.anchoring.rekor.publicKeyFile: cannot read ${p}: ${errnoWords(e)}`);
      }
    }
    if (t.anchoring?.tsa?.certChainFile) {
      const p = path.resolve(base, t.anchoring.tsa.certChainFile);
      try {
        t.anchoring.tsa.certChain = readFileSync(p, 'utf8');
      } catch (e) {
        throw new TlogError(ErrorCode.badInput, `${file}: tenants.${t.name}.anchoring.tsa.certChainFile: cannot read ${p}: ${errnoWords(e)}`);
      }
    }
    if (t.keysDir !== undefined) t.keysDir = path.resolve(base, t.keysDir);
    if (t.witnesses?.policyFile) {
      const p = path.resolve(base, t.witnesses.policyFile);
      try {
        t.witnesses.policy = readFileSync(p, 'utf8');
      } catch (e) {
        throw new TlogError(ErrorCode.badInput, `${file}: tenants.${t.name}.witnesses.policyFile: cannot read ${p}: ${errnoWords(e)}`);
      }
    }
  }
  if (cfg.store?.credentialsFile !== undefined) cfg.store.credentialsFile = path.resolve(base, cfg.store.credentialsFile);
  return {
    ...cfg,
    tilesDir: path.resolve(base, cfg.tilesDir),
    checkpointsDir: path.resolve(base, cfg.checkpointsDir),
    stateDir: path.resolve(base, cfg.stateDir),
  };
}
