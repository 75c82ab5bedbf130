import { afterEach, describe, expect, it } from 'vitest';
import { toolDefaults } from '../config/constants.js';
import type { PolicyRuleConfig } from '../config/policy-types.js';
import { policySchema } from '../config/schema-policy.js';
import type { ToolConfig } from '../config/types.js';
import { policyToJson } from './cedar.js';
import { compileRule, ruleFacts } from './compile.js';
import { PolicyEngine } from './engine.js';
import type { AuthzInput } from './request.js';

const tools: Record<string, ToolConfig> = {
  lookup_order: { ...toolDefaults('low'), tags: ['read'] },
  create_support_ticket: { ...toolDefaults('medium'), tags: ['write'] },
  'odd"name\\tool': toolDefaults('low'),
};
const engines: PolicyEngine[] = [];
afterEach(() => {
  for (const e of engines.splice(0)) e.close();
});

/** An engine over `rules` (validated through the config schema first, as a config file would be). */
async function engineFor(rules: unknown[], timezone = 'UTC') {
  const policy = policySchema.parse({ rules, timezone });
  const engine = await PolicyEngine.create({ policy: { ...policy, files: [] }, tools });
  engines.push(engine);
  return engine;
}

const agent = {
  id: 'a1',
  type: 'customer-support',
  version: '1',
  environment: 'production',
  owner: 'o',
  allowedTools: ['lookup_order', 'create_support_ticket', 'odd"name\\tool'],
  deniedTools: [],
};
const noon = Date.UTC(2026, 0, 12, 12); // a Monday
function call(over: Partial<AuthzInput> = {}): AuthzInput {
  return {
    agent,
    tool: { name: 'lookup_order', upstream: 'u' },
    arguments: {},
    session: { id: 's1', calls: 0 },
    clientIp: '10.1.2.3',
    now: noon,
    ...over,
  };
}
const denied = (e: PolicyEngine, input: AuthzInput) => {
  const d = e.authorize(input);
  return d.allowed ? null : d.policyIds;
};

