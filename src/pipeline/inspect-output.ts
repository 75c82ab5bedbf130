import { WardenError } from '../errors.js';
import { inspectResult } from '../inspect/index.js';
import { auditFields } from './audit-fields.js';
import type { CallState, PipelineDeps, Step } from './types.js';

/**
 * Step: the tool's result through the detectors before the agent sees it
 * (issue #7). PII and secrets are redacted (or only recorded, per config);
 * a result that carries instructions (indirect injection) is wrapped as
 * untrusted data, withheld, or only recorded. A secret found is audited as
 * SECRET_LEAK_PREVENTED and raises an alert; instructions found are audited as
 * INJECTION_DETECTED. If inspection itself fails the result is withheld (fail
 * closed): the tool has run, its outcome entry says so, the agent gets an error.
 */
export function inspectOutput(deps: Pick<PipelineDeps, 'inspection' | 'audit' | 'alert' | 'log'>): Step {
  return {
    name: 'inspect-output',
    async run(state: CallState) {
      const cfg = deps.inspection;
      const result = state.result;
      if (!cfg || !result || !state.tool) return;
      const r = cfg.results;
      const classifier = cfg.classifier?.on.includes('results') ? cfg.classifier : undefined;
      let classifierError: string | undefined;
      let inspected: Awaited<ReturnType<typeof inspectResult>>;
      try {
        inspected = await inspectResult(result, {
          pii: r.pii,
          piiTypes: r.piiTypes,
          secrets: r.secrets,
          injection: r.injection,
          injectionThreshold: r.injectionThreshold,
          tool: state.tool.name,
          ...(classifier
            ? {
                classify: async (text: string) => {
                  const v = await classifier.classify(text, 'tool-result');
                  if (!v.ok) classifierError = `${v.reason} (fail ${v.failMode})`;
                  // Closed: a failure scores 1; open: no opinion (null).
                  return v.score;
                },
              }
            : {}),
        });
      } catch (e) {
        // Fail closed: a result that could not be inspected is not passed on.
        throw new WardenError(
          'RESULT_WITHHELD',
          'The tool ran, but its result could not be inspected and was withheld',
          {
            rule: 'inspection.failed',
            detail: e instanceof Error ? e.message : String(e),
            cause: e,
          },
        );
      }
      const { findings, action } = inspected;
      state.inspection = {
        action,
        findings,
        ...(classifierError ? { classifierError } : {}),
      };
      const base = auditFields(state);
      const secretTypes = Object.keys(findings.secrets);
      if (secretTypes.length > 0) {
        const redacted = r.secrets === 'redact';
        // Types as values, not keys: the audit log redacts values under secret-looking keys.
        const data = {
          attemptSeq: state.attempt?.seq ?? null,
          where: 'result',
          found: counted(findings.secrets),
          action: redacted ? 'redacted' : 'flagged',
        };
        if (redacted)
          await record(deps, { ...base, event: 'SECRET_LEAK_PREVENTED', result: 'success', data });
        deps.alert?.({
          kind: 'secret-in-result',
          severity: 'high',
          traceId: state.request.traceId,
          agentId: state.agent?.id ?? null,
          sessionId: state.session?.id ?? null,
          tool: state.tool.name,
          summary: `${redacted ? 'Redacted' : 'Passed on'} ${secretTypes.join(', ')} in the result of ${state.tool.name}`,
          data,
        });
      }
      if (findings.injection.flagged) {
        const data = {
          attemptSeq: state.attempt?.seq ?? null,
          score: findings.injection.score,
          signals: findings.injection.signals,
          ...(findings.injection.classifier === undefined
            ? {}
            : { classifier: findings.injection.classifier }),
          action,
        };
        await record(deps, { ...base, event: 'INJECTION_DETECTED', result: 'success', data });
        deps.alert?.({
          kind: 'injection-in-result',
          severity: action === 'withheld' ? 'medium' : 'low',
          traceId: state.request.traceId,
          agentId: state.agent?.id ?? null,
          sessionId: state.session?.id ?? null,
          tool: state.tool.name,
          summary: `Instructions found in the result of ${state.tool.name} (score ${findings.injection.score}): ${action}`,
          data,
        });
      }
      if (action === 'withheld') {
        throw new WardenError(
          'RESULT_WITHHELD',
          'The tool ran, but its result was withheld: it carries text that reads like instructions',
          { rule: 'inspection.result-injection', data: { score: findings.injection.score } },
        );
      }
      state.result = inspected.result;
    },
  };
}

/** Findings are recorded as their own entries; one that cannot be written is logged, and the call goes on. */
async function record(
  deps: Pick<PipelineDeps, 'audit' | 'log'>,
  input: Parameters<PipelineDeps['audit']['append']>[0],
): Promise<void> {
  try {
    await deps.audit.append(input, { durable: false });
  } catch (e) {
    deps.log?.error(
      { event: input.event, traceId: input.traceId, err: e instanceof Error ? e.message : String(e) },
      'audit entry could not be written',
    );
  }
}

/** `{TYPE: n}` as `[{type, count}]`. */
function counted(m: Partial<Record<string, number>>): Array<{ type: string; count: number }> {
  return Object.entries(m).map(([type, count]) => ({ type, count: count ?? 0 }));
}
