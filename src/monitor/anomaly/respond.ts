/**
 * What an anomaly sets off: the severity from how many the agent raised
 * recently, the response configured for it, the responder call, and the
 * ANOMALY_DETECTED audit entry with the numbers and the response's outcome.
 */
import type { AuditInput } from '../../audit/index.js';
import type {
  AnomalyResponseKind,
  AnomalyRule,
  AnomalySeverity,
  MonitoringConfig,
} from '../../config/index.js';
import type { Anomaly, AnomalyResponder } from './types.js';

/** Longest responseError kept (a responder's message is evidence, not storage). */
const MAX_ERROR_CHARS = 500;

/** The severity of an agent's n-th anomaly within `severity.period`. */
export function severityOf(n: number, s: MonitoringConfig['severity']): AnomalySeverity {
  if (n >= s.high) return 'high';
  if (n >= s.medium) return 'medium';
  return 'low';
}

/** The response for a rule at a severity: `byRule` first, else the severity's. */
export function responseOf(
  rule: AnomalyRule,
  severity: AnomalySeverity,
  r: MonitoringConfig['responses'],
): AnomalyResponseKind {
  return r.byRule[rule]?.[severity] ?? r[severity];
}

/**
 * Alerts, then runs the configured response. Never throws: a failure is returned (to be logged,
 * stored and audited) — a broken responder must not stop monitoring.
 */
export async function runResponse(a: Anomaly, responder: AnomalyResponder): Promise<string | null> {
  try {
    responder.alert(a);
  } catch {
    // alert() must not throw; if it does, the response below still runs
  }
  try {
    switch (a.response) {
      case 'alert':
        return null;
      case 'hold-session':
      case 'quarantine-session':
        // Nothing to hold when the entry had no session: the alert is all that can be done.
        if (a.sessionId === null)
          return `no session to ${a.response === 'hold-session' ? 'hold' : 'quarantine'}`;
        await (a.response === 'hold-session' ? responder.holdSession(a) : responder.quarantineSession(a));
        return null;
      case 'kill-agent':
        await responder.killAgent(a);
        return null;
    }
  } catch (e) {
    const message = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    return message.length > MAX_ERROR_CHARS ? `${message.slice(0, MAX_ERROR_CHARS)}…` : message;
  }
}

/** The ANOMALY_DETECTED entry: the rule, the numbers behind it and what was done. */
export function anomalyAuditInput(a: Anomaly, responseError: string | null): AuditInput {
  return {
    traceId: a.traceId,
    event: 'ANOMALY_DETECTED',
    actorType: 'SYSTEM',
    actorId: 'monitoring',
    agentId: a.agentId,
    agentType: a.agentType,
    sessionId: a.sessionId,
    toolName: a.tool,
    result: null,
    data: {
      // Rule-specific evidence first, so it can never shadow the fields every anomaly has.
      ...a.details,
      anomalyId: a.id,
      rule: a.rule,
      severity: a.severity,
      response: a.response,
      window: { start: a.windowStart, ms: a.windowMs },
      metric: a.metric,
      observed: a.observed,
      baseline: a.baseline,
      factor: a.factor,
      threshold: a.threshold,
      count: a.count,
      triggerSeq: a.triggerSeq,
      ...(responseError === null ? {} : { responseError }),
    },
  };
}
