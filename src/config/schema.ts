/**
 * The zod schema of `warden.yaml`. It checks shapes and units and renames keys
 * to the resolved names of `types.ts`; anything needing the file system (paths,
 * secret references, key files) is left for `load.ts`. Objects are strict, so a
 * typo such as `alowedTools` is an error rather than a silently ignored key.
 */
import { z } from 'zod';
import { isClientIdUrl } from '../identity/agent-input.js';
import { DEFAULTS, defaultPublicUrl, demoTools, MAX_CLOCK_SKEW_MS, MAX_TOKEN_TTL_MS } from './constants.js';
import { describeValue } from './describe.js';
import {
  cidrField,
  dateField,
  durationField,
  ENV_NAME,
  fail,
  field,
  httpUrlField,
  ok,
  type PathMessage,
  publicKeyField,
  publicUrlField,
  secretRef,
  sizeField,
  storeUrlField,
} from './fields.js';
import { APPROVAL_KEYS, approvalsSchema, notifiersSchema, operatorSchema } from './schema-approvals.js';
import { AUDIT_KEYS, auditSchema } from './schema-audit.js';
import { BREAKER_KEYS, breakersSchema } from './schema-breakers.js';
import { IDP_KEYS, identityProviderSchema } from './schema-idp.js';
import { INSPECTION_KEYS, inspectionSchema, taintSchema } from './schema-inspection.js';
import { limitsSchema } from './schema-limits.js';
import { MONITORING_KEYS, monitoringSchema } from './schema-monitoring.js';
import { OAUTH_KEYS, oauthSchema } from './schema-oauth.js';
import { pinningSchema } from './schema-pinning.js';
import { POLICY_KEYS, policySchema } from './schema-policy.js';
import { TOOL_KEYS, toolSchema } from './schema-tools.js';
import { TRACING_KEYS, tracingSchema } from './schema-tracing.js';

export type { HeaderSecretRef, PathMessage, PublicKeySource } from './fields.js';

/** Every key any object of the file may have: the vocabulary for "did you mean …?" hints. */
const knownKeys = new Set<string>();
export const KNOWN_KEYS: ReadonlySet<string> = knownKeys;
for (const k of [
  ...TOOL_KEYS,
  ...APPROVAL_KEYS,
  ...IDP_KEYS,
  ...OAUTH_KEYS,
  ...POLICY_KEYS,
  ...INSPECTION_KEYS,
  ...MONITORING_KEYS,
  ...BREAKER_KEYS,
  ...TRACING_KEYS,
  ...AUDIT_KEYS,
  'files',
  'rules',
  'timezone',
  'watch',
  'store',
  'redis',
  'onStoreDown',
  'rates',
  'budgets',
  'per',
  'tool',
  'points',
  'duration',
  'amount',
  'period',
  'id',
  'effect',
  'description',
  'scopes',
])
  knownKeys.add(k);

function strict<S extends z.core.$ZodLooseShape>(shape: S) {
  for (const k of Object.keys(shape)) knownKeys.add(k);
  return z.strictObject(shape);
}

const nonEmpty = z.string().min(1);
/** Scalars that YAML may type as numbers or booleans but the child process sees as strings. */
const stringish = z.union([z.string(), z.number(), z.boolean()]).transform(String);
const envName = z
  .string()
  .regex(ENV_NAME, { error: 'expected an environment variable name ([A-Za-z_][A-Za-z0-9_]*)' });

const serverSchema = strict({
  host: nonEmpty.default(DEFAULTS.host),
  port: z.number().int().min(0).max(65535).default(DEFAULTS.port),
  publicUrl: publicUrlField.optional(),
  bodyLimit: sizeField.default(DEFAULTS.bodyLimitBytes),
  headerLimit: sizeField.default(DEFAULTS.headerLimitBytes),
  maxJsonDepth: z.number().int().min(1).max(1000).default(DEFAULTS.maxJsonDepth),
  trustProxy: z.boolean().default(DEFAULTS.trustProxy),
  metrics: z.boolean().default(DEFAULTS.metrics),
  allowedHosts: z
    .array(
      z.string().regex(/^[A-Za-z0-9.-]+$/, {
        error: 'expected a host name without scheme or port, like mcp.example.com',
      }),
    )
    .default(() => []),
  allowedOrigins: z
    .array(
      z.string().refine((v) => URL.parse(v)?.origin === v.replace(/\/+$/, '').toLowerCase(), {
        error: 'expected an origin like https://app.example.com (scheme, host and optional port, no path)',
      }),
    )
    .default(() => []),
})
  .prefault({})
  .transform((s) => ({
    host: s.host,
    port: s.port,
    publicUrl: (s.publicUrl ?? defaultPublicUrl(s.host, s.port)).replace(/\/+$/, ''),
    bodyLimitBytes: s.bodyLimit,
    headerLimitBytes: s.headerLimit,
    maxJsonDepth: s.maxJsonDepth,
    trustProxy: s.trustProxy,
    metrics: s.metrics,
    ...(s.allowedHosts.length === 0 ? {} : { allowedHosts: s.allowedHosts.map((h) => h.toLowerCase()) }),
    ...(s.allowedOrigins.length === 0
      ? {}
      : { allowedOrigins: s.allowedOrigins.map((o) => o.replace(/\/+$/, '').toLowerCase()) }),
  }));

