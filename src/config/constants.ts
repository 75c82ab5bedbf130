/**
 * Default values shared by the embedded default (`defaults.ts`) and by absent
 * keys of a config file (`schema.ts`), so the two can never drift apart.
 */
import type { ToolCapability } from './schema-inspection.js';
import type { RiskClass, ToolConfig } from './types.js';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

/** Session tokens never live longer than this, whatever the file says (DESIGN.md "Identity and credentials"). */
export const MAX_TOKEN_TTL_MS = 15 * MINUTE;
/** Skew widens every token's validity window, so it is capped well below the token lifetime. */
export const MAX_CLOCK_SKEW_MS = 5 * MINUTE;

export const DEFAULTS = {
  dataDir: '.warden',
  sqliteFile: 'warden.db',
  host: '127.0.0.1',
  port: 8787,
  bodyLimitBytes: 1024 * 1024,
  // Node's default is 16 KiB; a token of an agent allowed hundreds of tools is larger (one scope per tool).
  headerLimitBytes: 64 * 1024,
  maxJsonDepth: 32,
  trustProxy: false,
  metrics: true,
  ttlMs: 15 * MINUTE,
  alg: 'EdDSA',
  rotateAfterMs: 24 * HOUR,
  maxToolCalls: 50,
  clockSkewMs: 30 * SECOND,
  upstreamTimeoutMs: 30 * SECOND,
  upstreamConnectTimeoutMs: 10 * SECOND,
  /** Bytes of one HTTP upstream response read at most (`upstreams[].maxResultBytes`). */
  upstreamMaxResultBytes: 16 * 1024 * 1024,
  maxConcurrentSessions: 5,
  logLevel: 'info',
} as const;

/** Risk classes of the bundled support-desk demo tools. */
export const DEMO_TOOL_RISKS: Readonly<Record<string, RiskClass>> = {
  issue_refund: 'high',
  bulk_message: 'critical',
  delete_account: 'critical',
  create_support_ticket: 'medium',
  lookup_order: 'low',
  check_shipping_status: 'low',
};

/** `publicUrl` when the file sets none: the listen address, with wildcard hosts mapped to loopback. */
export function defaultPublicUrl(host: string, port: number): string {
  const h = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${h.includes(':') ? `[${h}]` : h}:${port}`;
}

/** A tool's settings with only its risk class given. */
export function toolDefaults(risk: RiskClass): ToolConfig {
  return { risk, tags: [], cost: 0, arguments: {}, forbiddenKeys: [], resourceScopes: [] };
}

/**
 * What the demo tools do with data (issue #7): order notes are written by
 * customers (untrusted) and orders carry their contact data (private).
 */
export const DEMO_TOOL_CAPABILITIES: Readonly<Record<string, ToolCapability[]>> = {
  lookup_order: ['private-data', 'untrusted-content'],
  issue_refund: ['moves-money'],
  bulk_message: ['external-communication'],
  delete_account: ['changes-access'],
};

/** The embedded default's settings for the demo tools. */
export function demoTools(): Record<string, ToolConfig> {
  return Object.fromEntries(
    Object.entries(DEMO_TOOL_RISKS).map(([name, risk]) => {
      const capabilities = DEMO_TOOL_CAPABILITIES[name];
      return [name, { ...toolDefaults(risk), ...(capabilities ? { capabilities: [...capabilities] } : {}) }];
    }),
  );
}

/** No extra policies. */
export const DEFAULT_POLICY = { files: [], rules: [], timezone: 'UTC', watch: false } as const;
