/**
 * Approval requests and review flags as the rest of Warden sees them (the
 * `approvals` table, camelCase). Approvers see `arguments` redacted; the call
 * itself is matched by `argumentsHash`.
 */
import type { RiskClass } from '../config/types.js';

export type ApprovalKind = 'approval' | 'review';
export type ApprovalStatus = 'pending' | 'approved' | 'denied' | 'expired';
export type ReviewStatus = 'flagged' | 'reviewed';
export type ReviewVerdict = 'ok' | 'concern';
/** How a decision reached Warden. */
/** `system`: decided by Warden itself (the kill switch denied what its agent was waiting for). */
export type DecidedVia = 'api' | 'cli' | 'slack' | 'timeout' | 'system';

export interface Approval {
  id: string;
  kind: ApprovalKind;
  status: ApprovalStatus | ReviewStatus;
  createdAt: number;
  expiresAt: number;
  traceId: string;
  agentId: string;
  agentType: string;
  sessionId: string;
  /** The user the agent acts for, when it does. */
  userId: string | null;
  toolName: string;
  /** The class the call waits (or ran) under, after policy raised it. */
  risk: RiskClass;
  configuredRisk: RiskClass;
  /** Redacted arguments: what an approver sees. */
  arguments: unknown;
  /** SHA-256 hex of the canonical JSON of the arguments as sent. */
  argumentsHash: string;
  reasoning: string | null;
  /** The rule that asked for a human. */
  rule: string;
  policyIds: string[];
  auditSeq: number | null;
  decidedAt: number | null;
  /** `operator:<id>` for a human, `system:timeout` for an expiry. */
  decidedBy: string | null;
  decidedVia: DecidedVia | null;
  comment: string | null;
  /** Top-level argument values the approver replaced (edit before approve). */
  argumentPatch: Record<string, unknown> | null;
  verdict: ReviewVerdict | null;
  consumedAt: number | null;
}

/** What a decision asks for. */
export type DecisionAction = 'approve' | 'deny';
