export { SessionActivity } from './activity.js';
export { cedarArguments, collectArgumentTypes } from './arguments.js';
export {
  AGENT_ALLOW_POLICY,
  AGENT_DENY_POLICY,
  agentListPolicies,
  compileRule,
  compileRules,
  isAccessRule,
} from './compile.js';
export {
  type AuthzDecision,
  createPolicyEngine,
  PolicyEngine,
  type PolicyEngineOptions,
  type PolicyLogger,
  type ReloadResult,
  type ReloadTrigger,
} from './engine.js';
export { effectiveRisk, maxRisk, mergeObligations, type Obligations, RISK_ORDER } from './obligations.js';
export {
  assemblePolicySet,
  type BuildResult,
  type BuiltPolicySet,
  buildPolicySet,
  type KnownTools,
  type PolicyMeta,
  type PolicySources,
} from './policy-set.js';
export {
  type AccessInput,
  type AuthzInput,
  buildAccessRequest,
  buildRequest,
  cedarIp,
  LocalTime,
} from './request.js';
export { ACTIONS, buildSchema, CEDAR, type CedarAction } from './schema.js';
