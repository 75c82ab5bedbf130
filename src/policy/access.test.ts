import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EntityUidJson } from '@cedar-policy/cedar-wasm/nodejs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { toolDefaults } from '../config/constants.js';
import { loadConfig } from '../config/load.js';
import type { PolicyConfig, PolicyRuleConfig } from '../config/policy-types.js';
import { policyToJson } from './cedar.js';
import { compileRule, ruleFacts } from './compile.js';
import { type AuthzDecision, PolicyEngine } from './engine.js';
import type { AccessInput, AuthzInput } from './request.js';
import type { TaintSettings } from './taint.js';
import { parsePolicyTests, runPolicyTests } from './test-file.js';

const dir = mkdtempSync(join(tmpdir(), 'warden-access-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const engines: PolicyEngine[] = [];
afterEach(() => {
  for (const e of engines.splice(0)) e.close();
});

const tools = {
  lookup_order: toolDefaults('low'),
  issue_refund: toolDefaults('high'),
  send_email: {
    ...toolDefaults('medium'),
    tags: ['write'],
    capabilities: ['external-communication' as const],
  },
};
const agent: AuthzInput['agent'] = {
  id: 'a1',
  type: 'customer-support',
  version: '1',
  environment: 'production',
  owner: 'o',
  allowedTools: ['lookup_order', 'issue_refund', 'send_email'],
  deniedTools: [],
};
/** Monday 12 January 2026, 12:00 UTC. */
const NOON = Date.UTC(2026, 0, 12, 12);
const read = (uri: string, over: Partial<AccessInput> = {}): AccessInput => ({
  agent,
  kind: 'resource',
  name: uri,
  upstream: 'kb',
  session: { id: 's1', calls: 0 },
  clientIp: '127.0.0.1',
  now: NOON,
  ...over,
});
const prompt = (name: string, over: Partial<AccessInput> = {}): AccessInput =>
  read(name, { kind: 'prompt', ...over });

/** The issue's example. */
const EXAMPLE: PolicyRuleConfig[] = [
  {
    id: 'support-reads-kb',
    effect: 'permit',
    agentTypes: ['customer-support'],
    resources: ['kb://articles/*'],
    prompts: ['summarize_*'],
  },
  { id: 'no-secrets', effect: 'forbid', resources: ['kb://articles/internal/*'] },
];

async function engineWith(
  rules: PolicyRuleConfig[],
  files: Record<string, string> = {},
  taint?: TaintSettings,
): Promise<PolicyEngine> {
  const paths = Object.entries(files).map(([name, text]) => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  });
  const policy: PolicyConfig = { files: paths, rules, arguments: {}, timezone: 'UTC', watch: false };
  const engine = await PolicyEngine.create({ policy, tools, ...(taint ? { taint } : {}) });
  engines.push(engine);
  return engine;
}

const verdict = (d: AuthzDecision) =>
  d.allowed ? `allow ${d.policyIds.join(',')}` : `${d.reason} ${d.policyIds.join(',')}`;

describe('resources and prompts (issue #10)', () => {
  it('permits by pattern, denies by default, and lets a forbid win', async () => {
    const engine = await engineWith(EXAMPLE);
    expect(engine.authorizeAccess(read('kb://articles/returns'))).toEqual({
      allowed: true,
      policyIds: ['support-reads-kb'],
      obligations: {},
      errors: [],
    });
    // `*` spans slashes.
    expect(verdict(engine.authorizeAccess(read('kb://articles/2026/01/x')))).toBe('allow support-reads-kb');
    expect(engine.authorizeAccess(read('kb://articles/internal/salaries'))).toEqual({
      allowed: false,
      reason: 'forbid',
      policyIds: ['no-secrets'],
      errors: [],
    });
    // Default deny: another URI, a URI that only starts like the pattern, another agent type.
    expect(verdict(engine.authorizeAccess(read('kb://faq/returns')))).toBe('not-permitted ');
    expect(verdict(engine.authorizeAccess(read('kb://articles')))).toBe('not-permitted ');
    const analyst = { ...agent, id: 'a2', type: 'data-analyst' };
    expect(verdict(engine.authorizeAccess(read('kb://articles/returns', { agent: analyst })))).toBe(
      'not-permitted ',
    );

    // Prompts: by name; the same rule id names the decision.
    expect(verdict(engine.authorizeAccess(prompt('summarize_ticket')))).toBe('allow support-reads-kb');
    expect(verdict(engine.authorizeAccess(prompt('translate')))).toBe('not-permitted ');
    // A resource pattern does not match a prompt of that name, nor the other way round.
    expect(verdict(engine.authorizeAccess(prompt('kb://articles/returns')))).toBe('not-permitted ');
    expect(verdict(engine.authorizeAccess(read('summarize_ticket')))).toBe('not-permitted ');
    // The allow list grants tools, never resources.
    expect(verdict(engine.authorizeAccess(read('lookup_order')))).toBe('not-permitted ');
  });

  it('compiles one policy per rule, scoped to the new actions only', () => {
    const [both, forbid] = EXAMPLE.map(compileRule);
    expect(both).toBe(
      [
        'permit (principal in Warden::AgentType::"customer-support", action in [Warden::Action::"read_resource", Warden::Action::"get_prompt"], resource)',
        'when {',
        '  ((resource is Warden::Resource && resource.uri like "kb://articles/*") || (resource is Warden::Prompt && resource.name like "summarize_*"))',
        '};',
      ].join('\n'),
    );
    expect(forbid).toBe(
      [
        'forbid (principal, action == Warden::Action::"read_resource", resource is Warden::Resource)',
        'when {',
        '  resource.uri like "kb://articles/internal/*"',
        '};',
      ].join('\n'),
    );
    expect(compileRule({ id: 'p', effect: 'permit', prompts: ['a', 'b"c'] })).toBe(
      'permit (principal, action == Warden::Action::"get_prompt", resource is Warden::Prompt)\nwhen {\n  (resource.name like "a" || resource.name like "b\\"c")\n};',
    );
  });

  it('states the facts of a compiled rule as Cedar parses it (actions, pinned agent)', () => {
    const rules: PolicyRuleConfig[] = [
      ...EXAMPLE,
      { id: 'one-agent', effect: 'permit', agents: ['a1'], prompts: ['p*'] },
      { id: 'tools', effect: 'permit', tools: ['lookup_order'] },
    ];
    for (const r of rules) {
      const parsed = policyToJson(compileRule(r));
      if (parsed.type !== 'success') throw new Error(JSON.stringify(parsed));
      const a = parsed.json.action;
      const idOf = (e: EntityUidJson) => ('__entity' in e ? e.__entity.id : e.id);
      const ids = 'entities' in a ? a.entities.map(idOf) : 'entity' in a ? [idOf(a.entity)] : [];
      expect(ruleFacts(r).actions, r.id).toEqual(ids);
      const p = parsed.json.principal;
      expect(ruleFacts(r).agent, r.id).toBe(p.op === '==' && 'entity' in p ? idOf(p.entity) : undefined);
    }
    expect(ruleFacts(EXAMPLE[0]!).reads).toEqual(expect.arrayContaining(['uri', 'name']));
  });

  it('matches `\\*` as a literal star, and everything else as itself', async () => {
    const engine = await engineWith([
      { id: 'star', effect: 'permit', resources: ['file:///a\\*b/*'] },
      { id: 'exact', effect: 'permit', resources: ['mem://x?y=1&z="2"\\n'] },
    ]);
    expect(engine.authorizeAccess(read('file:///a*b/c')).allowed).toBe(true);
    expect(engine.authorizeAccess(read('file:///aXb/c')).allowed).toBe(false);
    expect(engine.authorizeAccess(read('mem://x?y=1&z="2"\\n')).allowed).toBe(true);
    expect(engine.authorizeAccess(read('mem://x?y=1&z="2"\n')).allowed).toBe(false);
  });

  it('applies agents, agentTypes, environments, time, taint, user, session and clientIp conditions', async () => {
    const engine = await engineWith([
      {
        id: 'office-hours',
        effect: 'permit',
        agentTypes: ['customer-support'],
        environments: ['production'],
        resources: ['crm://*'],
        when: { time: { within: '08:00-18:00', days: ['Mon', 'Tue', 'Wed', 'Thu', 'Fri'] } },
      },
      {
        id: 'tainted-no-crm',
        effect: 'forbid',
        resources: ['crm://*'],
        when: { taint: { untrusted: true } },
      },
      {
        id: 'gold-prompts',
        effect: 'permit',
        agents: ['a1'],
        prompts: ['vip_*'],
        when: { user: { tier: ['gold'] }, session: { calls: { lt: 5 } }, clientIp: { in: ['10.0.0.0/8'] } },
      },
    ]);
    const crm = (over: Partial<AccessInput> = {}) => verdict(engine.authorizeAccess(read('crm://c/1', over)));
    expect(crm()).toBe('allow office-hours');
    expect(crm({ now: Date.UTC(2026, 0, 12, 18) })).toBe('not-permitted ');
    expect(crm({ now: Date.UTC(2026, 0, 10, 12) })).toBe('not-permitted '); // a Saturday
    expect(crm({ agent: { ...agent, environment: 'staging' } })).toBe('not-permitted ');
    expect(crm({ taint: { untrusted: true, privateData: false } })).toBe('forbid tainted-no-crm');
    expect(crm({ taint: { untrusted: false, privateData: true } })).toBe('allow office-hours');

    const vip = (over: Partial<AccessInput> = {}) =>
      verdict(
        engine.authorizeAccess(
          prompt('vip_greeting', { user: { id: 'u', tier: 'gold' }, clientIp: '10.1.2.3', ...over }),
        ),
      );
    expect(vip()).toBe('allow gold-prompts');
    expect(vip({ user: { id: 'u', tier: 'free' } })).toBe('not-permitted ');
    const { user: _none, ...noUser } = prompt('vip_greeting', { clientIp: '10.1.2.3' });
    expect(verdict(engine.authorizeAccess(noUser))).toBe('not-permitted ');
    expect(vip({ session: { id: 's1', calls: 5 } })).toBe('not-permitted ');
    expect(vip({ clientIp: '192.168.0.1' })).toBe('not-permitted ');
    expect(vip({ agent: { ...agent, id: 'a9' } })).toBe('not-permitted '); // per-agent slice
  });

  it('keeps rules without a resources/prompts selector, and the built-ins, about tool calls', async () => {
    const engine = await engineWith(
      [
        { id: 'permit-all', effect: 'permit' },
        { id: 'after-hours', effect: 'forbid', when: { time: { outside: '06:00-22:00' } } },
        { id: 'kb', effect: 'permit', resources: ['kb://*'] },
      ],
      {},
      { untrusted: 'deny', privateData: 'approval' },
    );
    // A permit with no selector grants tool calls only…
    expect(verdict(engine.authorizeAccess(read('crm://x')))).toBe('not-permitted ');
    // …and a forbid with no selector forbids tool calls only.
    const night = Date.UTC(2026, 0, 12, 23);
    expect(verdict(engine.authorizeAccess(read('kb://x', { now: night })))).toBe('allow kb');
    expect(engine.authorize({ ...callInput, now: night }).allowed).toBe(false);
    expect(
      engine.authorizeAccess(read('kb://x', { taint: { untrusted: true, privateData: true } })).allowed,
    ).toBe(true);
  });

  it('accepts hand-written Cedar on the new actions, with obligations and fail-closed forbids', async () => {
    const engine = await engineWith([], {
      'resources.cedar': [
        '@id("warehouse-reports") @risk("high") @notify("data")',
        'permit (principal in Warden::AgentType::"customer-support", action == Warden::Action::"read_resource", resource is Warden::Resource)',
        'when { resource.uri like "reports://*" && resource.upstream == "warehouse" };',
        '@id("prompt-by-id") permit (principal, action == Warden::Action::"get_prompt", resource == Warden::Prompt::"hello");',
        '@id("overflow") forbid (principal, action == Warden::Action::"read_resource", resource) when { context.session.calls * 4611686018427387904 > 0 };',
        // Names no action and reads only what every action has: it applies to all of them.
        '@id("nobody-at-3") forbid (principal, action, resource) when { context.time.hour == 3 };',
      ].join('\n'),
    });
    expect(engine.authorizeAccess(read('reports://q1', { upstream: 'warehouse' }))).toEqual({
      allowed: true,
      policyIds: ['warehouse-reports'],
      obligations: { risk: 'high', notify: 'data' },
      errors: [],
    });
    expect(verdict(engine.authorizeAccess(read('reports://q1', { upstream: 'other' })))).toBe(
      'not-permitted ',
    );
    expect(verdict(engine.authorizeAccess(prompt('hello')))).toBe('allow prompt-by-id');
    expect(verdict(engine.authorizeAccess(prompt('hello2')))).toBe('not-permitted ');
    const d = engine.authorizeAccess(
      read('reports://q1', { upstream: 'warehouse', session: { id: 's', calls: 3 } }),
    );
    expect(d).toMatchObject({ allowed: false, reason: 'forbid-error', policyIds: ['overflow'] });
    const three = Date.UTC(2026, 0, 12, 3);
    expect(verdict(engine.authorizeAccess(prompt('hello', { now: three })))).toBe('forbid nobody-at-3');
    expect(engine.authorize({ ...callInput, now: three })).toMatchObject({
      allowed: false,
      reason: 'forbid',
    });
  });

  it('warns that a file permit naming no action now also grants resource reads and prompt gets', async () => {
    writeFileSync(join(dir, 'broad.cedar'), '@id("everything") permit (principal, action, resource);');
    const warnings: string[] = [];
    const engine = await PolicyEngine.create({
      policy: { files: [join(dir, 'broad.cedar')], rules: [], arguments: {}, timezone: 'UTC', watch: false },
      tools,
      logger: { info() {}, error() {}, warn: (_o, m) => void warnings.push(m) },
    });
    engines.push(engine);
    expect(warnings.join('\n')).toMatch(/"everything" names no action, so it also permits resource reads/);
    expect(verdict(engine.authorizeAccess(read('kb://x')))).toBe('allow everything');
  });

  it('takes a file policy that names no action but reads tool-only attributes to be about tool calls', async () => {
    const text = [
      '@id("big-refunds") forbid (principal, action, resource) when { context.arguments has amountCents && context.arguments.amountCents > 100 };',
      '@id("no-high-risk") forbid (principal, action, resource) when { resource.risk == "high" };',
    ].join('\n');
    writeFileSync(join(dir, 'legacy.cedar'), text);
    const policy: PolicyConfig = {
      files: [join(dir, 'legacy.cedar')],
      rules: [{ id: 'kb', effect: 'permit', resources: ['kb://*'] }],
      arguments: { amountCents: 'integer' },
      timezone: 'UTC',
      watch: false,
    };
    const warnings: string[] = [];
    const engine = await PolicyEngine.create({
      policy,
      tools,
      logger: { info() {}, error() {}, warn: (_o, m) => void warnings.push(m) },
    });
    engines.push(engine);
    expect(warnings.filter((w) => /applies to tool calls only/.test(w))).toHaveLength(2);
    expect(verdict(engine.authorizeAccess(read('kb://x')))).toBe('allow kb');
    expect(verdict(engine.authorize({ ...callInput, tool: { name: 'issue_refund', upstream: 'u' } }))).toBe(
      'forbid no-high-risk',
    );
    expect(verdict(engine.authorize({ ...callInput, arguments: { amountCents: 101 } }))).toBe(
      'forbid big-refunds',
    );
    expect(verdict(engine.authorize(callInput))).toBe('allow agent.allowedTools');
  });

  it('refuses a hand-written policy on a new action that reads what it does not have', async () => {
    writeFileSync(
      join(dir, 'bad.cedar'),
      'permit (principal, action == Warden::Action::"read_resource", resource) when { resource.risk == "low" };',
    );
    const policy: PolicyConfig = {
      files: [join(dir, 'bad.cedar')],
      rules: [],
      arguments: {},
      timezone: 'UTC',
      watch: false,
    };
    await expect(PolicyEngine.create({ policy, tools })).rejects.toThrow(/bad\.cedar:1:\d+: .*`risk`/);
  });

  it('decides tool calls exactly as a set without the resource rules does', async () => {
    const callRules: PolicyRuleConfig[] = [
      { id: 'support-reads', effect: 'permit', agentTypes: ['customer-support'], tools: ['lookup_order'] },
      {
        id: 'after-hours',
        effect: 'forbid',
        toolTags: ['write'],
        when: { time: { outside: '06:00-22:00' } },
      },
      { id: 'everything-at-4', effect: 'forbid', when: { time: { within: '04:00-05:00' } } },
      {
        id: 'refund-approval',
        effect: 'obligation',
        tools: ['issue_refund'],
        obligations: { approval: 'required' },
      },
    ];
    const accessRules: PolicyRuleConfig[] = [
      ...EXAMPLE,
      { id: 'a1-all', effect: 'permit', agents: ['a1'], resources: ['*'], prompts: ['*'] },
      {
        id: 'no-reads-at-night',
        effect: 'forbid',
        resources: ['*'],
        when: { time: { outside: '06:00-22:00' } },
      },
    ];
    const before = await engineWith(callRules, {}, { untrusted: 'deny', privateData: 'approval' });
    const after = await engineWith(
      [...callRules, ...accessRules],
      {},
      { untrusted: 'deny', privateData: 'approval' },
    );
    const inputs: AuthzInput[] = [];
    for (const name of ['lookup_order', 'issue_refund', 'send_email', 'unknown'])
      for (const now of [NOON, Date.UTC(2026, 0, 12, 4, 30), Date.UTC(2026, 0, 12, 23)])
        for (const a of [agent, { ...agent, id: 'a2', type: 'data-analyst', allowedTools: ['send_email'] }])
          for (const taint of [
            undefined,
            { untrusted: true, privateData: false },
            { untrusted: false, privateData: true },
          ])
            inputs.push({
              ...callInput,
              agent: a,
              tool: { name, upstream: 'u' },
              now,
              ...(taint ? { taint } : {}),
            });
    for (const i of inputs) expect(after.authorize(i), JSON.stringify(i)).toEqual(before.authorize(i));
    // And the resource rules do decide reads.
    expect(verdict(after.authorizeAccess(prompt('anything')))).toBe('allow a1-all');
  });

  it('caches decisions by the whole request', async () => {
    const engine = await engineWith(EXAMPLE);
    const first = engine.authorizeAccess(read('kb://articles/a'));
    expect(engine.authorizeAccess(read('kb://articles/a'))).toEqual(first);
    expect(engine.authorizeAccess(read('kb://articles/internal/a')).allowed).toBe(false);
    expect(engine.authorizeAccess(prompt('kb://articles/a')).allowed).toBe(false);
    expect(engine.authorizeAccess(read('kb://articles/a')).allowed).toBe(true);
  });

  it('fails closed once the engine is closed', async () => {
    const engine = await engineWith(EXAMPLE);
    engine.close();
    expect(() => engine.authorizeAccess(read('kb://articles/a'))).toThrow(/unavailable/i);
  });
});

const callInput: AuthzInput = {
  agent,
  tool: { name: 'lookup_order', upstream: 'u' },
  arguments: {},
  session: { id: 's1', calls: 0 },
  clientIp: '127.0.0.1',
  now: NOON,
};

describe('the config loader on resource and prompt rules', () => {
  async function load(yaml: string): Promise<string> {
    const p = join(dir, 'warden.yaml');
    writeFileSync(p, yaml);
    return loadConfig(p, { cwd: dir }).then(
      () => '',
      (e: Error) => e.message,
    );
  }

  it('accepts the example', async () => {
    const yaml = [
      'policy:',
      '  rules:',
      '    - id: support-reads-kb',
      '      effect: permit',
      '      agentTypes: [customer-support]',
      "      resources: ['kb://articles/*']",
      "      prompts: ['summarize_*']",
      '    - id: no-secrets',
      '      effect: forbid',
      "      resources: ['kb://articles/internal/*']",
    ].join('\n');
    expect(await load(yaml)).toBe('');
  });

  it('refuses a rule mixing tool and resource selectors, at the offending key', async () => {
    const msg = await load(
      [
        'policy:',
        '  rules:',
        '    - id: mixed',
        '      effect: permit',
        '      tools: [lookup_order]',
        "      resources: ['kb://*']",
        '      when:',
        '        arguments: { orderId: { eq: x } }',
        '    - id: obliged',
        '      effect: obligation',
        "      prompts: ['p']",
        '      obligations: { approval: required }',
      ].join('\n'),
    );
    const lines = msg.split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(
      /^warden\.yaml:5:\d+: policy\.rules\[0\]\.tools: a rule about resources cannot also have tools: that is about tool calls/,
    );
    expect(lines[1]).toMatch(
      /^warden\.yaml:8:\d+: policy\.rules\[0\]\.when\.arguments: a rule about resources cannot/,
    );
    expect(lines[2]).toMatch(
      /^warden\.yaml:10:\d+: policy\.rules\[1\]\.effect: a rule about prompts is a permit or a forbid/,
    );
    expect(lines[3]).toMatch(
      /^warden\.yaml:12:\d+: policy\.rules\[1\]\.obligations: a rule about prompts cannot/,
    );
  });
});

describe('policy test files with resources and prompts', () => {
  it('runs resource and prompt cases, and refuses a case naming two things', async () => {
    const cases = parsePolicyTests(
      [
        '- name: reads an article',
        '  agent: { id: a1, type: customer-support }',
        '  resource: kb://articles/returns',
        '  upstream: kb',
        '  expect: { decision: allow, policies: [support-reads-kb] }',
        '- name: not the internal ones',
        '  agent: { id: a1, type: customer-support }',
        '  resource: kb://articles/internal/x',
        '  expect: { decision: deny, code: POLICY_DENIED, policies: [no-secrets] }',
        '- name: no such prompt permitted',
        '  agent: { id: a1, type: customer-support }',
        '  prompt: translate',
        '  expect: { decision: deny, code: PROMPT_NOT_ALLOWED }',
        '- name: a wrong expectation fails',
        '  agent: { id: a1, type: customer-support }',
        '  prompt: summarize_x',
        '  expect: { decision: deny }',
      ].join('\n'),
      'cases.yaml',
    );
    const config = {
      agents: [],
      tools,
      upstreams: [],
      taint: { untrusted: 'allow', privateData: 'allow' },
      inspection: { arguments: { secrets: false, secretsToExternal: 'allow' } },
      policy: { files: [], rules: EXAMPLE, arguments: {}, timezone: 'UTC', watch: false },
    } as unknown as Parameters<typeof runPolicyTests>[0];
    const results = await runPolicyTests(config, [{ file: 'cases.yaml', cases }]);
    expect(results.map((r) => r.ok)).toEqual([true, true, true, false]);
    expect(results[3]?.problems).toEqual(['decision: expected deny, got allow']);

    expect(() =>
      parsePolicyTests(
        '- { name: two, agent: { id: a, type: t }, tool: { name: x }, resource: r, expect: { decision: deny } }',
        'bad.yaml',
      ),
    ).toThrow(/case 0 \(two\): resource: expected exactly one of tool, resource and prompt/);
    expect(() =>
      parsePolicyTests(
        '- { name: args, agent: { id: a, type: t }, prompt: p, arguments: { a: 1 }, expect: { decision: deny } }',
        'bad.yaml',
      ),
    ).toThrow(/case 0 \(args\): arguments: a prompt case has no arguments/);
  });
});
