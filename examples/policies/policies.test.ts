/**
 * Decision tables for the example policies (warden.yaml + the .cedar files
 * beside it), loaded exactly as `warden start --config` loads them. Each row is
 * one call; the edges are the point: the window boundary at 22:00 and 06:00,
 * a refund of exactly $100 against one cent more, a deny list against a type rule.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import type { AgentConfig, RiskClass, WardenConfig } from '../../src/config/types.js';
import { isWardenError } from '../../src/errors.js';
import { type AuthzInput, effectiveRisk, PolicyEngine } from '../../src/policy/index.js';

const here = dirname(fileURLToPath(import.meta.url));

let config: WardenConfig;
let engine: PolicyEngine;
beforeAll(async () => {
  config = (await loadConfig(join(here, 'warden.yaml'))).config;
  engine = await PolicyEngine.create({
    policy: config.policy,
    tools: config.tools,
    knownTools: () => ({ names: new Set(Object.keys(config.tools)), complete: true }),
  });
});
afterAll(() => engine?.close());

/** Europe/Paris is UTC+1 in January and UTC+2 in July. */
const winter = (hhmm: string) => Date.parse(`2026-01-12T${hhmm}:00+01:00`); // a Monday
const summer = (hhmm: string) => Date.parse(`2026-07-13T${hhmm}:00+02:00`);

interface Row {
  name: string;
  agent: string;
  tool: string;
  args?: Record<string, unknown>;
  at?: number;
  user?: { id: string; tier?: string };
  /** `allow` with the determining policies, or `deny` with them ([] = nothing permitted). */
  expect: { allow: string[]; risk: RiskClass; approval?: boolean } | { deny: string[] };
}

function decide(row: Row) {
  const a = config.agents.find((x) => x.id === row.agent) as AgentConfig;
  const input: AuthzInput = {
    agent: a,
    tool: { name: row.tool, upstream: 'support-desk' },
    arguments: row.args ?? {},
    session: { id: `s-${row.agent}`, calls: 0 },
    clientIp: '127.0.0.1',
    now: row.at ?? winter('12:00'),
    ...(row.user ? { user: row.user } : {}),
  };
  return engine.authorize(input);
}

