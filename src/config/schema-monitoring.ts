/**
 * The `monitoring:` section (issue #8): behavioural baselines learned from the
 * audit log, the anomaly rules judged against them, and what each anomaly sets
 * off. Thresholds default to the article's (×3 frequency, ×5 data volume, ×10
 * token burn); the reasoning behind every default is in docs/monitoring.md.
 */
import { z } from 'zod';
import { durationField } from './fields.js';

/** The anomaly rules, by the id that audit entries, alerts and `responses.byRule` use. */
export const ANOMALY_RULES = [
  'frequency',
  'first-use',
  'volume',
  'token-burn',
  'off-hours',
  'denial-burst',
] as const;
export type AnomalyRule = (typeof ANOMALY_RULES)[number];

/** How many anomalies an agent raised recently decides how bad the next one is. */
export const ANOMALY_SEVERITIES = ['low', 'medium', 'high'] as const;
export type AnomalySeverity = (typeof ANOMALY_SEVERITIES)[number];

/** What an anomaly sets off (each also alerts): least to most disruptive. */
export const ANOMALY_RESPONSES = ['alert', 'hold-session', 'quarantine-session', 'kill-agent'] as const;
export type AnomalyResponseKind = (typeof ANOMALY_RESPONSES)[number];

export const MONITOR_WEEKDAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'] as const;
export type MonitorWeekday = (typeof MONITOR_WEEKDAYS)[number];

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
/** `HH:MM-HH:MM` (24-hour clock, end exclusive, may wrap midnight; end may be 24:00), as policy time windows. */
const HOURS = /^([01]\d|2[0-3]):([0-5]\d)-(([01]\d|2[0-3]):([0-5]\d)|24:00)$/;

const factor = (d: number) => z.number().gt(1, { error: 'expected a factor above 1' }).max(1000).default(d);
const response = z.enum(ANOMALY_RESPONSES);

const timezoneField = z
  .string()
  .refine(
    (tz) => {
      try {
        new Intl.DateTimeFormat('en', { timeZone: tz });
        return true;
      } catch {
        return false;
      }
    },
    { error: 'expected an IANA time zone such as UTC or Europe/Paris' },
  )
  .default('UTC');

const ratioRule = (d: number) =>
  z.strictObject({ enabled: z.boolean().default(true), factor: factor(d) }).prefault({});

const anomaliesSchema = z
  .strictObject({
    /** Ratio rules need at least this many calls of the tool in the learning period (tokens: reporting calls). */
    minBaselineCalls: z.number().int().min(1).default(20),
    /** …spread over at least this many windows, so one busy hour is not a baseline. */
    minBaselineWindows: z.number().int().min(1).default(3),
    frequency: ratioRule(3),
    firstUse: z
      .strictObject({
        enabled: z.boolean().default(true),
        /** `type`: a tool no agent of the type ever ran; `agent`: a tool this agent never ran. */
        scope: z.enum(['type', 'agent']).default('type'),
      })
      .prefault({}),
    volume: ratioRule(5),
    tokenBurn: ratioRule(10),
    offHours: z
      .strictObject({
        enabled: z.boolean().default(false),
        timezone: timezoneField,
        days: z
          .array(z.enum(MONITOR_WEEKDAYS))
          .min(1)
          .default((): MonitorWeekday[] => ['Mon', 'Tue', 'Wed', 'Thu', 'Fri']),
        hours: z
          .string()
          .regex(HOURS, { error: 'expected active hours like 08:00-18:00 (24-hour clock, end exclusive)' })
          .refine((w) => w.slice(0, 5) !== w.slice(6), { error: 'the hours start where they end' })
          .default('08:00-18:00'),
      })
      .prefault({}),
    denialBurst: z
      .strictObject({
        enabled: z.boolean().default(true),
        count: z.number().int().min(2).default(10),
        within: durationField({ min: 1000, max: DAY_MS }).default(5 * 60_000),
      })
      .prefault({})
      .transform((d) => ({ enabled: d.enabled, count: d.count, withinMs: d.within })),
    /** Anomalies one agent may raise in one tick; the rest are counted on the last one (`suppressed`). */
    maxPerAgent: z.number().int().min(1).max(1000).default(5),
    /** Anomalies all agents together may raise in one tick. */
    maxPerTick: z.number().int().min(1).max(10_000).default(100),
  })
  .prefault({});

