/**
 * The local logs a command names with --tenant: a tenant with no log there is one readable line
 * that says where the command looked and which logs are there, not an ENOENT from deep inside.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { ErrorCode, TlogError } from '../errors.js';
import { logPaths, type DataRoots, type LogPaths } from '../tile-store/paths.js';

async function exists(p: string): Promise<boolean> {
  return fsp.access(p).then(
    () => true,
    () => false,
  );
}

/** The tenants under `root` that have `marker` (a relative path) in their directory, sorted. */
async function tenantsWith(root: string, marker: string): Promise<string[]> {
  let names: string[];
  try {
    names = await fsp.readdir(root);
  } catch {
    return [];
  }
  const found = await Promise.all(names.map(async (n) => ((await exists(path.join(root, n, marker))) ? n : null)));
  return found.filter((n): n is string => n !== null).sort();
}

function noLog(tenant: string, where: string, others: string[], hint: string): TlogError {
  const there = others.length > 0 ? `logs there: ${others.slice(0, 10).join(', ')}${others.length > 10 ? ', ...' : ''}` : 'no logs there';
  return new TlogError(ErrorCode.notFound, `no log "${tenant}" in ${where} (${there})${hint}`);
}

/**
 * The paths of a tenant whose public files are here (its published checkpoint): what the
 * read-only commands need (verify, proof, monitor, export). A copy of the public roots suffices.
 */
export async function publicLog(roots: DataRoots, tenant: string): Promise<LogPaths> {
  const paths = logPaths(roots, tenant);
  if (!(await exists(path.join(paths.tilesDir, 'checkpoint')))) {
    throw noLog(tenant, roots.tilesRoot, await tenantsWith(roots.tilesRoot, 'checkpoint'), '; give --tenant, --tiles-dir or --url');
  }
  return paths;
}

/** The paths of a tenant whose private state is here: what the writing commands need (append, anchor, index). */
export async function stateLog(roots: DataRoots, tenant: string): Promise<LogPaths> {
  const paths = logPaths(roots, tenant);
  if (!(await exists(path.join(paths.stateDir, 'log.json')))) {
    throw noLog(tenant, roots.stateRoot, await tenantsWith(roots.stateRoot, 'log.json'), `; create it with \`tlog init --tenant ${tenant} --origin <origin>\``);
  }
  return paths;
}
