/**
 * Evidence of log misbehaviour: checkpoints that carry a valid signature from the log's key
 * but cannot be proved consistent with what this witness already cosigned (a split view, or a
 * tree the log cannot prove it extended). c2sp.org/tlog-witness: the witness MAY keep such
 * requests as evidence and MUST NOT cosign them.
 *
 * File: <data>/evidence/<hex sha256(origin)>.jsonl, one JSON object per line, appended and
 * fdatasynced. Only signatures that verified are kept (an unverified line proves nothing and
 * could be forged by anyone). A file stops growing at MAX_EVIDENCE_BYTES: a log key holder
 * could otherwise fill the disk; the first records are the ones that matter.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { ioError } from '../src/errors.js';
import { syncDir } from '../src/storage/durable.js';
import { encodeBase64 } from '../src/note/note.js';
import { originHash } from './config.js';

export const MAX_EVIDENCE_BYTES = 64 << 20;

export const EvidenceReason = {
  /** Same size as the cosigned tree, another root: two signed roots for one size. */
  sameSizeOtherRoot: 'same_size_other_root',
  /** The consistency proof from the cosigned tree does not verify. */
  badConsistencyProof: 'bad_consistency_proof',
  /** A signed size-0 checkpoint whose root is not SHA-256(""). */
  emptyTreeWrongRoot: 'empty_tree_wrong_root',
} as const;
export type EvidenceReason = (typeof EvidenceReason)[keyof typeof EvidenceReason];

export interface EvidenceRecord {
  /** POSIX seconds when it was received. */
  readonly time: number;
  readonly origin: string;
  readonly reason: EvidenceReason;
  /** The request's old size and proof. */
  readonly old: number;
  readonly proof: readonly Uint8Array[];
  /** Our last cosigned checkpoint for the log (empty when none). */
  readonly cosigned: string;
  /** The request's checkpoint with only its verified signatures. */
  readonly received: string;
}

export interface EvidenceSink {
  /** Durable when it resolves. Calls for one origin are serialized by the witness. */
  record(r: EvidenceRecord): Promise<void>;
}

export class FileEvidence implements EvidenceSink {
  readonly dir: string;
  private dirMade = false;
  constructor(dataDir: string) {
    this.dir = path.join(dataDir, 'evidence');
  }

  fileOf(origin: string): string {
    return path.join(this.dir, `${originHash(origin)}.jsonl`);
  }

  async record(r: EvidenceRecord): Promise<void> {
    const line =
      JSON.stringify({
        time: r.time,
        origin: r.origin,
        reason: r.reason,
        old: r.old,
        proof: r.proof.map(encodeBase64),
        cosigned: r.cosigned,
        received: r.received,
      }) + '\n';
    const file = this.fileOf(r.origin);
    if (!this.dirMade) {
      await fsp.mkdir(this.dir, { recursive: true, mode: 0o700 });
      this.dirMade = true;
    }
    let fh: fsp.FileHandle | undefined;
    try {
      fh = await fsp.open(file, 'a', 0o600);
      const { size } = await fh.stat();
      if (size + line.length > MAX_EVIDENCE_BYTES) return;
      await fh.write(line);
      // Evidence is worth keeping across a crash: sync the data (and, for a new file, its size).
      await fh.datasync();
      // A new file's directory entry is durable only once the directory is fsynced.
      if (size === 0) await syncDir(this.dir);
    } catch (e) {
      throw ioError('append evidence', file, e);
    } finally {
      await fh?.close().catch(() => {});
    }
  }
}

/** Keeps evidence in memory (tests). */
export class MemoryEvidence implements EvidenceSink {
  readonly records: EvidenceRecord[] = [];
  async record(r: EvidenceRecord): Promise<void> {
    this.records.push(r);
  }
}