const tokensSchema = strict({
  ttl: durationField({
    min: 1000,
    max: MAX_TOKEN_TTL_MS,
    why: 'session tokens are short-lived by design',
  }).default(DEFAULTS.ttlMs),
  alg: z.enum(['EdDSA', 'ES256']).default(DEFAULTS.alg),
  rotateAfter: durationField({ min: 60_000 }).default(DEFAULTS.rotateAfterMs),
  maxToolCalls: z.number().int().min(1).default(DEFAULTS.maxToolCalls),
  clockSkew: durationField({
    min: 0,
    max: MAX_CLOCK_SKEW_MS,
    why: 'skew extends every token lifetime',
  }).default(DEFAULTS.clockSkewMs),
})
  .prefault({})
  .transform((t) => ({
    ttlMs: t.ttl,
    alg: t.alg,
    rotateAfterMs: t.rotateAfter,
    maxToolCalls: t.maxToolCalls,
    clockSkewMs: t.clockSkew,
  }));

const upstreamName = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, {
  error: 'expected 1–63 lowercase letters, digits or "-", not starting with "-"',
});
const timeouts = {
  timeout: durationField({ min: 1 }).default(DEFAULTS.upstreamTimeoutMs),
  connectTimeout: durationField({ min: 1 }).default(DEFAULTS.upstreamConnectTimeoutMs),
};

const stdioUpstreamSchema = strict({
  name: upstreamName,
  transport: z.literal('stdio'),
  command: nonEmpty,
  args: z.array(stringish).default(() => []),
  cwd: nonEmpty.optional(),
  env: z.record(envName, stringish).default(() => ({})),
  credentials: strict({
    env: z
      .record(
        envName,
        field('a secret reference', (v) => secretRef(v, false)),
      )
      .default(() => ({})),
  }).prefault({}),
  ...timeouts,
}).superRefine((u, ctx) => {
  for (const k of Object.keys(u.credentials.env)) {
    if (k in u.env) {
      ctx.addIssue({
        code: 'custom',
        path: ['env', k],
        message: `"${k}" is also set in credentials.env; a variable is either plain env or a secret, not both`,
      });
    }
  }
});

const headerName = z
  .string()
  .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, { error: 'expected an HTTP header name' });

/** Smallest `upstreams[].maxResultBytes`: below it even a tool list or an error would not fit. */
const MIN_RESULT_BYTES = 1024;

const httpUpstreamSchema = strict({
  name: upstreamName,
  transport: z.literal('http'),
  url: httpUrlField(false),
  credentials: strict({
    headers: z
      .record(
        headerName,
        field('a secret reference', (v) => secretRef(v, true)),
      )
      .default(() => ({})),
    oauth: strict({
      tokenUrl: httpUrlField(false),
      clientId: nonEmpty,
      clientSecret: field('a secret reference', (v) => secretRef(v, false)),
      scope: nonEmpty.optional(),
      resource: nonEmpty.optional(),
      audience: nonEmpty.optional(),
    }).optional(),
    userOAuth: strict({
      // Kept as written: discovery compares it exactly with the metadata's `issuer` (RFC 8414 §3.3).
      issuer: z.string().refine(
        (v) => {
          const u = URL.parse(v);
          return (
            u !== null &&
            (u.protocol === 'https:' || u.protocol === 'http:') &&
            u.username === '' &&
            u.password === ''
          );
        },
        { error: 'expected the authorization server issuer as an https:// URL (no credentials)' },
      ),
      clientId: nonEmpty,
      clientSecret: field('a secret reference', (v) => secretRef(v, false)).optional(),
      scopes: z.array(nonEmpty).default(() => []),
      resource: nonEmpty.optional(),
    }).optional(),
  })
    .refine(
      (c) =>
        (c.oauth === undefined && c.userOAuth === undefined) ||
        !Object.keys(c.headers).some((h) => h.toLowerCase() === 'authorization'),
      {
        error:
          'credentials.oauth / userOAuth set the Authorization header; do not set it under credentials.headers too',
      },
    )
    .refine((c) => c.oauth === undefined || c.userOAuth === undefined, {
      error:
        'use credentials.oauth (the gateway’s own token) or credentials.userOAuth (each user’s), not both',
    })
    .prefault({}),
  // Which of the agent's client features this upstream may use (server-to-client requests relayed
  // to the agent's MCP session). Off unless the operator turns them on: sampling spends the agent's
  // model on the upstream's prompt, elicitation asks its user, roots reveal its workspace.
  relay: strict({
    sampling: z.boolean().default(false),
    elicitation: z.boolean().default(false),
    roots: z.boolean().default(false),
  }).prefault({}),
  // Bounds what one response may make Warden read and buffer (issue #10).
  maxResultBytes: sizeField
    .refine((n) => n >= MIN_RESULT_BYTES, { error: 'expected at least 1kb' })
    .default(DEFAULTS.upstreamMaxResultBytes),
  ...timeouts,
}).refine(
  (u) => u.credentials.userOAuth === undefined || !(u.relay.sampling || u.relay.elicitation || u.relay.roots),
  {
    error:
      'relay is not available with credentials.userOAuth (one connection per user, not per agent session)',
    path: ['relay'],
  },
);

