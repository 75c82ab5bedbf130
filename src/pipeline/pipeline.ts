/**
 * The only place that orders the steps of a tool call. A new defence is a new
 * step in this list, not an `if` inside another step.
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { isWardenError, toWardenError, type WardenError } from '../errors.js';
import { noMetrics, type PipelineMetrics } from '../metrics/index.js';
import type { CallSpan } from '../tracing/index.js';
import { auditFields } from './audit-fields.js';
import { AUDIT_GATE_RULE, auditGate } from './audit-gate.js';
import { authenticate } from './authenticate.js';
import { authorize } from './authorize.js';
import { budget } from './budget.js';
import { circuitBreaker } from './circuit-breaker.js';
import { execute } from './execute.js';
import { InputSchemas } from './input-schemas.js';
import { auditDetectors, inspectInput } from './inspect-input.js';
import { inspectOutput } from './inspect-output.js';
import { rateLimit, toolRateLimit } from './rate-limit.js';
import { recordAttempt } from './record-attempt.js';
import { resolveTool } from './resolve-tool.js';
import { resourceScopes } from './resource-scopes.js';
import { resultJson } from './result-json.js';
import { reviewFlag, riskGate } from './risk-gate.js';
import { sessionGuard } from './session-guard.js';
import { taintSession } from './taint-session.js';
import { trackCall } from './track-call.js';
import type { CallState, PipelineDeps, Step, ToolCallRequest, ToolCallResult } from './types.js';
import { checkArguments, validateArguments } from './validate-arguments.js';

/** Errors that say the request never named an agent: audited as REQUEST_REJECTED, not TOOL_DENIED. */
const UNAUTHENTICATED_CODES = new Set(['UNAUTHENTICATED', 'TOKEN_INVALID', 'TOKEN_EXPIRED', 'AGENT_UNKNOWN']);

/** Refusals by a rate limit or budget: audited as RATE_LIMITED, not TOOL_DENIED. */
const RATE_LIMIT_CODES = new Set(['RATE_LIMITED', 'BUDGET_EXCEEDED']);

export class Pipeline {
  readonly steps: readonly Step[];
  private readonly metrics: PipelineMetrics;

  constructor(private readonly deps: PipelineDeps) {
    this.metrics = deps.metrics ?? noMetrics;
    const authz = authorize(deps);
    const scopes = resourceScopes(deps);
    const schemas = new InputSchemas();
    const inspect = inspectInput(deps);
    // An approver's edited arguments are a new call as far as the checks go.
    const recheck = async (state: CallState) => {
      if (!state.tool || !state.parameters) throw new Error('recheck ran out of order');
      checkArguments(state.tool, state.parameters, deps.toolConfig?.(state.tool.name), schemas);
      state.obligations = undefined;
      await inspect.run(state);
      await authz.run(state);
      await scopes.run(state);
    };
    this.steps = [
      // Issue #9: while the audit log cannot be written, nothing else is worth trying.
      auditGate(deps),
      authenticate(deps),
      sessionGuard(deps),
      // Reachable by the kill switch from here on: approval waits and the upstream call abort with it.
      trackCall(deps),
      // An open breaker refuses before anything else is spent (rate limits, policy, approvals).
      circuitBreaker(deps),
      rateLimit(deps),
      resolveTool(deps),
      toolRateLimit(deps),
      // Policy and resource scopes judge the arguments, so they are validated first.
      validateArguments(deps),
      // Scores for policy: the detectors never refuse a call themselves.
      inspect,
      authz,
      scopes,
      riskGate(deps, recheck),
      // Last before the attempt is recorded: only calls that will run are charged.
      budget(deps),
      reviewFlag(deps),
      recordAttempt(deps),
      execute(deps),
      // Before the agent sees the result: redaction, indirect injection, then the session's taint.
      inspectOutput(deps),
      taintSession(deps),
    ];
  }

