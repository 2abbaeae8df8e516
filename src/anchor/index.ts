/** Anchoring checkpoints in Sigstore Rekor (issue 6): the public surface of src/anchor. */
export {
  resolveAnchorConfig,
  backoffDelay,
  parseRetryAfter,
  DEFAULT_REKOR_V1_URL,
  type AnchorConfig,
  type AnchorConfigInput,
  type RekorConfig,
  type RekorApiVersion,
  type TsaConfig,
} from './config.js';
export { anchorKeyFromPem, createAnchorKey, loadAnchorKey, loadOrCreateAnchorKey, anchorKeyPath, ANCHOR_KEY_FILE, type AnchorKey } from './key.js';
export { Anchorer, AnchorKeySigner, RecordedSigner, recordedTimestamp, TSA_CLOCK_SKEW_MS, type AnchorerOptions, type AnchorRecord } from './anchorer.js';
export { Outbox, receiptBase, type AnchorJob } from './outbox.js';
export { RekorError, rekorV1Witness, rekorV2Witness } from './rekor.js';
export { tsaTrust, checkTimestamp, requestTimestamp, plausibleTime, OID_KP_TIMESTAMPING, type TsaTrust, type TimestampSummary } from './tsa.js';
export { verifyReceipt, listReceipts, latestReceipt, treeSizeOfReceipt, type VerifyReceiptOptions, type ReceiptEntry } from './receipt.js';
export {
  verifyAnchorBundle,
  verifyAnchorTimestamp,
  parseBundle,
  rekorTrust,
  rekorLogID,
  trustMaterial,
  type ReceiptSummary,
  type RekorTrust,
  type TimeEvidence,
} from './trust.js';
export { anchorRoutes, type AnchoredLog } from './routes.js';