const table: Row[] = [
  // After hours, read-only (06:00-22:00 Europe/Paris; start inclusive, end exclusive).
  {
    name: 'a write at 21:59 runs',
    agent: 'support-bot-prod',
    tool: 'create_support_ticket',
    at: winter('21:59'),
    expect: { allow: ['agent.allowedTools'], risk: 'medium' },
  },
  {
    name: 'a write at exactly 22:00 is after hours',
    agent: 'support-bot-prod',
    tool: 'create_support_ticket',
    at: winter('22:00'),
    expect: { deny: ['after-hours-read-only'] },
  },
  {
    name: 'a write at 05:59 is after hours',
    agent: 'support-bot-prod',
    tool: 'create_support_ticket',
    at: winter('05:59'),
    expect: { deny: ['after-hours-read-only'] },
  },
  {
    name: 'a write at exactly 06:00 runs',
    agent: 'support-bot-prod',
    tool: 'create_support_ticket',
    at: winter('06:00'),
    expect: { allow: ['agent.allowedTools'], risk: 'medium' },
  },
  {
    name: 'summer time moves the boundary with the zone (22:00 CEST)',
    agent: 'support-bot-prod',
    tool: 'create_support_ticket',
    at: summer('22:00'),
    expect: { deny: ['after-hours-read-only'] },
  },
  {
    name: 'summer 21:59 CEST runs',
    agent: 'support-bot-prod',
    tool: 'create_support_ticket',
    at: summer('21:59'),
    expect: { allow: ['agent.allowedTools'], risk: 'medium' },
  },
  {
    name: 'a read at 23:30 runs',
    agent: 'support-bot-prod',
    tool: 'lookup_order',
    at: winter('23:30'),
    expect: { allow: ['agent.allowedTools', 'support-may-read'], risk: 'low' },
  },
  {
    name: 'a refund (tagged write) at 23:00 is after hours',
    agent: 'support-bot-prod',
    tool: 'issue_refund',
    args: { amountCents: 500 },
    at: winter('23:00'),
    expect: { deny: ['after-hours-read-only'] },
  },

  // A refund over $100 needs an approval; over $1,000 it never runs automatically.
  {
    name: 'a refund of exactly $100.00 runs at its own risk (medium)',
    agent: 'support-bot-prod',
    tool: 'issue_refund',
    args: { amountCents: 10000 },
    expect: { allow: ['agent.allowedTools'], risk: 'medium' },
  },
  {
    name: 'a refund of $100.01 needs approval',
    agent: 'support-bot-prod',
    tool: 'issue_refund',
    args: { amountCents: 10001 },
    expect: { allow: ['agent.allowedTools', 'refund-over-100-needs-approval'], risk: 'high', approval: true },
  },
  {
    name: 'a refund of exactly $1,000.00 is high, not critical',
    agent: 'support-bot-prod',
    tool: 'issue_refund',
    args: { amountCents: 100000 },
    expect: { allow: ['agent.allowedTools', 'refund-over-100-needs-approval'], risk: 'high', approval: true },
  },
  {
    name: 'a refund of $1,000.01 is critical',
    agent: 'support-bot-prod',
    tool: 'issue_refund',
    args: { amountCents: 100001 },
    expect: {
      allow: ['agent.allowedTools', 'refund-over-100-needs-approval', 'refund-over-1000-critical'],
      risk: 'critical',
      approval: true,
    },
  },
  {
    name: 'an obligation never grants: the trial bot may not refund, however large',
    agent: 'support-bot-trial',
    tool: 'issue_refund',
    args: { amountCents: 200000 },
    expect: { deny: [] },
  },

  // Per-type allow, and the agent's own deny list winning over it.
  {
    name: 'the trial bot reads orders through its type',
    agent: 'support-bot-trial',
    tool: 'lookup_order',
    expect: { allow: ['support-may-read'], risk: 'low' },
  },
  {
    name: "the trial bot's deny list wins over the type's allow",
    agent: 'support-bot-trial',
    tool: 'check_shipping_status',
    expect: { deny: ['agent.deniedTools'] },
  },
  {
    name: 'the type rule grants nothing else',
    agent: 'support-bot-trial',
    tool: 'create_support_ticket',
    expect: { deny: [] },
  },
  {
    name: "a type forbid wins over the agent's own allow list",
    agent: 'analyst-1',
    tool: 'create_support_ticket',
    expect: { deny: ['analysts-read-only'] },
  },
  {
    name: 'the analyst still reads',
    agent: 'analyst-1',
    tool: 'lookup_order',
    expect: { allow: ['agent.allowedTools'], risk: 'low' },
  },
  {
    name: 'a denied tool stays denied',
    agent: 'support-bot-prod',
    tool: 'bulk_message',
    expect: { deny: ['agent.deniedTools'] },
  },

  // User tier (context.user): free-tier customers get no refunds.
  {
    name: 'no refund for a free-tier user',
    agent: 'support-bot-prod',
    tool: 'issue_refund',
    args: { amountCents: 500 },
    user: { id: 'usr_1', tier: 'free' },
    expect: { deny: ['free-tier-no-refunds'] },
  },
  {
    name: 'a refund for a gold-tier user',
    agent: 'support-bot-prod',
    tool: 'issue_refund',
    args: { amountCents: 500 },
    user: { id: 'usr_2', tier: 'gold' },
    expect: { allow: ['agent.allowedTools'], risk: 'medium' },
  },
  {
    name: 'a user without a tier is not free tier',
    agent: 'support-bot-prod',
    tool: 'issue_refund',
    args: { amountCents: 500 },
    user: { id: 'usr_3' },
    expect: { allow: ['agent.allowedTools'], risk: 'medium' },
  },
  {
    name: 'a call for no user is unaffected',
    agent: 'support-bot-prod',
    tool: 'issue_refund',
    args: { amountCents: 500 },
    expect: { allow: ['agent.allowedTools'], risk: 'medium' },
  },
];

describe('example policies', () => {
  it.each(table)('$name', (row) => {
    const d = decide(row);
    if ('deny' in row.expect) {
      expect(d.allowed).toBe(false);
      expect(d.policyIds).toEqual(row.expect.deny);
      return;
    }
    expect(d.allowed, JSON.stringify(d)).toBe(true);
    if (!d.allowed) return;
    expect(d.policyIds).toEqual(row.expect.allow);
    const risk = effectiveRisk(config.tools[row.tool]!.risk, d.obligations);
    expect(risk).toBe(row.expect.risk);
    expect(d.obligations.approval === 'required').toBe(row.expect.approval === true);
  });

  it('refuses a refund amount sent as a string instead of comparing it', () => {
    const row: Row = {
      name: 'type confusion',
      agent: 'support-bot-prod',
      tool: 'issue_refund',
      args: { amountCents: '20000' },
      expect: { deny: [] },
    };
    expect(() => decide(row)).toThrow(/must be an integer/);
    try {
      decide(row);
    } catch (e) {
      expect(isWardenError(e, 'INVALID_ARGUMENTS')).toBe(true);
    }
  });
});