  /** Run one tool call through every step; never throws. */
  async run(request: ToolCallRequest): Promise<ToolCallResult> {
    this.metrics.callsRunning(1);
    try {
      const tracer = this.deps.tracer;
      // Tracing off: no span objects and no extra closures; the steps run as they always did.
      return await (tracer
        ? tracer.call(request.traceId, (span) => this.runSteps(request, span))
        : this.runSteps(request, undefined));
    } finally {
      this.metrics.callsRunning(-1);
    }
  }

  private async runSteps(request: ToolCallRequest, span: CallSpan | undefined): Promise<ToolCallResult> {
    const state: CallState = { request, startedAt: this.deps.clock.now(), allowedBy: [] };
    const t0 = performance.now();
    let failedStep = '';
    let mark = t0;
    try {
      for (const step of this.steps) {
        failedStep = step.name;
        await (span ? span.step(step.name, () => step.run(state)) : step.run(state));
        const now = performance.now();
        this.metrics.step(step.name, (now - mark) / 1000);
        mark = now;
      }
    } catch (e) {
      state.release?.();
      const error = toWardenError(e);
      const now = performance.now();
      this.metrics.step(failedStep, (now - mark) / 1000);
      // An approval used by a call that then could not start is given back (the human said yes to a call that never ran).
      if (state.approval && !state.attempt) {
        await this.deps.approvals?.unconsume(state.approval.id, request.traceId).catch(() => {});
      }
      const outcome = await this.recordFailure(state, failedStep, error);
      // A call that ran and failed counts towards the breakers (their next call is refused if one opened).
      await this.deps.breakers?.record(state, error);
      this.finish(state, span, outcome, error.code, t0, now);
      return { ok: false, traceId: request.traceId, error };
    }
    state.release?.();
    const result = state.result!;
    const outcome = result.isError === true ? 'failure' : 'success';
    await this.recordOutcome(state, outcome, null);
    await this.deps.breakers?.record(state, null);
    this.finish(state, span, outcome, undefined, t0, mark);
    return { ok: true, traceId: request.traceId, result };
  }

  /** Times the outcome entry as a step of its own, counts the call and tells its span how it ended. */
  private finish(
    state: CallState,
    span: CallSpan | undefined,
    outcome: string,
    code: string | undefined,
    t0: number,
    stepsDone: number,
  ): void {
    const now = performance.now();
    // Only a name that resolved to an existing tool is a label value: the series stay bounded.
    const tool = state.tool?.name;
    this.metrics.step('record-outcome', (now - stepsDone) / 1000);
    this.metrics.call(outcome, code, (now - t0) / 1000, tool);
    span?.outcome({ outcome, code, tool, agentId: state.agent?.id, sessionId: state.session?.id });
  }

  private latency(state: CallState): number {
    return Math.max(0, this.deps.clock.now() - state.startedAt);
  }

  /** A failure before the attempt entry is a denial; after it, the outcome of a call that ran. */
  private async recordFailure(
    state: CallState,
    step: string,
    error: WardenError,
  ): Promise<'failure' | 'timeout' | 'denied' | 'pending'> {
    // The request for approval is on record already (APPROVAL_REQUESTED); a held call is not a denial.
    if (error.code === 'APPROVAL_PENDING') return 'pending';
    if (state.attempt) {
      const result = error.code === 'UPSTREAM_TIMEOUT' ? 'timeout' : 'failure';
      await this.recordOutcome(state, result, error);
      return result;
    }
    // Missing token on a tool call is noise, not an event; a presented-but-bad token is worth recording.
    if (error.code === 'UNAUTHENTICATED' && !state.request.token) return 'denied';
    // Refused because the log is down: a denial entry would fail too (and wait for it).
    if (error.rule === AUDIT_GATE_RULE) return 'denied';
    const rejected = !state.agent || UNAUTHENTICATED_CODES.has(error.code);
    await this.deps.audit
      .append({
        ...auditFields(state),
        event: rejected
          ? 'REQUEST_REJECTED'
          : RATE_LIMIT_CODES.has(error.code)
            ? 'RATE_LIMITED'
            : 'TOOL_DENIED',
        result: 'denied',
        latencyMs: this.latency(state),
        decision: {
          allowed: false,
          code: error.code,
          ...(error.rule ? { rule: error.rule } : {}),
          reasons: [error.message, ...(error.detail ? [error.detail] : [])],
        },
        data: {
          step,
          face: state.request.face,
          clientIp: state.request.clientIp,
          ...(state.detectors ? { detectors: auditDetectors(state.detectors) } : {}),
          ...(state.taint ? { taint: state.taint } : {}),
        },
      })
      // A denial stays a denial even when it cannot be recorded; the log line says so.
      .catch((e: unknown) => this.auditFailed('denial', state, e));
    return 'denied';
  }

