export {
  addTrustedKeys,
  CHECKPOINT_TYP,
  type Checkpoint,
  Checkpointer,
  type CheckpointerStatus,
  type CheckpointPayload,
  type CheckpointSigner,
  loadCheckpointSigner,
  loadTrustedKeys,
  openCheckpoint,
  type TrustedKeys,
} from './checkpoint.js';
export { canonicalJson, entryHash, sha256Hex } from './entry.js';
export {
  type AuditFilter,
  EVENT_NAME,
  EXPORT_PAGE_SIZE,
  type ExportSummary,
  exportJsonl,
  headSeq,
  type LineSink,
  parseTimeArg,
  readPage,
  type ScanOptions,
  type ScanPage,
  scanPages,
} from './export.js';
export { formatEntry } from './format.js';
export { AuditHealth, type AuditHealthAlert, type AuditHealthDeps, PROBE_INTERVAL_MS } from './health.js';
export {
  AuditHmac,
  HMAC_PATTERN,
  HMAC_PREFIX,
  type HmacLookup,
  type HmacMatch,
  hmacKeyBytes,
  loadAuditHmacKey,
  lookupHmac,
  MIN_HMAC_KEY_BYTES,
  searchHmac,
} from './hmac.js';
export {
  type AppendOptions,
  AuditLog,
  type AuditLogObserver,
  type AuditLogOptions,
  type AuditReadOptions,
} from './log.js';
export {
  consistencyProof,
  emptyRoot,
  equalHashes,
  fromHex,
  HASH_SIZE,
  inclusionProof,
  leafHash,
  MerkleAccumulator,
  nodeHash,
  rootFromLeafHashes,
  toHex,
  verifyConsistency,
  verifyInclusion,
} from './merkle.js';
export {
  type BundleCheck,
  type ConsistencyBundle,
  checkBundle,
  consistencyBundle,
  type InclusionBundle,
  inclusionBundle,
  type ProofBundle,
} from './proofs.js';
export { redactParameters } from './redact.js';
export {
  type ArchiveHeader,
  type ArchiveResult,
  type ArchiveVerifyResult,
  archiveEntries,
  inclusionFromArchive,
  lastSeqBefore,
  pruneArchived,
  verifyArchive,
} from './retention.js';
export { readCursor, type SinkCursor } from './sink-cursor.js';
export { batchId, type SinkPayload } from './sink-webhook.js';
export {
  type AuditSinkMetrics,
  AuditSinks,
  type AuditSinksDeps,
  type AuditSinksLog,
  type SinkStatus,
} from './sinks.js';
export { ChainBreakError, entryLeafHash, MerkleTree, TreeReader } from './tree.js';
export type {
  ActorType,
  AuditDecision,
  AuditEntry,
  AuditEvent,
  AuditInput,
  AuditRecord,
  AuditResult,
  TriggerSource,
  VerifyProblem,
  VerifyResult,
} from './types.js';
export { AUDIT_EVENTS } from './types.js';
export { type VerifyOptions, verifyChain } from './verify.js';
export type { TreeVerifyOptions, TreeVerifyReport } from './verify-tree.js';
