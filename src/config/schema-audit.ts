/**
 * The `audit:` section (issue #9): signed Merkle checkpoints and where they are
 * published, the HMAC key for sensitive values, streaming sinks for SIEMs, and
 * retention. Every part has a working default, so the embedded default needs
 * none of it: keys are created in the data directory on first start.
 */
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { AUDIT_EVENTS, type AuditEvent } from '../audit/types.js';
import { closest } from './closest.js';
import { describeValue } from './describe.js';
import { durationField, fail, field, httpUrlField, ok, secretRef } from './fields.js';
import type { SecretRef } from './types.js';

const DAY_MS = 86_400_000;

export const AUDIT_DEFAULTS = {
  checkpointIntervalMs: 60_000,
  checkpointMaxEntries: 10_000,
  signingKeyFile: 'audit-checkpoint-key.jwk',
  hmacKeyFile: 'audit-hmac.key',
  archiveDir: 'audit-archive',
  sinkBatchSize: 100,
  sinkTimeoutMs: 10_000,
  publishTimeoutMs: 10_000,
} as const;

const ref = field('a secret reference', (v) => secretRef(v, false));
const eventName = field('an audit event name', (v) => {
  if (typeof v === 'string' && (AUDIT_EVENTS as readonly string[]).includes(v)) return ok(v as AuditEvent);
  const hint = typeof v === 'string' ? closest(v, AUDIT_EVENTS) : undefined;
  return fail(
    `unknown audit event ${describeValue(v)}${hint === undefined ? '' : ` (did you mean "${hint}"?)`}: expected an event name such as TOOL_CALL (docs/audit.md, "What is recorded", lists them)`,
  );
});
const sinkName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, { error: 'expected a lowercase name (a-z, 0-9, -)' });

const publishWebhookSchema = z.strictObject({
  url: httpUrlField(false),
  /** Signs each delivery with Standard Webhooks headers (webhook-id, -timestamp, -signature), as the notifier webhooks. */
  secret: ref.optional(),
  timeout: durationField({ min: 100, max: 60_000 }).default(AUDIT_DEFAULTS.publishTimeoutMs),
});

const sinkWebhookSchema = z.strictObject({
  name: sinkName,
  url: httpUrlField(false),
  secret: ref.optional(),
  /** Only these events (absent: all). */
  events: z.array(eventName).min(1).optional(),
  batchSize: z.number().int().min(1).max(1000).default(AUDIT_DEFAULTS.sinkBatchSize),
  timeout: durationField({ min: 100, max: 60_000 }).default(AUDIT_DEFAULTS.sinkTimeoutMs),
});

export const auditSchema = z
  .strictObject({
    checkpoints: z
      .strictObject({
        enabled: z.boolean().default(true),
        /** A checkpoint is signed this often while the log grows… */
        interval: durationField({ min: 1000, max: DAY_MS }).default(AUDIT_DEFAULTS.checkpointIntervalMs),
        /** …or sooner, once this many entries were appended since the last one. */
        maxEntries: z.number().int().min(1).max(10_000_000).default(AUDIT_DEFAULTS.checkpointMaxEntries),
        /** A private Ed25519 JWK. Absent: `<dataDir>/audit-checkpoint-key.jwk`, created on first start. */
        signingKey: ref.optional(),
        /** Public JWK or JWKS files `warden audit verify` also trusts (keys rotated out, other replicas'). */
        trustedKeys: z.array(z.string().min(1)).default(() => []),
        publish: z
          .strictObject({
            /** Each checkpoint appended to this file as one JSON line. */
            file: z.string().min(1).optional(),
            webhooks: z.array(publishWebhookSchema).default(() => []),
          })
          .prefault({}),
      })
      .prefault({}),
    hmac: z
      .strictObject({
        /** At least 32 random bytes. Absent: `<dataDir>/audit-hmac.key`, created on first start. */
        key: ref.optional(),
      })
      .prefault({}),
    sinks: z
      .strictObject({
        webhooks: z.array(sinkWebhookSchema).default(() => []),
      })
      .prefault({}),
    retention: z
      .strictObject({
        /** Where `warden audit archive` writes by default (relative paths: to the data directory). */
        archiveDir: z.string().min(1).default(AUDIT_DEFAULTS.archiveDir),
      })
      .prefault({}),
  })
  .prefault({});

