export { canonicalJson, entryHash, sha256Hex } from './entry.js';
export { formatEntry } from './format.js';
export { type AppendOptions, AuditLog, type AuditLogOptions, type AuditReadOptions } from './log.js';
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
export { redactParameters } from './redact.js';
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
export { type VerifyOptions, verifyChain } from './verify.js';
