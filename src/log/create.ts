/**
 * Creating a log, all or nothing. The private state (keys, the anchoring key, the note of the
 * empty tree, the hot index with its first commit point, log.json) is made in
 * `<state>/.<tenant>.creating`, made durable, and renamed to `<state>/<tenant>` in one step: a
 * crash or an error at any point before the rename leaves no log and no keys under the log's
 * name, and the next creation clears what it left. Nothing public is written before the rename;
 * opening the log then publishes its first checkpoint (recovery does the same after a crash).
 *
 * One creator at a time per tenant: `<state>/.<tenant>.create.lock`, an exclusive lock that
 * the kernel drops when its process dies (the empty file stays, harmlessly).
 *
 * A log that `tlog serve` made on first start with its default origin is marked implicit. As
 * long as nothing was ever appended to it, a creation that names another origin replaces it
 * (a new origin is a new log, with new keys): that is what lets `npm start` run before
 * `tlog init --origin ...`. The old log is moved to `<state>/.<tenant>.discarding` in one step,
 * then its public files and that directory are removed; an interrupted discard is finished by
 * the next creation.
 */
import { promises as fsp, constants as fsc } from 'node:fs';
import path from 'node:path';
import { LOCK_HELD, NativeError, lockFileExclusive, type FileLock } from '../../native/index.js';
import { TlogError, ErrorCode, ioError } from '../errors.js';
import { EMPTY_ROOT } from '../merkle/hash.js';
import { checkKeyName } from '../note/note.js';
import type { SignOffload } from '../note/signers.js';
import { pathExists, readIfExists, syncDir, writeFileDurably } from '../storage/durable.js';
import { readJournal } from '../storage/journal.js';
import { formatIndexPath } from '../tiles/layout.js';
import { silentLogger } from '../logger.js';
import type { LogPaths } from '../tile-store/paths.js';
import { CHECKPOINT_FILE } from '../tile-store/paths.js';
import { signTree } from './checkpoint-signing.js';
import { commitPointOf, notePath, notesDir } from './commit-point.js';
import { CONFIG_FILE, readLogConfig, type LogConfig } from './config-file.js';
import { createLogKeys, loadLogKeys } from './keys.js';
import { journalDir } from './replay.js';
import { openIndexFile } from './open-index.js';
import type { LogOptions } from './settings.js';

/** The steps of a creation, in order; a test may fail any of them (CreateOptions.beforeStep). */
export const CREATE_STEPS = ['keys', 'extra-state', 'note', 'index', 'config', 'rename'] as const;
export type CreateStep = (typeof CREATE_STEPS)[number];

export interface CreateOptions {
  /**
   * Made by `tlog serve` with its default origin: while empty, a later creation with another
   * origin replaces it (see the file comment).
   */
  readonly implicit?: boolean;
  /** More private files made with the log, in its state directory before it is moved into place (the anchoring key). */
  readonly extraState?: (stateDir: string) => Promise<void>;
  /** Tests: runs before each step; throwing there is a failure (or a crash) at that step. */
  readonly beforeStep?: (step: CreateStep) => void | Promise<void>;
}

/** What a creation found and did. */
export type CreateOutcome =
  | { readonly result: 'created' }
  /** An empty implicit log with another origin was replaced. */
  | { readonly result: 'replaced'; readonly oldOrigin: string }
  /** An implicit log with this origin exists already: nothing done. */
  | { readonly result: 'exists' };

function stateRootOf(paths: LogPaths): string {
  return path.dirname(paths.stateDir);
}

function sideDir(paths: LogPaths, what: 'creating' | 'discarding'): string {
  return path.join(stateRootOf(paths), `.${paths.tenant}.${what}`);
}

async function removeTree(p: string): Promise<void> {
  try {
    await fsp.rm(p, { recursive: true, force: true });
  } catch (e) {
    throw ioError('remove', p, e);
  }
}