  private async recordOutcome(
    state: CallState,
    result: 'success' | 'failure' | 'timeout',
    error: WardenError | null,
  ): Promise<void> {
    await this.deps.audit
      .append(
        {
          ...auditFields(state),
          event: 'TOOL_CALL',
          result,
          latencyMs: this.latency(state),
          decision: { allowed: true, reasons: [...state.allowedBy] },
          data: {
            phase: 'outcome',
            attemptSeq: state.attempt?.seq ?? null,
            // For the monitoring baselines (issue #8): what came back, and what the model spent.
            ...(state.result ? { resultBytes: resultBytes(state.result) } : {}),
            ...(state.modelTokens === undefined ? {} : { tokens: state.modelTokens }),
            ...(state.inspection && state.inspection.action !== 'none'
              ? { inspection: state.inspection.action }
              : {}),
            // A classifier that failed on the result, and what its fail mode made of it: never silent.
            ...(state.inspection?.classifierError
              ? { classifierError: state.inspection.classifierError }
              : {}),
            ...(state.inspection && state.inspection.findings.redacted > 0
              ? { redacted: state.inspection.findings.redacted }
              : {}),
            ...(state.inspection && Object.keys(state.inspection.findings.pii).length > 0
              ? {
                  pii: Object.entries(state.inspection.findings.pii).map(([type, count]) => ({
                    type,
                    count,
                  })),
                }
              : {}),
            ...(error ? { errorCode: error.code, error: error.detail ?? error.message } : {}),
          },
        },
        // The attempt entry was made durable before the tool ran; the outcome rides on the next flush.
        // The store down: the log keeps the outcome in memory and writes it once the store is back.
        { durable: false, retain: true },
      )
      // The tool has run and cannot be un-run: the caller gets its result, operators get told.
      .catch((e: unknown) =>
        isWardenError(e) && e.data?.['retained'] === true
          ? this.deps.log?.warn?.(
              { traceId: state.request.traceId, attemptSeq: state.attempt?.seq },
              'audit outcome entry kept in memory until the audit store is back',
            )
          : this.auditFailed('outcome', state, e),
      );
  }

  /** An entry that could not be written after the decision was made: logged and counted, never silent. */
  private auditFailed(entry: 'denial' | 'outcome', state: CallState, e: unknown): void {
    this.metrics.auditFailure(entry);
    this.deps.log?.error(
      {
        entry,
        traceId: state.request.traceId,
        agentId: state.agent?.id,
        sessionId: state.session?.id,
        tool: state.toolName,
        attemptSeq: state.attempt?.seq,
        err: e instanceof Error ? e.message : String(e),
      },
      `audit ${entry} entry could not be written`,
    );
  }
}

/** The size of a result as the agent receives it (UTF-8 bytes of its JSON). */
function resultBytes(result: CallToolResult): number {
  try {
    return Buffer.byteLength(resultJson(result), 'utf8');
  } catch {
    return 0;
  }
}

/** Construct the pipeline. */
export function createPipeline(deps: PipelineDeps): Pipeline {
  return new Pipeline(deps);
}
