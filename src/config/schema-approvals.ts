/** The `approvals:`, `operators:` and `notifiers:` sections (issue #5). */
import { z } from 'zod';
import type {
  ApprovalsConfig,
  NotifiersConfig,
  NotifyEvent,
  OperatorConfig,
  ToolApprovalConfig,
} from './approval-types.js';
import { durationField, field, httpUrlField, secretRef } from './fields.js';

const HOUR = 3_600_000;

export const APPROVAL_DEFAULTS = {
  timeoutMs: 5 * 60_000,
  mode: 'wait',
  progressIntervalMs: 15_000,
  allowSelfApproval: false,
  operatorTokenTtlMs: 8 * HOUR,
  slackApiUrl: 'https://slack.com/api',
  slackTimestampToleranceMs: 5 * 60_000,
  webhookMaxAttempts: 8,
  webhookTimeoutMs: 10_000,
  retryInitialMs: 1_000,
  retryMaxMs: 5 * 60_000,
} as const;

/** The longest an approval may wait (a request is a held call; days-long holds are a queue, not a call). */
export const MAX_APPROVAL_TIMEOUT_MS = 24 * HOUR;

const ref = field('a secret reference', (v) => secretRef(v, false));
const events = z
  .array(z.enum(['approval.requested', 'approval.decided', 'review.flagged', 'security.alert']))
  .min(1)
  .default((): NotifyEvent[] => [
    'approval.requested',
    'approval.decided',
    'review.flagged',
    'security.alert',
  ]);

export const approvalsSchema = z
  .strictObject({
    timeout: durationField({
      min: 1000,
      max: MAX_APPROVAL_TIMEOUT_MS,
      why: 'approvals are held calls',
    }).default(APPROVAL_DEFAULTS.timeoutMs),
    mode: z.enum(['wait', 'pending']).default(APPROVAL_DEFAULTS.mode),
    progressInterval: durationField({
      min: 1000,
      max: 55_000,
      why: 'MCP clients time out after 60s',
    }).default(APPROVAL_DEFAULTS.progressIntervalMs),
    allowSelfApproval: z.boolean().default(APPROVAL_DEFAULTS.allowSelfApproval),
    operatorTokenTtl: durationField({ min: 60_000, max: 24 * HOUR }).default(
      APPROVAL_DEFAULTS.operatorTokenTtlMs,
    ),
  })
  .prefault({});

export const operatorSchema = z.strictObject({
  // ":" lets an operator be the same person as an identity provider's user (`corp:alice`).
  id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$/, {
    error: 'expected 1–128 letters, digits, ".", "_", "@", ":" or "-", starting with a letter or digit',
  }),
  name: z.string().min(1).optional(),
  email: z.string().min(3).optional(),
  roles: z.array(z.enum(['admin', 'approver', 'auditor'])).min(1),
  slackUserId: z
    .string()
    .regex(/^[UW][A-Z0-9]{2,}$/, { error: 'expected a Slack user id such as U0123ABCD' })
    .optional(),
});

const slackSchema = z.strictObject({
  botToken: ref,
  signingSecret: ref,
  channel: z.string().min(1),
  apiUrl: httpUrlField(true).default(APPROVAL_DEFAULTS.slackApiUrl),
  events,
  timestampTolerance: durationField({ min: 1000, max: 15 * 60_000 }).default(
    APPROVAL_DEFAULTS.slackTimestampToleranceMs,
  ),
});

const webhookSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, { error: 'expected a lowercase name (a-z, 0-9, -)' }),
  url: httpUrlField(false),
  secret: ref,
  events,
  maxAttempts: z.number().int().min(1).max(50).default(APPROVAL_DEFAULTS.webhookMaxAttempts),
  timeout: durationField({ min: 100, max: 60_000 }).default(APPROVAL_DEFAULTS.webhookTimeoutMs),
});

export const notifiersSchema = z
  .strictObject({
    slack: slackSchema.optional(),
    webhooks: z.array(webhookSchema).default(() => []),
    retry: z
      .strictObject({
        initialDelay: durationField({ min: 10 }).default(APPROVAL_DEFAULTS.retryInitialMs),
        maxDelay: durationField({ min: 10 }).default(APPROVAL_DEFAULTS.retryMaxMs),
      })
      .prefault({}),
  })
  .prefault({});

export const toolApprovalSchema = z
  .strictObject({
    timeout: durationField({
      min: 1000,
      max: MAX_APPROVAL_TIMEOUT_MS,
      why: 'approvals are held calls',
    }).optional(),
    allowSelfApproval: z.boolean().optional(),
  })
  .transform(
    (a): ToolApprovalConfig => ({
      ...(a.timeout === undefined ? {} : { timeoutMs: a.timeout }),
      ...(a.allowSelfApproval === undefined ? {} : { allowSelfApproval: a.allowSelfApproval }),
    }),
  );

/** The resolved sections, from the parsed file (secret references stay references). */
export function resolveApprovalSections(file: {
  approvals: z.output<typeof approvalsSchema>;
  operators: Array<z.output<typeof operatorSchema>>;
  notifiers: z.output<typeof notifiersSchema>;
}): { approvals: ApprovalsConfig; operators: OperatorConfig[]; notifiers: NotifiersConfig } {
  const a = file.approvals;
  const n = file.notifiers;
  return {
    approvals: {
      timeoutMs: a.timeout,
      mode: a.mode,
      progressIntervalMs: a.progressInterval,
      allowSelfApproval: a.allowSelfApproval,
      operatorTokenTtlMs: a.operatorTokenTtl,
    },
    operators: file.operators.map((o) => ({
      id: o.id,
      roles: [...new Set(o.roles)],
      ...(o.name === undefined ? {} : { name: o.name }),
      ...(o.email === undefined ? {} : { email: o.email }),
      ...(o.slackUserId === undefined ? {} : { slackUserId: o.slackUserId }),
    })),
    notifiers: {
      ...(n.slack === undefined
        ? {}
        : {
            slack: {
              botToken: n.slack.botToken,
              signingSecret: n.slack.signingSecret,
              channel: n.slack.channel,
              apiUrl: n.slack.apiUrl.replace(/\/+$/, ''),
              events: n.slack.events,
              timestampToleranceMs: n.slack.timestampTolerance,
            },
          }),
      webhooks: n.webhooks.map((w) => ({
        name: w.name,
        url: w.url,
        secret: w.secret,
        events: w.events,
        maxAttempts: w.maxAttempts,
        timeoutMs: w.timeout,
      })),
      retry: {
        initialDelayMs: n.retry.initialDelay,
        maxDelayMs: Math.max(n.retry.maxDelay, n.retry.initialDelay),
      },
    },
  };
}

/** The embedded default's sections: no operators, no notifiers. */
export function defaultApprovalSections(): {
  approvals: ApprovalsConfig;
  operators: OperatorConfig[];
  notifiers: NotifiersConfig;
} {
  return resolveApprovalSections({
    approvals: approvalsSchema.parse({}),
    operators: [],
    notifiers: notifiersSchema.parse({}),
  });
}

/** Keys of these sections, for "did you mean" hints. */
export const APPROVAL_KEYS = [
  ...Object.keys(approvalsSchema.unwrap().shape),
  ...Object.keys(operatorSchema.shape),
  ...Object.keys(slackSchema.shape),
  ...Object.keys(webhookSchema.shape),
  'slack',
  'webhooks',
  'retry',
  'initialDelay',
  'maxDelay',
];