/** Takes the tenant's creation lock (the file is made if missing). */
async function lockCreation(paths: LogPaths): Promise<FileLock> {
  const p = path.join(stateRootOf(paths), `.${paths.tenant}.create.lock`);
  try {
    await (await fsp.open(p, fsc.O_RDWR | fsc.O_CREAT, 0o600)).close();
    return lockFileExclusive(p);
  } catch (e) {
    if (e instanceof NativeError && e.code === LOCK_HELD) {
      throw new TlogError(ErrorCode.locked, `log ${paths.tenant} is being created by another process (${p} is locked)`, { cause: e });
    }
    throw e instanceof TlogError ? e : ioError('lock', p, e);
  }
}

/**
 * The names a creation writes in a state directory before log.json: a directory holding only
 * these (and no log.json) is a creation an older version left half done.
 */
const CREATION_NAMES = new Set(['keys', 'notes', 'index.idx', 'journal']);

/** Removes what an interrupted creation or discard left (the creation lock is held). */
async function finishInterrupted(paths: LogPaths): Promise<void> {
  await removeTree(sideDir(paths, 'creating'));
  if (await pathExists(sideDir(paths, 'discarding'))) {
    await removePublicFilesOfEmptyLog(paths);
    await removeTree(sideDir(paths, 'discarding'));
  }
  // Before creations were atomic, an interrupted one left keys (and more) in the log's own
  // directory, and every later start failed on them. Nothing was published yet then.
  if ((await pathExists(paths.stateDir)) && !(await pathExists(path.join(paths.stateDir, CONFIG_FILE)))) {
    const names = await fsp.readdir(paths.stateDir);
    if (names.some((n) => !CREATION_NAMES.has(n) && !n.startsWith('.'))) {
      throw new TlogError(ErrorCode.conflict, `${paths.stateDir} holds files but no log (${CONFIG_FILE} is missing): move it away to create the log`);
    }
    await removeTree(paths.stateDir);
  }
}

/** The public files of an empty log: its checkpoint, the history copy of size 0, its vkeys. */
async function removePublicFilesOfEmptyLog(paths: LogPaths): Promise<void> {
  const files = [path.join(paths.tilesDir, CHECKPOINT_FILE), path.join(paths.historyDir, 'log', formatIndexPath(0)), path.join(paths.historyDir, 'vkeys')];
  for (const f of files) await fsp.rm(f, { force: true }).catch((e: unknown) => Promise.reject(ioError('remove', f, e)));
  // The directories go too when nothing else is in them.
  for (const d of [path.join(paths.historyDir, 'log'), paths.historyDir, paths.tilesDir]) {
    await fsp.rmdir(d).catch(() => {});
  }
}

/**
 * An existing log at `paths` with another origin: replaced when it is implicit and empty,
 * refused otherwise. The log's index lock is held while it is moved away, so a log in use
 * (tlog serve running) is refused, not pulled from under its writer.
 */
async function discardEmptyImplicitLog(paths: LogPaths, existing: LogConfig, origin: string, opts: LogOptions): Promise<void> {
  const refuse = (why: string) =>
    new TlogError(
      ErrorCode.conflict,
      `a log already exists at ${paths.stateDir} with origin ${existing.origin}${why}: its origin cannot change (use --tenant for another log)`,
    );
  if (!existing.implicit) throw refuse('');
  const index = openIndexFile(paths, { readOnly: false, logger: opts.logger ?? silentLogger, backend: opts.indexBackend }, false);
  try {
    const empty =
      index.commitPoint.treeSize === 0 && (await readJournal(journalDir(paths))).length === 0 && !(await pathExists(path.join(paths.tilesDir, 'tile')));
    if (!empty) throw refuse(' and entries in it');
    // One rename: from here on there is no log under the tenant's name.
    await fsp.rename(paths.stateDir, sideDir(paths, 'discarding'));
    await syncDir(stateRootOf(paths));
  } finally {
    index.close();
  }
  (opts.logger ?? silentLogger).warn(
    { tenant: paths.tenant, oldOrigin: existing.origin, origin },
    'replacing the empty log made on first start with a log of the origin asked for',
  );
  await removePublicFilesOfEmptyLog(paths);
  await removeTree(sideDir(paths, 'discarding'));
}

