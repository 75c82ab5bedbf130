/**
 * How the gateway carries out an anomaly's response (issue #8): alerts go to
 * the notifiers, a held session needs a human for every further call (a taint
 * bit in the store, read with each call's claim by every process), a
 * quarantined session and a killed agent go through the kill switch as the
 * system actor `monitoring`.
 */
import { TAINT } from '../identity/index.js';
import type { SecurityAlert } from '../notify/index.js';
import type { Anomaly, AnomalyResponder } from './anomaly/index.js';
import type { KillSwitch } from './kill.js';

const SEVERITY: Record<Anomaly['severity'], SecurityAlert['severity']> = {
  low: 'medium',
  medium: 'high',
  high: 'critical',
};

const MONITOR = { type: 'SYSTEM', id: 'monitoring' } as const;

function summaryOf(a: Anomaly): string {
  const who = `agent ${a.agentId}${a.tool ? ` on ${a.tool}` : ''}`;
  const numbers =
    a.factor !== null
      ? `: ${a.observed} vs baseline ${a.baseline} (×${a.factor.toFixed(1)}, limit ×${a.threshold})`
      : a.observed !== null
        ? `: ${a.observed}${a.threshold !== null ? ` (limit ${a.threshold})` : ''}`
        : '';
  return `Anomaly ${a.rule} (${a.severity}) for ${who}${numbers}; response: ${a.response}`;
}

export function gatewayResponder(deps: {
  sessions: { addTaint(id: string, bits: number): Promise<boolean> };
  kill: Pick<KillSwitch, 'killAgent' | 'killSession'>;
  alert(a: SecurityAlert): void;
}): AnomalyResponder {
  const why = (a: Anomaly) => `anomaly ${a.rule} (${a.severity}, ${a.id})`;
  return {
    alert(a) {
      deps.alert({
        kind: `anomaly.${a.rule}`,
        severity: SEVERITY[a.severity],
        traceId: a.traceId,
        agentId: a.agentId,
        sessionId: a.sessionId,
        tool: a.tool,
        summary: summaryOf(a),
        data: {
          anomalyId: a.id,
          rule: a.rule,
          response: a.response,
          metric: a.metric,
          observed: a.observed,
          baseline: a.baseline,
          factor: a.factor,
          threshold: a.threshold,
        },
      });
    },
    async holdSession(a) {
      if (a.sessionId === null) return;
      await deps.sessions.addTaint(a.sessionId, TAINT.anomalyHold);
    },
    async quarantineSession(a) {
      if (a.sessionId === null) return;
      await deps.kill.killSession(a.sessionId, { by: MONITOR, reason: why(a), traceId: a.traceId });
    },
    async killAgent(a) {
      await deps.kill.killAgent(a.agentId, { by: MONITOR, reason: why(a), traceId: a.traceId });
    },
  };
}
