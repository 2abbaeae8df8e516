/**
 * The tenants one process serves: each a Log with its own origin, keys and files.
 * Contract: get() returns an open log or undefined; closeAll() drains every log.
 */
import { TlogError, ErrorCode } from '../errors.js';
import { Log, type LogOptions } from '../log/log.js';
import { DEFAULT_TENANT, logPaths, type DataRoots } from '../log/paths.js';
import { readIfExists } from '../storage/durable.js';
import path from 'node:path';

export class TenantRegistry {
  private readonly logs = new Map<string, Log>();

  get(name: string): Log | undefined {
    return this.logs.get(name);
  }

  names(): string[] {
    return [...this.logs.keys()];
  }

  add(log: Log): void {
    if (this.logs.has(log.paths.tenant)) throw new TlogError(ErrorCode.conflict, `tenant ${log.paths.tenant} is already served`);
    this.logs.set(log.paths.tenant, log);
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.logs.values()].map((l) => l.close()));
  }
}

/**
 * The embedded default: tenant "default" under the given roots, created on first start with
 * `origin`. Returns the log and whether it was created now.
 */
export async function openOrInitDefault(roots: DataRoots, origin: string, opts: LogOptions = {}): Promise<{ log: Log; created: boolean }> {
  const paths = logPaths(roots, DEFAULT_TENANT);
  if (await readIfExists(path.join(paths.stateDir, 'log.json'))) return { log: await Log.open(paths, opts), created: false };
  return { log: await Log.init(paths, origin, opts), created: true };
}
