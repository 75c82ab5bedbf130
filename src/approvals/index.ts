/** Human in the loop (issue #5): the approval queue, operators and their tokens. */
export { OPERATOR_TOKEN_TYPE, OperatorTokens, requireRole } from './operators.js';
export { argumentsHash } from './records.js';
export {
  type ApprovalAsk,
  ApprovalService,
  type ApprovalServiceDeps,
  type DecisionInput,
  type ReviewInput,
  stillPending,
} from './service.js';
export type {
  Approval,
  ApprovalKind,
  ApprovalStatus,
  DecidedVia,
  DecisionAction,
  ReviewStatus,
  ReviewVerdict,
} from './types.js';
