/**
 * Publishing checkpoints: the history copy of every committed checkpoint
 * (`checkpoints/<tenant>/log/<N>`), cosigned versions (`checkpoints/<tenant>/cosigned/<N>`), and
 * the one served at `tiles/<tenant>/checkpoint`.
 *
 * Two modes. 'each': every committed checkpoint is published as the log signed it. 'cosigned'
 * (a tenant with witnesses): committing only writes the history; the cosigner publishes on its
 * own cadence, with the witnesses' cosignatures (or without them, when it fails open).
 *
 * Contract: every method is durable on return, except committed() unless asked: the journal
 * holds every committed note, so the per-batch copies are flushed with the batch's tiles (see
 * storage/journal.ts). One caller at a time per log.
 */
import path from 'node:path';
import { TlogError, ErrorCode } from '../errors.js';
import { equalHashes } from '../merkle/hash.js';
import { openNote, parseNote, type NoteVerifier } from '../note/note.js';
import type { DurableWriter } from '../storage/durable.js';
import { CHECKPOINT_FILE, cosignedPath, historyPath, type LogPaths } from '../tile-store/paths.js';
import { commitPointOf, type CommitPoint } from './commit-point.js';

export type PublishMode = 'each' | 'cosigned';

export class Publisher {
  constructor(
    private readonly paths: LogPaths,
    private readonly writer: DurableWriter,
    private readonly verifiers: readonly NoteVerifier[],
    readonly mode: PublishMode,
    /**
     * The published checkpoint: the checkpoint served at tiles/<tenant>/checkpoint: in 'each'
     * mode the answered one, in 'cosigned' mode the cosigner's latest.
     */
    public published: CommitPoint,
  ) {}

  private get checkpointFile(): string {
    return path.join(this.paths.tilesDir, CHECKPOINT_FILE);
  }

  /**
   * After a commit: the history copy, and in 'each' mode the published checkpoint. Visible on
   * return; durable only with `durable` (else at the writer's next flush).
   */
  async committed(cp: CommitPoint, durable = false): Promise<void> {
    const bytes = Buffer.from(cp.note, 'utf8');
    const history = { path: historyPath(this.paths.historyDir, cp.treeSize), data: bytes, kind: 'immutable' as const };
    const files = this.mode === 'cosigned' ? [history] : [history, { path: this.checkpointFile, data: bytes, kind: 'replace' as const }];
    await (durable ? this.writer.write(files) : this.writer.writeDeferred(files));
    if (this.mode === 'each') this.published = cp;
  }

  /**
   * Publishes a version of a committed checkpoint carrying extra (already verified) cosignature
   * lines. Refused when it would move the published tree back, or when the log's own signature
   * is missing.
   */
  async cosigned(note: string, committed: CommitPoint): Promise<CommitPoint> {
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
      { path: cosignedPath(this.paths.historyDir, cp.treeSize), data: bytes, kind: 'replace' },
      { path: this.checkpointFile, data: bytes, kind: 'replace' },
    ]);
    this.published = cp;
    return cp;
  }

  /** On open: in 'each' mode a published checkpoint behind the commit point is published again. */
  async recover(cp: CommitPoint, publishedNote: string | null): Promise<void> {
    if (this.mode === 'each') {
      if (publishedNote !== cp.note) await this.committed(cp, true);
      return;
    }
    // History is idempotent; the published one may lag until the cosigner runs.
    await this.writer.write([{ path: historyPath(this.paths.historyDir, cp.treeSize), data: Buffer.from(cp.note, 'utf8'), kind: 'immutable' }]);
    if (!publishedNote) await this.cosigned(cp.note, cp);
  }
}

/** The signature lines a cosigned note carries beyond the log's own. */
export function extraSignatures(note: string, logVerifiers: readonly NoteVerifier[]) {
  return parseNote(note).signatures.filter((s) => !logVerifiers.some((v) => v.name === s.name && v.keyID === s.keyID));
}
