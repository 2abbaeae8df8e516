/**
 * Errors of the hot index. `code` says what the engine should do: `index_corrupt` means
 * "rebuild it from the log", `locked` means "another writer runs: exit", `index_missing` means
 * "create or rebuild it". The engine maps these onto its own error type.
 */
export const IndexErrorCode = {
  /** The file is not a valid index (header, commit slots or geometry): rebuild it. */
  corrupt: 'index_corrupt',
  /** Another process holds the writer lock. */
  locked: 'locked',
  /** The file does not exist (read-only open, or writer open without create). */
  missing: 'index_missing',
} as const;
export type IndexErrorCode = (typeof IndexErrorCode)[keyof typeof IndexErrorCode];

export class IndexError extends Error {
  readonly code: IndexErrorCode;
  readonly path: string;
  /** Short machine-friendly reason, e.g. `header crc mismatch`. */
  readonly reason: string;
  constructor(code: IndexErrorCode, path: string, reason: string, options?: { cause?: unknown }) {
    super(`index ${path}: ${reason}`, options);
    this.name = 'IndexError';
    this.code = code;
    this.path = path;
    this.reason = reason;
  }
}

export function corrupt(path: string, reason: string): IndexError {
  return new IndexError(IndexErrorCode.corrupt, path, reason);
}