describe('the YAML shorthand compiled to Cedar', () => {
  it('writes readable Cedar with the rule as scope and conditions, and annotations for obligations', () => {
    const rule: PolicyRuleConfig = {
      id: 'big-refunds',
      effect: 'obligation',
      description: 'say "why"',
      tools: ['issue_refund'],
      when: { arguments: { amountCents: { gt: 10000 } } },
      obligations: { approval: 'required', risk: 'high', annotations: { notify: 'finance' } },
    };
    expect(compileRule(rule)).toBe(
      [
        '@description("say \\"why\\"")',
        '@obligation',
        '@approval("required")',
        '@risk("high")',
        '@notify("finance")',
        'permit (principal, action == Warden::Action::"call", resource == Warden::Tool::"issue_refund")',
        'when {',
        '  (context.arguments has amountCents && context.arguments.amountCents > 10000)',
        '};',
      ].join('\n'),
    );
  });

  it('knows the facts of what it compiled: they match Cedar reading the text back', () => {
    const rules: PolicyRuleConfig[] = [
      { id: 'a', effect: 'forbid', agents: ['bot-1'], tools: ['x', 'y'] },
      { id: 'b', effect: 'permit', agents: ['bot-1'], agentTypes: ['t'] },
      { id: 'c', effect: 'permit', agents: ['bot-1', 'bot-2'], description: 'two "bots"' },
      {
        id: 'd',
        effect: 'obligation',
        agentTypes: ['t'],
        obligations: { approval: 'finance', risk: 'critical', annotations: { ticket: 'T-1', note: '' } },
      },
    ];
    for (const r of rules) {
      const parsed = policyToJson(compileRule(r));
      if (parsed.type !== 'success') throw new Error(JSON.stringify(parsed));
      const j = parsed.json;
      const facts = ruleFacts(r);
      const annotations = Object.fromEntries(
        Object.entries((j.annotations ?? {}) as Record<string, string | null>).map(([k, v]) => [k, v ?? '']),
      );
      expect(facts.annotations, r.id).toEqual(annotations);
      expect(facts.effect, r.id).toBe(j.effect);
      const pinned = j.principal.op === '==' && 'entity' in j.principal ? j.principal.entity : undefined;
      expect(facts.agent, r.id).toBe(pinned && 'id' in pinned ? pinned.id : undefined);
    }
  });

  it('quotes every name from config, so a quote in a name cannot change a policy', async () => {
    const e = await engineFor([
      {
        id: 'odd',
        effect: 'forbid',
        tools: ['odd"name\\tool'],
        when: { arguments: { 'has space': { eq: 'x"y' } } },
      },
    ]);
    const tool = { name: 'odd"name\\tool', upstream: 'u' };
    expect(denied(e, call({ tool, arguments: { 'has space': 'x"y' } }))).toEqual(['odd']);
    expect(denied(e, call({ tool, arguments: { 'has space': 'x' } }))).toBeNull();
  });

  it('time: within a window that wraps midnight, and on given days', async () => {
    const e = await engineFor([
      { id: 'night', effect: 'forbid', toolTags: ['write'], when: { time: { within: '22:00-06:00' } } },
      { id: 'weekend', effect: 'forbid', tools: ['lookup_order'], when: { time: { days: ['Sat', 'Sun'] } } },
    ]);
    const write = { name: 'create_support_ticket', upstream: 'u' };
    const at = (h: number, m = 0, day = 12) => Date.UTC(2026, 0, day, h, m);
    expect(denied(e, call({ tool: write, now: at(21, 59) }))).toBeNull();
    expect(denied(e, call({ tool: write, now: at(22, 0) }))).toEqual(['night']);
    expect(denied(e, call({ tool: write, now: at(0, 0) }))).toEqual(['night']);
    expect(denied(e, call({ tool: write, now: at(5, 59) }))).toEqual(['night']);
    expect(denied(e, call({ tool: write, now: at(6, 0) }))).toBeNull();
    expect(denied(e, call({ now: at(12, 0, 17) }))).toEqual(['weekend']); // Saturday
    expect(denied(e, call({ now: at(12, 0, 16) }))).toBeNull(); // Friday
  });

  it('a window ending at 24:00 covers the last minute of the day', async () => {
    const e = await engineFor([
      { id: 'evening', effect: 'forbid', when: { time: { within: '18:00-24:00' } } },
    ]);
    expect(denied(e, call({ now: Date.UTC(2026, 0, 12, 23, 59) }))).toEqual(['evening']);
    expect(denied(e, call({ now: Date.UTC(2026, 0, 13, 0, 0) }))).toBeNull();
  });

  it('arguments: eq, ne, in, notIn, like and booleans; an absent argument satisfies nothing', async () => {
    const e = await engineFor([
      { id: 'eq', effect: 'forbid', when: { arguments: { region: { eq: 'eu' } } } },
      { id: 'in', effect: 'forbid', when: { arguments: { status: { in: ['closed', 'void'] } } } },
      { id: 'notIn', effect: 'forbid', when: { arguments: { channel: { notIn: ['email', 'chat'] } } } },
      { id: 'like', effect: 'forbid', when: { arguments: { orderId: { like: 'TEST-*' } } } },
      {
        id: 'bool',
        effect: 'forbid',
        when: { arguments: { dryRun: { eq: false }, limit: { gte: 100, lte: 200 } } },
      },
    ]);
    const args = (a: Record<string, unknown>) => denied(e, call({ arguments: a }));
    expect(args({})).toBeNull();
    expect(args({ region: 'eu' })).toEqual(['eq']);
    expect(args({ region: 'us' })).toBeNull();
    expect(args({ status: 'void' })).toEqual(['in']);
    expect(args({ channel: 'sms' })).toEqual(['notIn']);
    expect(args({ channel: 'chat' })).toBeNull();
    expect(args({ orderId: 'TEST-123' })).toEqual(['like']);
    expect(args({ orderId: 'ORD-123' })).toBeNull();
    expect(args({ dryRun: false, limit: 100 })).toEqual(['bool']);
    expect(args({ dryRun: false, limit: 201 })).toBeNull();
    expect(args({ dryRun: true, limit: 150 })).toBeNull();
  });

  it('clientIp: an unknown address is in no range, so a notIn forbid still applies', async () => {
    const e = await engineFor([
      {
        id: 'office-only',
        effect: 'forbid',
        toolTags: ['write'],
        when: { clientIp: { notIn: ['10.0.0.0/8'] } },
      },
      {
        id: 'no-lab',
        effect: 'forbid',
        tools: ['lookup_order'],
        when: { clientIp: { in: ['192.168.0.0/16'] } },
      },
    ]);
    const write = { name: 'create_support_ticket', upstream: 'u' };
    expect(denied(e, call({ tool: write, clientIp: '10.9.9.9' }))).toBeNull();
    expect(denied(e, call({ tool: write, clientIp: '::ffff:10.9.9.9' }))).toBeNull();
    expect(denied(e, call({ tool: write, clientIp: '203.0.113.7' }))).toEqual(['office-only']);
    expect(denied(e, call({ tool: write, clientIp: '' }))).toEqual(['office-only']);
    expect(denied(e, call({ tool: write, clientIp: 'garbage' }))).toEqual(['office-only']);
    expect(denied(e, call({ clientIp: '192.168.1.1' }))).toEqual(['no-lab']);
    expect(denied(e, call({ clientIp: '' }))).toBeNull();
  });

  it('session: calls so far and tools already used in the session', async () => {
    const e = await engineFor([
      { id: 'budget', effect: 'forbid', when: { session: { calls: { gte: 10 } } } },
      {
        id: 'no-write-after-read',
        effect: 'forbid',
        toolTags: ['write'],
        when: { session: { toolsUsed: ['lookup_order'] } },
      },
    ]);
    expect(denied(e, call({ session: { id: 's9', calls: 9 } }))).toBeNull();
    expect(denied(e, call({ session: { id: 's9', calls: 10 } }))).toEqual(['budget']);
    const write = call({
      tool: { name: 'create_support_ticket', upstream: 'u' },
      session: { id: 's2', calls: 0 },
    });
    expect(denied(e, write)).toBeNull();
    e.noteUse('s2', 'lookup_order');
    expect(denied(e, write)).toEqual(['no-write-after-read']);
    // Another session is unaffected.
    expect(denied(e, { ...write, session: { id: 's3', calls: 0 } })).toBeNull();
  });

  it('selectors: several agents, several types, environments and risk classes', async () => {
    const e = await engineFor([
      {
        id: 'agents',
        effect: 'forbid',
        agents: ['a1', 'a2'],
        tools: ['lookup_order'],
        environments: ['staging'],
      },
      { id: 'types', effect: 'forbid', agentTypes: ['x', 'customer-support'], risk: ['medium'] },
    ]);
    expect(denied(e, call())).toBeNull(); // a1 but production
    expect(denied(e, call({ agent: { ...agent, environment: 'staging' } }))).toEqual(['agents']);
    expect(denied(e, call({ agent: { ...agent, id: 'a3', environment: 'staging' } }))).toBeNull();
    expect(denied(e, call({ tool: { name: 'create_support_ticket', upstream: 'u' } }))).toEqual(['types']);
    expect(
      denied(
        e,
        call({ agent: { ...agent, type: 'other' }, tool: { name: 'create_support_ticket', upstream: 'u' } }),
      ),
    ).toBeNull();
  });

  it('a user tier rule needs a user with that tier', async () => {
    const e = await engineFor([
      { id: 'gold-only', effect: 'forbid', when: { user: { tier: ['free', 'trial'] } } },
    ]);
    expect(denied(e, call())).toBeNull();
    expect(denied(e, call({ user: { id: 'u1' } }))).toBeNull();
    expect(denied(e, call({ user: { id: 'u1', tier: 'trial' } }))).toEqual(['gold-only']);
    expect(denied(e, call({ user: { id: 'u1', tier: 'gold' } }))).toBeNull();
  });
});
