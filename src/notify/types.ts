/**
 * The notifiers' contract with the rest of Warden. The approval service calls
 * `notify` after each change it has committed; notifiers queue the message in
 * the store's outbox and deliver it in the background (retried with backoff,
 * dead-lettered after the configured attempts). A notifier never decides
 * anything: a failed delivery is logged and retried, and approves nothing.
 */
import type { Approval, DecisionAction } from '../approvals/index.js';
import type { ApprovalNotifyEvent, NotifyEvent } from '../config/types.js';

export type { ApprovalNotifyEvent, NotifyEvent };

/** A security alert (issue #7; monitoring adds more kinds): one line for humans, counts and ids for machines. */
export interface SecurityAlert {
  kind: string;
  severity: 'low' | 'medium' | 'high' | 'critical';
  traceId: string;
  agentId: string | null;
  sessionId: string | null;
  tool: string | null;
  /** Never carries the secret or PII itself. */
  summary: string;
  data: Record<string, unknown>;
}

export interface Notifier {
  /** Queue `event` about `approval` for every configured target that subscribes to it. */
  notify(event: ApprovalNotifyEvent, approval: Approval): Promise<void>;
}

/** The outcome of a decision taken through a chat button, for the reply. */
export type ChatDecisionOutcome =
  | { ok: true; approval: Approval }
  | { ok: false; code: string; message: string };

/**
 * Decide an approval for a Slack user (the approval service maps the Slack user
 * to an operator, checks role and separation of duties, records and audits).
 */
export type ChatDecide = (input: {
  approvalId: string;
  slackUserId: string;
  action: DecisionAction;
  traceId: string;
}) => Promise<ChatDecisionOutcome>;