const severityMap = z.strictObject({
  low: response.optional(),
  medium: response.optional(),
  high: response.optional(),
});

/** `monitoring:`; absent = on, with the defaults below. */
export const monitoringSchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    /** How often the audit log is read and the rules judged. */
    interval: durationField({ min: 100, max: 10 * 60_000 }).default(5000),
    /** The window a rule counts over and fires once per: whole hours (baselines are hourly). */
    window: durationField({ min: HOUR_MS, max: DAY_MS })
      .refine((ms) => ms % HOUR_MS === 0, { error: 'expected a whole number of hours (1h to 24h)' })
      .default(HOUR_MS),
    /** Behaviour older than this is not part of a baseline. */
    learningPeriod: durationField({ min: HOUR_MS, max: 90 * DAY_MS }).default(7 * DAY_MS),
    /** Audit entries read per query (a tick reads at most ten such batches). */
    batchSize: z.number().int().min(10).max(10_000).default(2000),
    newAgents: z
      .strictObject({
        /** `learn`: a new agent type's tool set is learned quietly for `learnFor`; `strict`: no grace. */
        mode: z.enum(['learn', 'strict']).default('learn'),
        learnFor: durationField({ min: 0, max: 90 * DAY_MS }).default(DAY_MS),
      })
      .prefault({})
      .transform((n) => ({ mode: n.mode, learnForMs: n.learnFor })),
    anomalies: anomaliesSchema,
    severity: z
      .strictObject({
        /** Anomalies of one agent counted together. */
        period: durationField({ min: 60_000, max: 90 * DAY_MS }).default(DAY_MS),
        /** The n-th anomaly of an agent within the period is at least medium… */
        medium: z.number().int().min(1).default(2),
        /** …and from this one on, high. */
        high: z.number().int().min(1).default(3),
      })
      .refine((s) => s.high >= s.medium, {
        error: 'severity.high must be at least severity.medium',
        path: ['high'],
      })
      .prefault({})
      .transform((s) => ({ periodMs: s.period, medium: s.medium, high: s.high })),
    responses: z
      .strictObject({
        low: response.default('alert'),
        medium: response.default('hold-session'),
        high: response.default('quarantine-session'),
        /** Per rule, per severity: e.g. `denial-burst: { high: kill-agent }`. */
        byRule: z.partialRecord(z.enum(ANOMALY_RULES), severityMap).default(() => ({})),
      })
      .prefault({}),
  })
  .refine((m) => m.learningPeriod >= m.window, {
    error: 'monitoring.learningPeriod must be at least one window',
    path: ['learningPeriod'],
  })
  .prefault({})
  .transform((m) => ({
    enabled: m.enabled,
    intervalMs: m.interval,
    windowMs: m.window,
    learningPeriodMs: m.learningPeriod,
    batchSize: m.batchSize,
    newAgents: m.newAgents,
    anomalies: m.anomalies,
    severity: m.severity,
    responses: m.responses,
  }));

/** The resolved `monitoring:` section (durations in milliseconds). */
export type MonitoringConfig = z.output<typeof monitoringSchema>;

/** The section's default (the embedded default config uses it). */
export function defaultMonitoring(): MonitoringConfig {
  return monitoringSchema.parse(undefined);
}

/** Every key of the section, for "did you mean …?" hints. */
export const MONITORING_KEYS: readonly string[] = [
  'enabled',
  'interval',
  'window',
  'learningPeriod',
  'batchSize',
  'newAgents',
  'mode',
  'learnFor',
  'anomalies',
  'minBaselineCalls',
  'minBaselineWindows',
  'frequency',
  'factor',
  'firstUse',
  'scope',
  'volume',
  'tokenBurn',
  'offHours',
  'timezone',
  'days',
  'hours',
  'denialBurst',
  'count',
  'within',
  'maxPerAgent',
  'maxPerTick',
  'severity',
  'period',
  'medium',
  'high',
  'low',
  'responses',
  'byRule',
  ...ANOMALY_RULES,
];
