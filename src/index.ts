/**
 * The package entry: the verifying client for any c2sp.org/tlog-tiles log, for other
 * TypeScript programs. Everything here only reads a log (a directory or an HTTP prefix) and
 * trusts nothing it has not verified against the log's keys and, optionally, a witness policy.
 *
 *   const src = urlSource('https://log.example/tenant');
 *   const cp = await fetchCheckpoint(src, { logKeys: [vkey] });
 *   const { entry, proof } = await proveInclusion(src, cp, 42);
 *   for await (const e of new Monitor({ src, logKeys: [vkey], stateFile }).entries()) ...
 *
 * The log engine and the server are not exported here; they are run through the `tlog` CLI.
 * signHttpRequest() signs writes for a service that registers the caller's client key.
 */

// Sources: where a log is read from.
export { dirSource, urlSource, type TlogSource } from './client/source.js';

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
} from './client/verify.js';

// Tiles on demand, with the partial-to-full fallback.
export { TileFetcher, decodeEntryBundle, type TileFetcherOptions, type TileFetcherStats } from './client/tiles.js';

// Following a log.
export { Monitor, type MonitorOptions, type MonitoredEntry, type MonitorAdvance } from './client/monitor.js';

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
} from './client/proof-file.js';

// Full audit and the VIP-STD-002 ledger view.
export { auditLog, type AuditOptions, type AuditReport } from './client/audit.js';
export { exportLedger, verifyLedger, ledgerEntryHash, type LedgerEntry, type LedgerProof, type ExportOptions, type ExportResult, type VerifyLedgerOptions, type VerifyLedgerReport, type LedgerProblem } from './client/export.js';
export { canonicalize } from './client/jcs.js';

// Writing to a tlog-worm service with a client key: RFC 9421 signed requests.
export { signHttpRequest, type HttpRequestToSign } from './client/signed-request.js';
export { contentDigest, signatureTag } from './signed-write/profile.js';

// The building blocks a verifier needs: keys, notes, checkpoints, witness policies, Merkle proofs.
export { parseVerifierKey, type VerifierKey } from './note/keys.js';
export { verifierFor } from './note/signers.js';
export { parseNote, openNote, type Note, type NoteSignature, type NoteVerifier } from './note/note.js';
export { parseCheckpoint, type Checkpoint } from './note/checkpoint.js';
export { parsePolicy, type WitnessPolicy } from './note/witness-policy.js';
export { leafHash, nodeHash, EMPTY_ROOT } from './merkle/hash.js';
export { verifyInclusion, verifyConsistency } from './merkle/proof.js';
export { formatTilePath, parseTilePath, TILE_WIDTH } from './tiles/layout.js';
export { TlogError, ErrorCode, isTlogError } from './errors.js';