/**
 * Creates the private state of a new log at `paths` (see the file comment). Refuses an existing
 * log, unless it is implicit and empty (replaced when `origin` differs, left as is when not).
 */
export async function createLogState(
  paths: LogPaths,
  origin: string,
  opts: LogOptions & { offload?: SignOffload },
  c: CreateOptions = {},
): Promise<CreateOutcome> {
  // The origin is also the key name (c2sp.org/tlog-checkpoint SHOULD), so it must be a valid one.
  const problem = checkKeyName(origin);
  if (problem) throw new TlogError(ErrorCode.badInput, `bad origin: ${problem}`);
  const stateRoot = stateRootOf(paths);
  await fsp.mkdir(stateRoot, { recursive: true, mode: 0o700 });
  const lock = await lockCreation(paths);
  try {
    await finishInterrupted(paths);
    let outcome: CreateOutcome = { result: 'created' };
    if (await readIfExists(path.join(paths.stateDir, CONFIG_FILE))) {
      const existing = await readLogConfig(paths.stateDir);
      if (existing.origin === origin && existing.implicit) return { result: 'exists' };
      if (existing.origin === origin) throw new TlogError(ErrorCode.conflict, `a log already exists at ${paths.stateDir}`);
      await discardEmptyImplicitLog(paths, existing, origin, opts);
      outcome = { result: 'replaced', oldOrigin: existing.origin };
    }
    if (await readIfExists(path.join(paths.tilesDir, CHECKPOINT_FILE))) {
      throw new TlogError(ErrorCode.conflict, `${paths.tilesDir} already holds a published log`);
    }
    const tmp = sideDir(paths, 'creating');
    const tmpPaths: LogPaths = { ...paths, stateDir: tmp };
    const step = async (s: CreateStep) => c.beforeStep?.(s);
    await fsp.mkdir(tmp, { mode: 0o700 });
    await fsp.chmod(tmp, 0o700);
    try {
      await step('keys');
      await createLogKeys(tmp, origin);
      await step('extra-state');
      await c.extraState?.(tmp);
      await step('note');
      const keys = await loadLogKeys(tmp, origin, opts.clock, opts.offload);
      const cp = commitPointOf(signTree(origin, 0, EMPTY_ROOT, keys));
      await fsp.mkdir(notesDir(tmp), { mode: 0o700 });
      await writeFileDurably(notePath(tmp, 0), cp.note, 0o600);
      await step('index');
      const index = openIndexFile(
        tmpPaths,
        { readOnly: false, logger: opts.logger ?? silentLogger, indexCapacity: opts.indexCapacity, backend: opts.indexBackend },
        true,
      );
      try {
        index.writeCommitPoint({ treeSize: 0, rootHash: cp.rootHash, checkpointHash: cp.noteHash });
      } finally {
        index.close();
      }
      await step('config');
      const config: LogConfig = { version: 1, origin, createdAt: new Date().toISOString(), ...(c.implicit ? { implicit: true } : {}) };
      await writeFileDurably(path.join(tmp, CONFIG_FILE), JSON.stringify(config, null, 2) + '\n', 0o600);
      await syncDir(tmp);
      await step('rename');
    } catch (e) {
      await removeTree(tmp).catch(() => {});
      throw e;
    }
    // The one step that makes the log exist.
    await fsp.rename(tmp, paths.stateDir).catch((e: unknown) => Promise.reject(ioError('rename', tmp, e)));
    await syncDir(stateRoot);
    return outcome;
  } finally {
    lock.release();
  }
}
