/**
 * runWitness: opens a witness's data directory (one process at a time), creates its keys on
 * first start, reads every log's state, and serves the hono app on host:port. The CLI
 * (witness/main.ts, and `tlog witness serve`) is a thin shell around it.
 *
 * Data directory (0700, never served):
 *   witness.lock                      one process per directory (OFD lock, or a lock file)
 *   keys/cosignature-v1.key           0x04 Ed25519, 0600
 *   keys/mldsa44.key                  0x06 ML-DSA-44, 0600
 *   state/<hex sha256(origin)>.checkpoint   last cosigned checkpoint per log
 *   evidence/<hex sha256(origin)>.jsonl     validly signed, inconsistent checkpoints
 */
import { serve as serveNode, type ServerType } from '@hono/node-server';
import { promises as fsp } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { LOCK_HELD, lockFileExclusive, NativeError, type FileLock } from '../native/index.js';
import { TlogError, ErrorCode } from '../src/errors.js';
import { createWitnessApp } from './app.js';
import { loadConfig, parseConfig, type WitnessConfig, type WitnessConfigInput } from './config.js';
import { FileEvidence, type EvidenceSink } from './evidence.js';
import { loadMldsaBackend, mldsaBackend, type MldsaBackend } from '../src/log/mldsa-backend.js';
import { loadOrCreateWitnessKeys, type Clock, type WitnessKeys } from './keys.js';
import { FileStateStore, type StateStore } from './state.js';
import { Witness } from './witness.js';

export interface RunWitnessOptions {
  /** A config file path, a config object in the file's JSON shape, or a parsed config. */
  readonly config: string | WitnessConfigInput | WitnessConfig;
  /** host:port to listen on; port 0 picks a free one. Default 127.0.0.1:7380. */
  readonly listen?: string;
  /** Data directory; overrides the config's `data`. One of the two is required. */
  readonly dataDir?: string;
  /** Overrides the config's `mldsa44` (whether replies carry a 0x06 cosignature). */
  readonly mldsa44?: boolean;
  /** Cosignature timestamps in POSIX seconds (tests). Default: the system clock. */
  readonly clock?: Clock;
  /** Replace the file state store or evidence file (tests, benchmarks). */
  readonly store?: StateStore;
  readonly evidence?: EvidenceSink;
  /** Where progress and warnings go. Default: stderr. */
  readonly log?: (line: string) => void;
}

export interface RunningWitness {
  /** http://host:port, with the port actually bound. */
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  readonly witness: Witness;
  /** The witness's verifier keys, to configure in logs and their clients. */
  readonly vkeys: WitnessKeys['vkeys'];
  /** Stops listening, waits for requests in flight, releases the lock. Idempotent. */
  close(): Promise<void>;
}

export const DEFAULT_LISTEN = '127.0.0.1:7380';

export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(.*):([0-9]{1,5})$/.exec(listen);
  const port = m ? Number(m[2]) : NaN;
  if (!m || m[1] === '' || !(port >= 0 && port <= 65535)) {
    throw new TlogError(ErrorCode.badInput, `bad --listen ${JSON.stringify(listen)}: want host:port`);
  }
  return { host: m[1]!.replace(/^\[(.*)\]$/, '$1'), port };
}

function resolveConfig(c: RunWitnessOptions['config']): WitnessConfig {
  if (typeof c === 'string') return loadConfig(c);
  if (c.logs instanceof Map) return c as WitnessConfig;
  return parseConfig(c);
}

/** Takes the data directory's one-process lock; a second witness fails at once. */
async function lockDataDir(dataDir: string): Promise<FileLock> {
  const file = path.join(dataDir, 'witness.lock');
  await (await fsp.open(file, 'a', 0o600)).close();
  try {
    return lockFileExclusive(file);
  } catch (e) {
    if (e instanceof NativeError && e.code === LOCK_HELD) {
      throw new TlogError(ErrorCode.locked, `witness data directory ${dataDir} is in use by another process (${e.message})`);
    }
    throw e;
  }
}

/** Opens the data directory and builds the Witness, without serving it (tests, benchmarks). */
export async function openWitness(
  o: Omit<RunWitnessOptions, 'listen'>,
): Promise<{ witness: Witness; lock: FileLock; dataDir: string; created: string[]; signer: MldsaBackend }> {
  let config = resolveConfig(o.config);
  if (o.mldsa44 !== undefined) config = { ...config, mldsa44: o.mldsa44 };
  const dataDir = o.dataDir ? path.resolve(o.dataDir) : config.data;
  if (!dataDir) throw new TlogError(ErrorCode.badInput, 'witness: no data directory (--data or "data" in the config)');
  await fsp.mkdir(dataDir, { recursive: true, mode: 0o700 });
  const lock = await lockDataDir(dataDir);
  try {
    // The process's fastest ML-DSA-44 implementation (node:crypto where Node has it), as the log
    // chooses it: noble takes ten times longer per cosignature.
    const signer = await loadMldsaBackend(mldsaBackend());
    const { keys, created } = await loadOrCreateWitnessKeys(dataDir, config.name, signer);
    const witness = new Witness({
      config,
      keys,
      store: o.store ?? new FileStateStore(dataDir, keys.verifiers.cosignatureV1),
      evidence: o.evidence ?? new FileEvidence(dataDir),
      clock: o.clock,
      events: { warn: o.log ?? ((s) => process.stderr.write(`witness: ${s}\n`)) },
    });
    await witness.load();
    return { witness, lock, dataDir, created, signer: signer.name };
  } catch (e) {
    lock.release();
    throw e;
  }
}

export async function runWitness(o: RunWitnessOptions): Promise<RunningWitness> {
  const say = o.log ?? ((s: string) => process.stderr.write(`${s}\n`));
  const { host, port } = parseListen(o.listen ?? DEFAULT_LISTEN);
  const { witness, lock, dataDir, created, signer } = await openWitness({ ...o, log: say });
  for (const f of created) say(`created witness key ${f}`);
  const app = createWitnessApp(witness, { onError: (e) => say(`witness: internal error: ${(e as Error)?.stack ?? String(e)}`) });
  let server: ServerType;
  let bound: number;
  try {
    ({ server, bound } = await new Promise<{ server: ServerType; bound: number }>((resolve, reject) => {
      const s = serveNode({ fetch: app.fetch, hostname: host, port }, (info: AddressInfo) => resolve({ server: s, bound: info.port }));
      s.once('error', reject);
    }));
  } catch (e) {
    lock.release();
    throw e;
  }
  const shown = host.includes(':') ? `[${host}]` : host;
  const url = `http://${shown}:${bound}`;
  say(`witness ${witness.config.name} listening on ${url} for ${witness.config.logs.size} log(s); data ${dataDir}; ML-DSA-44 signer: ${signer}`);
  say(`verifier keys:\n  ${witness.keys.vkeys.cosignatureV1}\n  ${witness.keys.vkeys.mldsa44}${witness.config.mldsa44 ? '' : ' (not used: mldsa44 is off)'}`);
  let closing: Promise<void> | undefined;
  return {
    url,
    port: bound,
    dataDir,
    witness,
    vkeys: witness.keys.vkeys,
    close() {
      closing ??= new Promise<void>((resolve) => {
        // close() waits for requests in flight; idle keep-alive sockets are closed at once.
        server.close(() => resolve());
        (server as { closeIdleConnections?: () => void }).closeIdleConnections?.();
      }).finally(() => lock.release());
      return closing;
    },
  };
}
