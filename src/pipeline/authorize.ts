import { WardenError } from '../errors.js';
import { TAINT } from '../identity/index.js';
import {
  AGENT_ALLOW_POLICY,
  AGENT_DENY_POLICY,
  type AuthzDecision,
  type AuthzInput,
  PolicyEngine,
} from '../policy/index.js';
import type { ArgumentFindings } from './inspect-input.js';
import { uncoveredResourceScopes } from './resource-scopes.js';
import type { CallState, PipelineDeps, Step } from './types.js';

/** The scope that lets a session call `tool`. */
export function toolScope(tool: string): string {
  return `tool:${tool}:execute`;
}

/**
 * The token's scopes are the upper bound of what a session may do, whatever
 * policy permits: `tool:<name>:execute` must be among them. Throws
 * INSUFFICIENT_SCOPE naming the scope that was needed.
 */
export function checkToolScope(state: CallState, resourceTemplates: readonly string[] = []): void {
  const { tool, scopes } = state;
  if (!tool || !scopes) throw new WardenError('INTERNAL', 'Scope check ran out of order');
  const needed = toolScope(tool.name);
  if (!scopes.has(needed)) {
    // Every scope the call needs and the token lacks, in one challenge: the tool's, and the
    // resource scopes its arguments name.
    const resources = state.parameters
      ? uncoveredResourceScopes(resourceTemplates, state.parameters, scopes)
      : [];
    throw new WardenError('INSUFFICIENT_SCOPE', 'The session token lacks the scope for this tool', {
      rule: 'token.scope',
      data: { requiredScopes: [needed, ...resources] },
    });
  }
  state.allowedBy.push(`token.scope:${needed}`);
}

/** How a determining policy is named in audit reasons and denial rules. */
function ruleName(id: string, tool: string): string {
  // The list policies keep the spine's per-tool rule names, which operators and tests already know.
  if (id === AGENT_ALLOW_POLICY || id === AGENT_DENY_POLICY) return `${id}:${tool}`;
  return `policy:${id}`;
}

function denial(d: AuthzDecision & { allowed: false }, tool: string): WardenError {
  // The rule (public, like every denial's) names the policies; Cedar's errors stay in the private detail.
  const detail = d.errors.length > 0 ? `evaluation errors: ${d.errors.join('; ')}` : undefined;
  const opts = (rule: string) => ({ rule, ...(detail ? { detail } : {}) });
  if (d.reason === 'not-permitted') {
    return new WardenError(
      'TOOL_NOT_ALLOWED',
      `Tool "${tool}" is not permitted for this agent`,
      opts(`${AGENT_ALLOW_POLICY}:default-deny`),
    );
  }
  // The agent's own deny list is the most specific reason; name it first when it applied.
  if (d.policyIds.includes(AGENT_DENY_POLICY)) {
    return new WardenError(
      'TOOL_DENIED',
      `Tool "${tool}" is denied for this agent`,
      opts(ruleName(AGENT_DENY_POLICY, tool)),
    );
  }
  const rule = d.policyIds.map((id) => ruleName(id, tool)).join(',');
  if (d.reason === 'forbid-error') {
    return new WardenError(
      'POLICY_DENIED',
      'A policy that could forbid this call failed to evaluate',
      opts(rule),
    );
  }
  return new WardenError('POLICY_DENIED', `Policy forbids calling "${tool}" here`, opts(rule));
}

/**
 * Step 6: the Cedar decision (default deny, forbid wins), then the token's
 * scope as the upper bound. The agent is read live from the registry, so an
 * allow-list change applies to sessions already open. On allow the
 * determining policies and their obligations go on the state for the risk gate.
 */
export function authorize(deps: Pick<PipelineDeps, 'policy' | 'clock' | 'toolConfig'>): Step {
  const policy = deps.policy ?? listsOnly();
  return {
    name: 'authorize',
    async run(state: CallState) {
      const { agent, tool, session, parameters } = state;
      if (!agent || !tool || !session || !parameters) {
        throw new WardenError('INTERNAL', 'Authorization ran out of order');
      }
      let decision: AuthzDecision;
      try {
        decision = policy.authorize({
          agent,
          tool: { name: tool.name, upstream: tool.upstream },
          arguments: parameters,
          session: { id: session.id, calls: session.callCount },
          clientIp: state.request.clientIp,
          now: deps.clock.now(),
          ...(session.userId ? { user: { id: session.userId } } : {}),
          ...(state.detectors ? { detectors: cedarDetectors(state.detectors) } : {}),
          taint: {
            untrusted: ((state.taint ?? 0) & TAINT.untrusted) !== 0,
            privateData: ((state.taint ?? 0) & TAINT.privateData) !== 0,
          },
        });
      } catch (e) {
        if (e instanceof WardenError) throw e;
        // Fail closed: no decision is a denial.
        throw new WardenError('POLICY_UNAVAILABLE', 'Authorization is unavailable; the call was not run', {
          rule: 'policy.fail-closed',
          detail: e instanceof Error ? e.message : String(e),
          cause: e,
        });
      }
      if (!decision.allowed) throw denial(decision, tool.name);
      state.allowedBy.push(...decision.policyIds.map((id) => ruleName(id, tool.name)));
      checkToolScope(state, deps.toolConfig?.(tool.name)?.resourceScopes ?? []);
      state.policyIds = decision.policyIds;
      if (Object.keys(decision.obligations).length > 0) state.obligations = decision.obligations;
      policy.noteUse(session.id, tool.name);
    },
  };
}

/** The scores and counts policy sees (`context.detectors`); the rest stays in the audit entry. */
function cedarDetectors(d: ArgumentFindings): NonNullable<AuthzInput['detectors']> {
  const out: NonNullable<AuthzInput['detectors']> = {};
  if (d.injection !== undefined) out.injection = d.injection;
  if (d.classifier !== undefined) out.classifier = d.classifier;
  if (d.secrets !== undefined) out.secrets = d.secrets;
  if (d.pii !== undefined) out.pii = d.pii;
  return out;
}

let basic: PolicyEngine | undefined;
/** The engine of a pipeline built without one: the agents' allow/deny lists, nothing else. */
function listsOnly(): PolicyEngine {
  basic ??= PolicyEngine.basic();
  return basic;
}

/** Whether a session with this agent and scopes may see (and so list) `toolName`. */
export function mayUse(
  agent: { allowedTools: string[]; deniedTools: string[] },
  scopes: ReadonlySet<string>,
  toolName: string,
): boolean {
  return (
    !agent.deniedTools.includes(toolName) &&
    agent.allowedTools.includes(toolName) &&
    scopes.has(toolScope(toolName))
  );
}