const upstreamSchema = z.discriminatedUnion('transport', [stdioUpstreamSchema, httpUpstreamSchema]);

const agentSchema = strict({
  id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, {
    error: 'expected 1–128 letters, digits, ".", "_" or "-", starting with a letter or digit',
  }),
  type: nonEmpty,
  version: field('a version string', (v) =>
    typeof v === 'string' && v !== ''
      ? ok(v)
      : fail(`expected a version string (quote numeric versions: "1.0"), got ${describeValue(v)}`),
  ),
  environment: nonEmpty,
  owner: nonEmpty,
  expiresAt: dateField,
  maxConcurrentSessions: z.number().int().min(1).max(10_000).default(DEFAULTS.maxConcurrentSessions),
  allowedTools: z.array(nonEmpty).default(() => []),
  deniedTools: z.array(nonEmpty).default(() => []),
  scopes: z
    .array(
      // `*` is one whole segment, never the first; `tool:` is reserved (src/identity/scopes.ts).
      z.string().regex(/^(?!tool:)[A-Za-z0-9_.-]+(:([A-Za-z0-9_.-]+|\*|\{user\}))+$/, {
        error:
          'expected a scope pattern like orders:read:user:* or orders:read:user:{user} (* and {user} are whole segments; not tool:…)',
      }),
    )
    .default(() => []),
  publicKey: publicKeyField.optional(),
  delegation: strict({
    clients: z
      .array(
        z.string().refine((c) => c === '*' || c === 'dynamic' || isClientIdUrl(c), {
          error: 'expected "dynamic", "*" or an https:// client ID metadata document URL',
        }),
      )
      .min(1),
    users: z
      .array(nonEmpty)
      .min(1)
      .default(() => ['*']),
  }).optional(),
  constraints: strict({
    maxToolCalls: z.number().int().min(1).optional(),
    allowedCidrs: z.array(cidrField).optional(),
  }).prefault({}),
});

/** The whole file. Absent sections take the embedded defaults, except upstreams and agents (empty). */
export const configFileSchema = strict({
  dataDir: nonEmpty.default(DEFAULTS.dataDir),
  server: serverSchema,
  store: strict({ url: storeUrlField.default(`sqlite:${DEFAULTS.sqliteFile}`) }).prefault({}),
  tokens: tokensSchema,
  upstreams: z.array(upstreamSchema).default(() => []),
  agents: z.array(agentSchema).default(() => []),
  tools: z.record(nonEmpty, toolSchema).default(demoTools),
  policy: policySchema,
  limits: limitsSchema,
  approvals: approvalsSchema,
  operators: z.array(operatorSchema).default(() => []),
  notifiers: notifiersSchema,
  identityProviders: z.array(identityProviderSchema).default(() => []),
  oauth: oauthSchema,
  inspection: inspectionSchema,
  taint: taintSchema,
  pinning: pinningSchema,
  monitoring: monitoringSchema,
  breakers: breakersSchema,
  tracing: tracingSchema,
  audit: auditSchema,
  log: strict({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default(DEFAULTS.logLevel),
  }).prefault({}),
});

/** The file after validation: units normalised, paths and references not yet resolved. */
export type ConfigFile = z.output<typeof configFileSchema>;

/** Checks zod cannot express per element: unique upstream names and agent ids. Runs on the raw value. */
export function uniquenessIssues(raw: unknown): PathMessage[] {
  if (typeof raw !== 'object' || raw === null) return [];
  const root = raw as Record<string, unknown>;
  const issues: PathMessage[] = [];
  /** Duplicate `key` values in the list at `path` (a section, or a section inside one). */
  const check = (path: string[], key: string, what: string) => {
    let list: unknown = root;
    for (const p of path)
      list = typeof list === 'object' && list !== null ? (list as Record<string, unknown>)[p] : undefined;
    if (!Array.isArray(list)) return;
    const first = new Map<unknown, number>();
    list.forEach((item: unknown, i) => {
      if (typeof item !== 'object' || item === null) return;
      const value = (item as Record<string, unknown>)[key];
      if (typeof value !== 'string') return;
      const seen = first.get(value);
      if (seen === undefined) first.set(value, i);
      else
        issues.push({
          path: [...path, i, key],
          message: `duplicate ${what} "${value}" (already used by ${path.join('.')}[${seen}])`,
        });
    });
  };
  check(['upstreams'], 'name', 'upstream name');
  check(['agents'], 'id', 'agent id');
  check(['operators'], 'id', 'operator id');
  check(['operators'], 'slackUserId', 'Slack user id');
  check(['identityProviders'], 'name', 'identity provider name');
  check(['identityProviders'], 'issuer', 'identity provider issuer');
  check(['notifiers', 'webhooks'], 'name', 'webhook name');
  return issues;
}
