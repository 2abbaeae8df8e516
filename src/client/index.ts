/**
 * The verifying client's public surface: what `tlog-worm/client` and the `tlog-worm-client`
 * package export. Everything here only reads a log (a directory or an HTTP prefix) and trusts
 * nothing it has not verified against the log's keys and, optionally, a witness policy.
 *
 *   const src = urlSource('https://log.example/tenant');
 *   const cp = await fetchCheckpoint(src, { logKeys: [vkey] });
 *   const { entry, proof } = await proveInclusion(src, cp, 42);
 *   await new Monitor({ src, logKeys: [vkey], stateFile }).poll((e) => ...);
 *
 * It imports only the pure floor (merkle, tiles, note), errors, durable file writes for the
 * Monitor's state file, node:* and @noble/* (test/architecture.test.ts checks it), so that a
 * verifier installs nothing else. The signer for writers, which needs an RFC 9421 library, is
 * the separate subpath `./signed-request.js`.
 */

// Sources: where a log is read from.
export { dirSource, urlSource, type TlogSource } from './source.js';

// Checkpoints, inclusion and consistency.
export {
  fetchCheckpoint,
  verifyCheckpointNote,
  logVerifiers,
  proveInclusion,
  proveLeafHash,
  proveConsistency,
  InconsistentCheckpointsError,
  type CheckpointTrust,
  type TrustedCheckpoint,
  type InclusionResult,
} from './verify.js';

// Tiles on demand, with the partial-to-full fallback.
export { TileFetcher, decodeEntryBundle, type TileFetcherOptions, type TileFetcherStats } from './tiles.js';

// Following a log.
export { Monitor, type MonitorOptions, type MonitoredEntry, type MonitorAdvance, type MonitorRetry } from './monitor.js';

// c2sp.org/tlog-proof files.
export {
  TLOG_PROOF_HEADER,
  createTlogProof,
  formatTlogProof,
  parseTlogProof,
  verifyTlogProof,
  type TlogProof,
  type ProvenLeaf,
  type VerifiedTlogProof,
} from './proof-file.js';

// Full audit and the VIP-STD-002 ledger view.
export { auditLog, type AuditOptions, type AuditReport } from './audit.js';
export {
  exportLedger,
  verifyLedger,
  ledgerEntryHash,
  type LedgerEntry,
  type LedgerProof,
  type ExportOptions,
  type ExportResult,
  type VerifyLedgerOptions,
  type VerifyLedgerReport,
  type LedgerProblem,
} from './export.js';
export { canonicalize } from './jcs.js';

// The building blocks a verifier needs: keys, notes, checkpoints, witness policies, Merkle proofs.
export { parseVerifierKey, type VerifierKey } from '../note/keys.js';
export { verifierFor } from '../note/signers.js';
export { parseNote, openNote, type Note, type NoteSignature, type NoteVerifier } from '../note/note.js';
export { parseCheckpoint, type Checkpoint } from '../note/checkpoint.js';
export { parsePolicy, type WitnessPolicy } from '../note/witness-policy.js';
export { leafHash, nodeHash, EMPTY_ROOT } from '../merkle/hash.js';
export { verifyInclusion, verifyConsistency } from '../merkle/proof.js';
export { formatTilePath, parseTilePath, TILE_WIDTH } from '../tiles/layout.js';
export { TlogError, ErrorCode, isTlogError } from '../errors.js';
