/**
 * The witness's configuration: its own name, the logs it witnesses (by origin, each with the
 * verifier keys it trusts for that log), whether it also cosigns with ML-DSA-44, and where its
 * private data lives. Pure but for loadConfig, which reads one file.
 *
 * The file is JSON:
 *
 *   {
 *     "name": "witness.example.com/w1",
 *     "data": "/var/lib/tlog-witness",          // optional; --data overrides; relative to the file
 *     "mldsa44": true,                           // optional, default true: add the 0x06 cosignature
 *     "logs": [
 *       { "origin": "example.com/log", "keys": ["example.com/log+9be5d3c6+AYqI..."] }
 *     ]
 *   }
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { TlogError, ErrorCode } from '../src/errors.js';
import { sha256 } from '../src/merkle/hash.js';
import { parseVerifierKey } from '../src/note/keys.js';
import { checkKeyName } from '../src/note/note.js';
import { verifierFor, type TypedVerifier } from '../src/note/signers.js';

/** One witnessed log. */
export interface LogConfig {
  readonly origin: string;
  /** Lowercase hex SHA-256 of the origin: the monitoring path segment and the state file name. */
  readonly originHash: string;
  /** The vkeys as configured. */
  readonly keys: readonly string[];
  /** c2sp.org/tlog-witness: a checkpoint needs a valid signature from one of these (403 otherwise). */
  readonly verifiers: readonly TypedVerifier[];
}

export interface WitnessConfig {
  /** The witness's key name: the name of its cosignature lines (both 0x04 and 0x06). */
  readonly name: string;
  /** Whether add-checkpoint also returns an ML-DSA-44 (0x06) cosignature. */
  readonly mldsa44: boolean;
  /** Data directory from the file, already resolved; undefined when the file names none. */
  readonly data?: string;
  /** Logs by origin. */
  readonly logs: ReadonlyMap<string, LogConfig>;
}

/** The JSON shape of the config file (and of runWitness's inline config). */
export interface WitnessConfigInput {
  name: string;
  data?: string;
  mldsa44?: boolean;
  logs: { origin: string; keys: string[] }[];
}

function bad(why: string): TlogError {
  return new TlogError(ErrorCode.badInput, `witness config: ${why}`);
}

export function originHash(origin: string): string {
  return Buffer.from(sha256(Buffer.from(origin, 'utf8'))).toString('hex');
}

/** Validates a config object. `baseDir` resolves a relative `data`. */
export function parseConfig(input: unknown, baseDir = process.cwd()): WitnessConfig {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw bad('want a JSON object');
  const o = input as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!['name', 'data', 'mldsa44', 'logs'].includes(k)) throw bad(`unknown field ${JSON.stringify(k)}`);
  }
  if (typeof o.name !== 'string') throw bad('"name" must be a string');
  const nameProblem = checkKeyName(o.name);
  if (nameProblem) throw bad(nameProblem);
  // c2sp.org/tlog-cosignature subtree/v1 encodes the cosigner name with a u8 length.
  if (Buffer.byteLength(o.name, 'utf8') > 255) throw bad('"name" is longer than 255 bytes');
  if (o.data !== undefined && typeof o.data !== 'string') throw bad('"data" must be a string');
  if (o.mldsa44 !== undefined && typeof o.mldsa44 !== 'boolean') throw bad('"mldsa44" must be true or false');
  if (!Array.isArray(o.logs)) throw bad('"logs" must be an array');
  const logs = new Map<string, LogConfig>();
  for (const [i, l] of (o.logs as unknown[]).entries()) {
    if (typeof l !== 'object' || l === null) throw bad(`logs[${i}] must be an object`);
    const { origin, keys } = l as Record<string, unknown>;
    // c2sp.org/tlog-checkpoint: the origin is a non-empty line; subtree/v1 limits it to 255 bytes.
    if (typeof origin !== 'string' || origin.length === 0 || origin.includes('\n')) {
      throw bad(`logs[${i}].origin must be a non-empty single line`);
    }
    if (Buffer.byteLength(origin, 'utf8') > 255) throw bad(`logs[${i}].origin is longer than 255 bytes`);
    if (logs.has(origin)) throw bad(`origin ${JSON.stringify(origin)} is listed twice`);
    if (!Array.isArray(keys) || keys.length === 0 || !keys.every((k) => typeof k === 'string')) {
      throw bad(`logs[${i}].keys must be a non-empty array of verifier keys`);
    }
    const verifiers = (keys as string[]).map((k) => {
      try {
        return verifierFor(parseVerifierKey(k));
      } catch (e) {
        throw bad(`logs[${i}] (${origin}): ${(e as Error).message}`);
      }
    });
    logs.set(origin, { origin, originHash: originHash(origin), keys: keys as string[], verifiers });
  }
  return {
    name: o.name,
    mldsa44: o.mldsa44 ?? true,
    data: o.data === undefined ? undefined : path.resolve(baseDir, o.data),
    logs,
  };
}

export function loadConfig(file: string): WitnessConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new TlogError(ErrorCode.badInput, `read witness config ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new TlogError(ErrorCode.badInput, `witness config ${file}: not JSON: ${(e as Error).message}`);
  }
  return parseConfig(json, path.dirname(path.resolve(file)));
}
