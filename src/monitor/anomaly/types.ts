/**
 * The anomaly monitor's public types: what an anomaly says, the port that
 * carries out responses, and the baseline view the admin API shows.
 */
import type { AuditEntry, AuditInput } from '../../audit/index.js';
import type {
  AnomalyResponseKind,
  AnomalyRule,
  AnomalySeverity,
  MonitoringConfig,
} from '../../config/index.js';
import type { Store } from '../../store/index.js';
import type { Clock } from '../../util/clock.js';

export type { AnomalyResponseKind, AnomalyRule, AnomalySeverity, MonitoringConfig };

/** What the numbers of an anomaly count. Never `tokens`: the audit log redacts token-looking keys. */
export type AnomalyMetric = 'calls' | 'resultBytes' | 'modelTokens' | 'firstUse' | 'localTime' | 'denials';

/** One anomaly: the rule, who, and the numbers behind it. */
export interface Anomaly {
  id: string;
  /** When it was raised (epoch ms). */
  ts: number;
  rule: AnomalyRule;
  severity: AnomalySeverity;
  /** The response configured for this rule and severity (every anomaly also alerts). */
  response: AnomalyResponseKind;
  agentId: string;
  agentType: string | null;
  /** The session of the entry that set it off; null when that entry had none. */
  sessionId: string | null;
  /** null for rules about the agent as a whole (off-hours, denial-burst). */
  tool: string | null;
  /** The window the rule counted over (epoch ms) and its length. */
  windowStart: number;
  windowMs: number;
  metric: AnomalyMetric;
  /** What was seen in the window (null where the rule has no number, e.g. off-hours). */
  observed: number | null;
  /** The per-window average it was compared with (null where the rule has none). */
  baseline: number | null;
  /** observed / baseline (null without a baseline). */
  factor: number | null;
  /** The configured limit: a factor for ratio rules, a count for denial bursts. */
  threshold: number | null;
  /** The n-th anomaly of this agent within `severity.period`: what the severity was read from. */
  count: number;
  /** Rule-specific evidence (baseline scope, evidence counts, local time, …). */
  details: Record<string, string | number | boolean | null>;
  /** The trace and audit seq of the entry that set it off. */
  traceId: string;
  triggerSeq: number;
}

/** An anomaly as stored, with what became of it. */
export interface AnomalyRecord extends Anomaly {
  /** When the response ran (null: not yet). */
  respondedAt: number | null;
  /** Why the response failed, when it did. */
  responseError: string | null;
  /** The ANOMALY_DETECTED entry (null: not yet audited). */
  auditSeq: number | null;
}

/** Carries out responses; implemented by the gateway (notifiers, sessions, kill switch). */
export interface AnomalyResponder {
  /** Announce the anomaly; never throws (rate-limited by the implementation). */
  alert(a: Anomaly): void;
  /** Require approval for the rest of `a.sessionId`. */
  holdSession(a: Anomaly): Promise<void>;
  /** Stop `a.sessionId`. */
  quarantineSession(a: Anomaly): Promise<void>;
  /** Stop the agent: every credential, session and in-flight call. */
  killAgent(a: Anomaly): Promise<void>;
}

/** What AnomalyMonitor needs. */
export interface AnomalyMonitorDeps {
  store: Store;
  audit: { append(i: AuditInput): Promise<AuditEntry> };
  config: MonitoringConfig;
  clock: Clock;
  log: { warn(o: object, m: string): void; error(o: object, m: string): void };
  respond: AnomalyResponder;
  metrics?: { anomaly(rule: string, severity: string): void };
}

/** A query of stored anomalies, newest first. */
export interface AnomalyQuery {
  agentId?: string;
  /** Raised at or after (epoch ms). */
  since?: number;
  /** Default 100, at most 1,000. */
  limit?: number;
}

/** Per-window averages over the learning period; null where there is too little evidence to judge. */
export interface PerWindow {
  calls: number | null;
  resultBytes: number | null;
  modelTokens: number | null;
}

/** One tool in a baseline view. */
export interface BaselineTool {
  tool: string;
  /** First and last call that ran (null: only ever denied). */
  firstSeen: number | null;
  lastSeen: number | null;
  /** Totals over the learning period (the current window excluded). */
  learned: {
    calls: number;
    resultBytes: number;
    /** null: no call reported its tokens. */
    modelTokens: number | null;
    reportingCalls: number;
    denials: number;
    /** Windows with at least one call. */
    activeWindows: number;
  };
  /**
   * What the ratio rules compare a window with. Scope `agent`: per window in which the agent
   * ran the tool; scope `type`: per (agent, window) of the type's agents — what a new agent of
   * the type is compared with.
   */
  perWindow: PerWindow;
  /** The current window so far. */
  current: { calls: number; resultBytes: number; modelTokens: number | null; denials: number };
}

/** The learned behaviour of one agent or agent type, for the admin API and CLI. */
export interface BaselineView {
  scope: 'agent' | 'type';
  key: string;
  windowMs: number;
  learningPeriodMs: number;
  /** The learning period shown: [from, to), ending where the current window starts. */
  from: number;
  to: number;
  /** First call that ran (null: none yet). */
  firstSeen: number | null;
  /** True while first use is not judged for this key (`newAgents: learn`, within `learnFor`). */
  learning: boolean;
  tools: BaselineTool[];
}
