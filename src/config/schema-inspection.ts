/**
 * The `inspection:` and `taint:` sections (issue #7): what the detectors look
 * at, what happens to a result that carries PII, secrets or instructions, and
 * what a tainted session may still do. Detectors score; policy decides — the
 * taint section compiles to policies of its own (see src/policy/taint.ts).
 */
import { z } from 'zod';
import { recipientPatternProblem } from '../policy/recipients.js';
import type { HeaderSecretRef } from './fields.js';
import { durationField, field, httpUrlField, secretRef } from './fields.js';

/** What a tool may do with data, as an operator labels it. */
export const TOOL_CAPABILITIES = [
  /** Returns content someone outside the deployment wrote (web pages, emails, tickets, files). */
  'untrusted-content',
  /** Returns data about users or the business that must not leave (orders, accounts, messages). */
  'private-data',
  /** Sends data out of the deployment (email, chat, HTTP requests, posts). */
  'external-communication',
  /** Moves money (refunds, payments, transfers). */
  'moves-money',
  /** Changes who may do what (accounts, permissions, keys). */
  'changes-access',
  /** Acts in the physical world (locks, devices, deliveries). */
  'physical-world',
] as const;

export type ToolCapability = (typeof TOOL_CAPABILITIES)[number];

export const capabilitySchema = z.enum(TOOL_CAPABILITIES);

/**
 * The PII types the detector knows. The last two (street addresses, person names found by context)
 * have no checksum and are never in the default `piiTypes`: an operator names them to act on them.
 */
export const PII_TYPE_NAMES = [
  'EMAIL_ADDRESS',
  'PHONE_NUMBER',
  'CREDIT_CARD',
  'IBAN_CODE',
  'US_SSN',
  'IP_ADDRESS',
  'STREET_ADDRESS',
  'PERSON',
] as const;

/** Known but not in the default `piiTypes`: IP addresses (see below), and the two without a checksum. */
const OFF_BY_DEFAULT: ReadonlySet<string> = new Set(['IP_ADDRESS', 'STREET_ADDRESS', 'PERSON']);

const score = z.number().min(0).max(1);

const classifierSchema = z.strictObject({
  url: httpUrlField(false),
  timeout: durationField({ min: 10, max: 60_000 }).default(1000),
  failMode: z.enum(['open', 'closed']).default('closed'),
  headers: z
    .record(
      z.string().regex(/^[A-Za-z0-9-]+$/, { error: 'expected an HTTP header name' }),
      field('a secret reference', (v) => secretRef(v, true)),
    )
    .default(() => ({})),
  /** Where the classifier is asked: tool arguments, tool results, or both. */
  on: z
    .array(z.enum(['arguments', 'results']))
    .min(1)
    .default((): Array<'arguments' | 'results'> => ['arguments', 'results']),
});

export const inspectionSchema = z
  .strictObject({
    arguments: z
      .strictObject({
        /** Score the arguments for injection (`context.detectors.injection`, 0–100). */
        injection: z.boolean().default(true),
        /** Count secrets in the arguments (`context.detectors.secrets`). */
        secrets: z.boolean().default(true),
        /** Count PII in the arguments (`context.detectors.pii`). */
        pii: z.boolean().default(false),
        /**
         * A call that carries a secret to a tool that communicates externally: refused,
         * held for a human, or allowed (recorded only). Default `deny`; it needs `secrets: true`,
         * so with secrets not counted it must be `allow` (or absent), never a rule that cannot fire.
         */
        secretsToExternal: z.enum(['deny', 'approval', 'allow']).optional(),
      })
      .superRefine((a, ctx) => {
        if (!a.secrets && a.secretsToExternal !== undefined && a.secretsToExternal !== 'allow') {
          ctx.addIssue({
            code: 'custom',
            path: ['secretsToExternal'],
            message: `cannot ${a.secretsToExternal === 'deny' ? 'refuse' : 'hold'} calls for secrets that are not counted: set secrets: true, or secretsToExternal: allow`,
          });
        }
      })
      .transform((a) => ({ ...a, secretsToExternal: a.secretsToExternal ?? (a.secrets ? 'deny' : 'allow') }))
      .prefault({}),
    results: z
      .strictObject({
        /** PII in results: redacted, only recorded, or not looked for. */
        pii: z.enum(['redact', 'flag', 'off']).default('redact'),
        /**
         * The PII types acted on. Default: what identifies a person or pays — not IP addresses,
         * which infrastructure tools return by design (add IP_ADDRESS to redact them too).
         */
        piiTypes: z
          .array(z.enum(PII_TYPE_NAMES))
          .min(1)
          .default(() => PII_TYPE_NAMES.filter((t) => !OFF_BY_DEFAULT.has(t))),
        /** Secrets in results: redacted, or passed on and only recorded. Both are audited and alerted. */
        secrets: z.enum(['redact', 'flag']).default('redact'),
        /**
         * A result that carries instructions: wrapped as untrusted data, withheld, only recorded,
         * or not looked for. Any of the first three taints the session as untrusted.
         */
        injection: z.enum(['wrap', 'withhold', 'flag', 'off']).default('wrap'),
        /** Score (0–1) from which a result counts as carrying instructions. */
        injectionThreshold: score.default(0.5),
      })
      .prefault({}),
    /** An operator's own injection model behind HTTP (see docs/inspection.md for the contract). */
    classifier: classifierSchema.optional(),
  })
  .prefault({});

/**
 * What a session that took in untrusted content (or read private data) may
 * still do with tools that communicate externally: `approval` (a human
 * decides each call), `deny`, or `allow` (recorded only).
 */
export const taintSchema = z
  .strictObject({
    untrusted: z.enum(['approval', 'deny', 'allow']).default('approval'),
    privateData: z.enum(['approval', 'deny', 'allow']).default('allow'),
    /**
     * Recipients a session tainted untrusted may still write to without a human: the
     * user's own addresses, the company's domain. Exact addresses, `*@domain`,
     * `*@*.domain`, phone numbers. Only tools that declare `recipients` qualify.
     */
    trustedRecipients: z
      .array(
        z.string().superRefine((p, ctx) => {
          const problem = recipientPatternProblem(p);
          if (problem) ctx.addIssue({ code: 'custom', message: problem });
        }),
      )
      .default(() => []),
  })
  .prefault({});

export type InspectionConfigFile = z.output<typeof inspectionSchema>;
export type TaintConfig = z.output<typeof taintSchema>;
export type ClassifierSettings = z.output<typeof classifierSchema> & {
  headers: Record<string, HeaderSecretRef>;
};
export type InspectionConfig = InspectionConfigFile;

/** Keys of these sections, for "did you mean" hints. */
export const INSPECTION_KEYS = [
  ...Object.keys(inspectionSchema.unwrap().shape),
  'injection',
  'secrets',
  'pii',
  'piiTypes',
  'injectionThreshold',
  'secretsToExternal',
  ...Object.keys(classifierSchema.shape),
  ...Object.keys(taintSchema.unwrap().shape),
  'capabilities',
];
