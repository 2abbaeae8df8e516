/**
 * Where a tenant's log lives on disk. Three roots, kept apart on purpose:
 * - tiles/<tenant>/        public: exactly the c2sp.org/tlog-tiles URL space, served as is;
 * - checkpoints/<tenant>/  public history: every checkpoint the log signed, readable by people;
 * - <state>/<tenant>/      private: keys, commit point, index; never under a served root.
 * And where the checkpoint files are in the public two: the published one, the history copies.
 */
import path from 'node:path';
import { TlogError, ErrorCode } from '../errors.js';
import { isInside } from '../storage/containment.js';
import { formatIndexPath } from '../tiles/layout.js';

export interface DataRoots {
  readonly tilesRoot: string;
  readonly checkpointsRoot: string;
  readonly stateRoot: string;
}

export interface LogPaths {
  readonly tenant: string;
  /** tiles/<tenant>: holds `checkpoint` and `tile/...`. */
  readonly tilesDir: string;
  /** checkpoints/<tenant>: the checkpoint history. */
  readonly historyDir: string;
  /** Private state: keys/, commit point, config, index. Mode 0700. */
  readonly stateDir: string;
}

export const DEFAULT_TENANT = 'default';

/** Environment overrides of the default roots, then the defaults relative to the working directory. */
export function defaultRoots(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): DataRoots {
  return {
    tilesRoot: path.resolve(cwd, env.TLOG_TILES_DIR ?? 'tiles'),
    checkpointsRoot: path.resolve(cwd, env.TLOG_CHECKPOINTS_DIR ?? 'checkpoints'),
    stateRoot: path.resolve(cwd, env.TLOG_STATE_DIR ?? '.tlog'),
  };
}

const TENANT_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/** Tenant names become path segments and URL prefixes: lowercase, digits, "-" and "_" only. */
export function checkTenantName(name: string): void {
  if (!TENANT_NAME.test(name)) {
    throw new TlogError(ErrorCode.badInput, `bad tenant name ${JSON.stringify(name)}: want 1-63 of a-z, 0-9, "-", "_", starting with a letter or digit`);
  }
}

export function logPaths(roots: DataRoots, tenant: string): LogPaths {
  checkTenantName(tenant);
  const stateRoot = path.resolve(roots.stateRoot);
  for (const served of [roots.tilesRoot, roots.checkpointsRoot]) {
    // Either way round: a served root inside the state root would publish it just the same.
    if (isInside(served, stateRoot) || isInside(stateRoot, served)) {
      throw new TlogError(ErrorCode.badInput, `state directory ${stateRoot} must not be inside or contain the served directory ${path.resolve(served)}`);
    }
  }
  return {
    tenant,
    tilesDir: path.resolve(roots.tilesRoot, tenant),
    historyDir: path.resolve(roots.checkpointsRoot, tenant),
    stateDir: path.resolve(stateRoot, tenant),
  };
}

/** The published checkpoint's file in tiles/<tenant>/ (c2sp.org/tlog-tiles: `<prefix>/checkpoint`). */
export const CHECKPOINT_FILE = 'checkpoint';

/** History path of a checkpoint of `size`: checkpoints/<tenant>/log/<tlog-tiles N path>. */
export function historyPath(historyDir: string, size: number): string {
  return path.join(historyDir, 'log', formatIndexPath(size));
}

/** Where a cosigned version of the checkpoint of `size` is kept: checkpoints/<tenant>/cosigned/<N path>. */
export function cosignedPath(historyDir: string, size: number): string {
  return path.join(historyDir, 'cosigned', formatIndexPath(size));
}