/** A resolved secret: where it is, and whether Warden creates it there when it does not exist. */
export interface AuditKeyRef {
  ref: SecretRef;
  /** True for the default file in the data directory: created (0600) on first start. */
  generate: boolean;
}

export interface AuditPublishWebhook {
  url: string;
  secret?: SecretRef;
  timeoutMs: number;
}

export interface AuditSinkWebhook {
  name: string;
  url: string;
  secret?: SecretRef;
  /** null: every event. */
  events: string[] | null;
  batchSize: number;
  timeoutMs: number;
}

/** The resolved `audit:` section: durations in ms, paths absolute. */
export interface AuditConfig {
  checkpoints: {
    enabled: boolean;
    intervalMs: number;
    maxEntries: number;
    signingKey: AuditKeyRef;
    /** Absolute paths of public JWK/JWKS files trusted besides the signing key's public half. */
    trustedKeyFiles: string[];
    publish: { file?: string; webhooks: AuditPublishWebhook[] };
  };
  hmac: { key: AuditKeyRef };
  sinks: { webhooks: AuditSinkWebhook[] };
  retention: { archiveDir: string };
}

function absRef(r: SecretRef, dir: string): SecretRef {
  return 'file' in r ? { file: resolve(dir, r.file) } : r;
}

/** The section resolved: config-relative paths against `configDir`, defaults in `dataDir`. */
export function resolveAudit(
  a: z.output<typeof auditSchema>,
  configDir: string,
  dataDir: string,
): AuditConfig {
  const c = a.checkpoints;
  return {
    checkpoints: {
      enabled: c.enabled,
      intervalMs: c.interval,
      maxEntries: c.maxEntries,
      signingKey:
        c.signingKey === undefined
          ? { ref: { file: join(dataDir, AUDIT_DEFAULTS.signingKeyFile) }, generate: true }
          : { ref: absRef(c.signingKey, configDir), generate: false },
      trustedKeyFiles: c.trustedKeys.map((f) => resolve(configDir, f)),
      publish: {
        ...(c.publish.file === undefined ? {} : { file: resolve(configDir, c.publish.file) }),
        webhooks: c.publish.webhooks.map((w) => ({
          url: w.url,
          ...(w.secret === undefined ? {} : { secret: absRef(w.secret, configDir) }),
          timeoutMs: w.timeout,
        })),
      },
    },
    hmac: {
      key:
        a.hmac.key === undefined
          ? { ref: { file: join(dataDir, AUDIT_DEFAULTS.hmacKeyFile) }, generate: true }
          : { ref: absRef(a.hmac.key, configDir), generate: false },
    },
    sinks: {
      webhooks: a.sinks.webhooks.map((w) => ({
        name: w.name,
        url: w.url,
        ...(w.secret === undefined ? {} : { secret: absRef(w.secret, configDir) }),
        events: w.events ?? null,
        batchSize: w.batchSize,
        timeoutMs: w.timeout,
      })),
    },
    retention: { archiveDir: resolve(dataDir, a.retention.archiveDir) },
  };
}

/** The embedded default's section: keys in the data directory, nothing published, no sinks. */
export function defaultAudit(dataDir: string): AuditConfig {
  return resolveAudit(auditSchema.parse({}), dataDir, dataDir);
}

/** Keys of the section, for "did you mean …?" hints. */
export const AUDIT_KEYS = [
  'checkpoints',
  'hmac',
  'sinks',
  'retention',
  'enabled',
  'interval',
  'maxEntries',
  'signingKey',
  'trustedKeys',
  'publish',
  'file',
  'webhooks',
  'key',
  'url',
  'secret',
  'timeout',
  'name',
  'events',
  'batchSize',
  'archiveDir',
];
