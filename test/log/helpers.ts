/** Helpers shared by the log engine's tests. */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { auditLog } from '../../src/client/audit.js';
import { dirSource } from '../../src/client/source.js';
import type { Log } from '../../src/log/log.js';
import type { LogPaths } from '../../src/tile-store/paths.js';

/** Every checkpoint note a log kept in its history (historyDir/log), leaving out temporary files (dot names). */
export function historyNotes(p: LogPaths): string[] {
  const dir = path.join(p.historyDir, 'log');
  return (readdirSync(dir, { recursive: true }) as string[])
    .map((n) => path.join(dir, n))
    .filter((f) => statSync(f).isFile() && !path.basename(f).startsWith('.'))
    .map((f) => readFileSync(f, 'utf8'));
}

/**
 * Audits a log's files as a verifying client would: its tiles, against every checkpoint of its
 * history. `collectedPartials`: partial tiles the log collected may be gone (our own logs).
 */
export function auditLogFiles(log: Log, p: LogPaths, origin: string, collectedPartials = true) {
  return auditLog(dirSource(p.tilesDir), { verifiers: log.verifiers, origin, history: historyNotes(p), collectedPartials });
}
