/**
 * Publishing checkpoints: the history copy of every committed checkpoint
 * (`checkpoints/<tenant>/log/<N>`), the witnessed ones (`checkpoints/<tenant>/cosigned/<N>`), and
 * the one served at `tiles/<tenant>/checkpoint`.
 *
 * Two modes. 'each': every committed checkpoint is published as the log signed it. 'cosigned'
 * (a tenant with witnesses): committing only writes the history; the cosigner publishes on its
 * own cadence, with the witnesses' cosignatures (or without them, when it fails open).
 * `cosigned/` only ever gets checkpoints whose cosignatures met the witness policy: what a log
 * fails open with, or shows before its first quorum, is served but never filed there.
 *
 * Before its first quorum a 'cosigned' log serves the newest checkpoint that met its policy, or,
 * when none has yet, the empty tree (size 0) as the log signed it (it commits to no entry); a log
 * that published without witnesses before they were configured keeps serving that one.
 *
 * The mode can change while the log runs (a reload that adds or removes witnesses): writes of
 * the served checkpoint go through one queue, in order, and never move it back.
 *
 * Contract: every method is durable on return, except committed() unless asked: the journal
 * holds every committed note, so the per-batch copies are flushed with the batch's tiles (see
 * storage/journal.ts).
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { TlogError, ErrorCode } from '../errors.js';
import { equalHashes } from '../merkle/hash.js';
import { openNote, parseNote, type NoteVerifier } from '../note/note.js';
import { readIfExists, type DurableWriter, type FileWrite } from '../storage/durable.js';
import { parseIndexPath } from '../tiles/layout.js';
import { CHECKPOINT_FILE, cosignedPath, historyPath, type LogPaths } from '../tile-store/paths.js';
import { commitPointOf, type CommitPoint } from './commit-point.js';

export type PublishMode = 'each' | 'cosigned';

export class Publisher {
  /** Writes of the served checkpoint, in order (see the file comment). */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly paths: LogPaths,
    private readonly writer: DurableWriter,
    private readonly verifiers: readonly NoteVerifier[],
    private currentMode: PublishMode,
    /**
     * The published checkpoint: the checkpoint served at tiles/<tenant>/checkpoint: in 'each'
     * mode the answered one, in 'cosigned' mode the cosigner's latest.
     */
    public published: CommitPoint,
  ) {}

  get mode(): PublishMode {
    return this.currentMode;
  }

  private get checkpointFile(): string {
    return path.join(this.paths.tilesDir, CHECKPOINT_FILE);
  }

  /** Runs fn after every write queued before it. */
  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn);
    this.queue = run.catch(() => {});
    return run;
  }

  /**
   * After a commit: the history copy, and in 'each' mode the published checkpoint. Visible on
   * return; durable only with `durable` (else at the writer's next flush).
   */
  committed(cp: CommitPoint, durable = false): Promise<void> {
    const bytes = Buffer.from(cp.note, 'utf8');
    const files: FileWrite[] = [{ path: historyPath(this.paths.historyDir, cp.treeSize), data: bytes, kind: 'immutable' }];
    const write = () => (durable ? this.writer.write(files) : this.writer.writeDeferred(files));
    // The history copy alone needs no order (and must not wait behind a cosigned publish).
    if (this.currentMode !== 'each') return write();
    // Decided now, in commit order: a mode change waits for the writes decided before it.
    return this.enqueue(async () => {
      const serve = cp.treeSize >= this.published.treeSize;
      if (serve) files.push({ path: this.checkpointFile, data: bytes, kind: 'replace' });
      await write();
      if (serve) this.published = cp;
    });
  }

  /**
   * Publishes a version of a committed checkpoint carrying extra (already verified) cosignature
   * lines; `meetsPolicy` says whether they reach the witness policy's quorum, and only then is it
   * filed in cosigned/. Refused when it would move the published tree back, or when the log's own
   * signature is missing.
   */
  cosigned(note: string, committed: CommitPoint, meetsPolicy: boolean): Promise<CommitPoint> {
    return this.enqueue(async () => {
      let cp: CommitPoint;
      try {
        openNote(note, this.verifiers);
        cp = commitPointOf(note);
      } catch (e) {
        throw new TlogError(ErrorCode.verification, `not a checkpoint of this log: ${(e as Error).message}`);
      }
      if (cp.treeSize > committed.treeSize) throw new TlogError(ErrorCode.conflict, `checkpoint size ${cp.treeSize} is beyond the committed tree`);
      if (cp.treeSize < this.published.treeSize) {
        throw new TlogError(ErrorCode.conflict, `checkpoint size ${cp.treeSize} is older than the published one (${this.published.treeSize})`);
      }
      if (cp.treeSize === this.published.treeSize && !equalHashes(cp.rootHash, this.published.rootHash)) {
        throw new Error(`cosigned checkpoint contradicts the published one at size ${cp.treeSize}`);
      }
      const bytes = Buffer.from(note, 'utf8');
      await this.writer.write([
        ...(meetsPolicy ? [{ path: cosignedPath(this.paths.historyDir, cp.treeSize), data: bytes, kind: 'replace' as const }] : []),
        { path: this.checkpointFile, data: bytes, kind: 'replace' },
      ]);
      this.published = cp;
      return cp;
    });
  }

  /**
   * Changes the mode. To 'cosigned': returns once every checkpoint published under 'each' is
   * written, so none without witnesses follows. To 'each': publishes the newest committed
   * checkpoint at once (then every later one, as committed).
   */
  async setMode(mode: PublishMode, committed: () => CommitPoint): Promise<void> {
    if (mode === this.currentMode) return;
    this.currentMode = mode;
    if (mode === 'cosigned') {
      await this.enqueue(async () => {});
      return;
    }
    await this.enqueue(async () => {
      const cp = committed();
      if (cp.treeSize <= this.published.treeSize) return;
      const bytes = Buffer.from(cp.note, 'utf8');
      await this.writer.write([
        { path: historyPath(this.paths.historyDir, cp.treeSize), data: bytes, kind: 'immutable' },
        { path: this.checkpointFile, data: bytes, kind: 'replace' },
      ]);
      this.published = cp;
    });
  }

  /**
   * On open: in 'each' mode a published checkpoint behind the commit point is published again.
   * In 'cosigned' mode with nothing published (a new log, or a checkpoint a crash tore), the
   * newest checkpoint that met the policy is, or else the empty tree as the log signed it.
   */
  async recover(cp: CommitPoint, publishedNote: string | null): Promise<void> {
    if (this.currentMode === 'each') {
      if (publishedNote !== cp.note) await this.committed(cp, true);
      return;
    }
    // History is idempotent; the published one may lag until the cosigner runs.
    await this.writer.write([{ path: historyPath(this.paths.historyDir, cp.treeSize), data: Buffer.from(cp.note, 'utf8'), kind: 'immutable' }]);
    if (publishedNote) return;
    const fallback = (await this.newestCosigned(cp.treeSize)) ?? (await readIfExists(historyPath(this.paths.historyDir, 0)))?.toString('utf8');
    if (!fallback)
      throw new TlogError(ErrorCode.corrupt, `log ${this.paths.tenant}: nothing to publish (no cosigned checkpoint, no history copy of the empty tree)`);
    const note = fallback;
    const fcp = commitPointOf(note);
    await this.enqueue(async () => {
      await this.writer.write([{ path: this.checkpointFile, data: Buffer.from(note, 'utf8'), kind: 'replace' }]);
      this.published = fcp;
    });
  }

  /** The newest checkpoint in cosigned/ no larger than `maxSize` that the log signed, or null. */
  private async newestCosigned(maxSize: number): Promise<string | null> {
    const dir = path.join(this.paths.historyDir, 'cosigned');
    let names: string[];
    try {
      names = (await fsp.readdir(dir, { recursive: true })).map(String);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
    const sizes = names
      .map((n) => ({ n, size: parseIndexPath(n.split(path.sep).join('/')) }))
      .filter((x): x is { n: string; size: number } => x.size !== null && x.size <= maxSize)
      .sort((a, b) => b.size - a.size);
    for (const { n } of sizes) {
      const data = await readIfExists(path.join(dir, n));
      if (!data) continue;
      try {
        openNote(data.toString('utf8'), this.verifiers);
        return data.toString('utf8');
      } catch {}
    }
    return null;
  }
}

/** The signature lines a cosigned note carries beyond the log's own. */
export function extraSignatures(note: string, logVerifiers: readonly NoteVerifier[]) {
  return parseNote(note).signatures.filter((s) => !logVerifiers.some((v) => v.name === s.name && v.keyID === s.keyID));
}
