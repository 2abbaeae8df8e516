/**
 * The log's private configuration file, <state>/<tenant>/log.json: its origin, written once by
 * create.ts, last (its presence is what marks a log as existing), read on every open.
 */
import path from 'node:path';
import { TlogError, ErrorCode } from '../errors.js';
import { readIfExists, writeFileDurably } from '../storage/durable.js';

export const CONFIG_FILE = 'log.json';

/** The log's private configuration, in <state>/log.json. */
export interface LogConfig {
  readonly version: 1;
  readonly origin: string;
  readonly createdAt: string;
  /** Made by `tlog serve` on first start with its default origin (see create.ts). */
  readonly implicit?: boolean;
}

export function configPath(stateDir: string): string {
  return path.join(stateDir, CONFIG_FILE);
}

export async function readLogConfig(stateDir: string): Promise<LogConfig> {
  const p = configPath(stateDir);
  const data = await readIfExists(p);
  if (!data) throw new TlogError(ErrorCode.notFound, `no log at ${stateDir}: run \`tlog init\` first`);
  let cfg: LogConfig;
  try {
    cfg = JSON.parse(data.toString('utf8')) as LogConfig;
  } catch (e) {
    throw new TlogError(ErrorCode.corrupt, `${p}: ${(e as Error).message}`);
  }
  if (cfg.version !== 1 || typeof cfg.origin !== 'string') throw new TlogError(ErrorCode.corrupt, `${p}: unknown version or no origin`);
  return cfg;
}

/** Writes the configuration, durably (0600): the last step of init. */
export async function writeLogConfig(stateDir: string, config: LogConfig): Promise<void> {
  await writeFileDurably(configPath(stateDir), JSON.stringify(config, null, 2) + '\n', 0o600);
}
