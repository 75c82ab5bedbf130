/**
 * The embedded default: what `warden start` runs with no config file — SQLite
 * under `<cwd>/.warden`, the bundled support-desk demo upstream and the demo
 * agent (DESIGN.md "Interfaces").
 */
import { join } from 'node:path';
import { supportDeskCommand } from '../../examples/support-desk/command.js';
import { DEFAULTS, defaultPublicUrl, demoTools } from './constants.js';
import { defaultApprovalSections } from './schema-approvals.js';
import { defaultAudit } from './schema-audit.js';
import { defaultBreakers } from './schema-breakers.js';
import { inspectionSchema, taintSchema } from './schema-inspection.js';
import { defaultMonitoring } from './schema-monitoring.js';
import { DEFAULT_PINNING } from './schema-pinning.js';
import { DEFAULT_TRACING } from './schema-tracing.js';
import type { WardenConfig } from './types.js';

const DAY_MS = 86_400_000;
const DEMO_AGENT_LIFETIME_MS = 30 * DAY_MS;

/** The configuration used when no file is given; `now` dates the demo agent's expiry. */
export function embeddedDefault(opts: { cwd: string; now: number }): WardenConfig {
  const dataDir = join(opts.cwd, DEFAULTS.dataDir);
  const tools = demoTools();
  return {
    source: null,
    dataDir,
    server: {
      host: DEFAULTS.host,
      port: DEFAULTS.port,
      publicUrl: defaultPublicUrl(DEFAULTS.host, DEFAULTS.port),
      bodyLimitBytes: DEFAULTS.bodyLimitBytes,
      headerLimitBytes: DEFAULTS.headerLimitBytes,
      maxJsonDepth: DEFAULTS.maxJsonDepth,
      trustProxy: DEFAULTS.trustProxy,
      metrics: DEFAULTS.metrics,
    },
    store: { url: `sqlite:${join(dataDir, DEFAULTS.sqliteFile)}` },
    tokens: {
      ttlMs: DEFAULTS.ttlMs,
      alg: DEFAULTS.alg,
      rotateAfterMs: DEFAULTS.rotateAfterMs,
      maxToolCalls: DEFAULTS.maxToolCalls,
      clockSkewMs: DEFAULTS.clockSkewMs,
    },
    upstreams: [
      {
        name: 'support-desk',
        transport: 'stdio',
        ...supportDeskCommand(),
        env: {},
        credentials: { env: {} },
        timeoutMs: DEFAULTS.upstreamTimeoutMs,
        connectTimeoutMs: DEFAULTS.upstreamConnectTimeoutMs,
      },
    ],
    agents: [
      {
        id: 'demo-support',
        type: 'customer-support',
        version: '1.0.0',
        environment: 'development',
        owner: 'support-team',
        // 30 days, to the end of that UTC day: every command run on one day sees the same
        // identity, so the registry (and the audit log) see an update at most once a day.
        expiresAt: Math.ceil((opts.now + DEMO_AGENT_LIFETIME_MS) / DAY_MS) * DAY_MS,
        maxConcurrentSessions: DEFAULTS.maxConcurrentSessions,
        allowedTools: ['lookup_order', 'check_shipping_status', 'create_support_ticket', 'issue_refund'],
        deniedTools: ['bulk_message', 'delete_account'],
        // No publicJwk: `warden start` generates the demo agent's key pair.
        constraints: { maxToolCalls: DEFAULTS.maxToolCalls, allowedCidrs: ['127.0.0.0/8', '::1/128'] },
        // A local MCP client with OAuth (MCP Inspector, an IDE) logs a user in and acts as the demo
        // agent for them; only from this machine (allowedCidrs), only for users someone added.
        delegation: { clients: ['dynamic'], users: ['*'] },
      },
    ],
    tools,
    policy: { files: [], rules: [], timezone: 'UTC', watch: false },
    limits: { store: 'memory', onStoreDown: 'deny', rates: [], budgets: [] },
    ...defaultApprovalSections(),
    // The demo's human in the loop: `warden approvals list --as demo-approver`.
    operators: [{ id: 'demo-approver', name: 'Demo Approver', roles: ['approver'] }],
    identityProviders: [],
    oauth: {
      registration: true,
      clientMetadataDocuments: true,
      allowPrivateClientHosts: [],
      grantTtlMs: 30 * DAY_MS,
      refreshTokenTtlMs: 14 * DAY_MS,
      loginSessionTtlMs: 3_600_000,
    },
    inspection: inspectionSchema.parse({}),
    taint: taintSchema.parse({}),
    pinning: { ...DEFAULT_PINNING },
    monitoring: defaultMonitoring(),
    breakers: defaultBreakers(),
    tracing: { ...DEFAULT_TRACING },
    audit: defaultAudit(dataDir),
    log: { level: DEFAULTS.logLevel },
  };
}
