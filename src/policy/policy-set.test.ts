import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { toolDefaults } from '../config/constants.js';
import type { PolicyConfig, PolicyRuleConfig } from '../config/policy-types.js';
import type { ToolConfig } from '../config/types.js';
import { isAuthorized } from './cedar.js';
import { buildPolicySet, type PolicySources } from './policy-set.js';
import { buildRequest, LocalTime } from './request.js';

const dir = mkdtempSync(join(tmpdir(), 'warden-policy-set-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const tools: Record<string, ToolConfig> = {
  lookup_order: toolDefaults('low'),
  issue_refund: { ...toolDefaults('high'), arguments: { amountCents: { type: 'integer' } } },
};

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

function sources(over: Partial<PolicyConfig> = {}, extra: Partial<PolicySources> = {}): PolicySources {
  return {
    policy: { files: [], rules: [], arguments: {}, timezone: 'UTC', watch: false, ...over },
    tools,
    show: (p) => p.slice(dir.length + 1),
    ...extra,
  };
}

async function problems(over: Partial<PolicyConfig>, extra: Partial<PolicySources> = {}) {
  const r = await buildPolicySet(sources(over, extra));
  if (r.ok) throw new Error('expected the set to be refused');
  return r.errors;
}

describe('building a policy set', () => {
  it('always holds the two agent-list policies, validated against the schema', async () => {
    const r = await buildPolicySet(sources());
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(Object.keys(r.set.policies).sort()).toEqual(['agent.allowedTools', 'agent.deniedTools']);
    expect(r.set.meta.get('agent.deniedTools')?.effect).toBe('forbid');
    expect(r.set.digest).toMatch(/^[0-9a-f]{64}$/);
  });

  it('names file, line, column and problem for a syntax error', async () => {
    const p = file(
      'broken.cedar',
      '// ünïcode first, so byte and character offsets differ\npermit (principal, action, resource)\nwhen { context.x > };\n',
    );
    const [e] = await problems({ files: [p] });
    expect(e).toMatch(/^broken\.cedar:3:20: unexpected token `}`/);
  });

  it('reports a policy that reads an unknown attribute, at the attribute', async () => {
    const p = file(
      'unknown-attr.cedar',
      [
        'permit (principal, action == Warden::Action::"call", resource);',
        '',
        '@id("typo")',
        'forbid (principal, action == Warden::Action::"call", resource)',
        '  when { resource.riks == "high" };',
      ].join('\n'),
    );
    const errors = await problems({ files: [p] });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(
      /^unknown-attr\.cedar:5:10: policy "typo": .*attribute `riks`.*not found.*did you mean `risk`/,
    );
  });

  it('refuses a forbid that can never apply (an undeclared argument behind `has`)', async () => {
    const p = file(
      'undeclared.cedar',
      'forbid (principal, action, resource) when { context.arguments has limit && context.arguments.limit > 5 };',
    );
    const [e] = await problems({ files: [p] });
    expect(e).toMatch(/^undeclared\.cedar:1:1: policy "undeclared\.cedar#1": .*policy is impossible/);
    // Declared in policy.arguments, the same text validates.
    const r = await buildPolicySet(sources({ files: [p], arguments: { limit: 'integer' } }));
    expect(r.ok).toBe(true);
  });

  it('names policies without @id by file and position', async () => {
    const p = file(
      'two.cedar',
      'permit (principal, action, resource) when { false };\n@id("named") permit (principal, action, resource) when { false };\npermit (principal, action, resource) when { 1 == 1 };',
    );
    const r = await buildPolicySet(sources({ files: [p] }));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(Object.keys(r.set.policies).filter((k) => !k.startsWith('agent.'))).toEqual([
      'two.cedar#1',
      'named',
      'two.cedar#3',
    ]);
    expect(r.set.meta.get('two.cedar#3')?.origin).toBe('two.cedar:3:1');
    // An always-false policy is legal but is surely a mistake: a warning.
    expect(
      r.set.warnings.some((w) => w.startsWith('two.cedar:1:1: policy "two.cedar#1"') && /impossible/.test(w)),
    ).toBe(true);
  });

  it('refuses duplicate ids across files and rules, naming both places', async () => {
    const p = file('dup.cedar', '@id("refunds") permit (principal, action, resource);');
    const rule: PolicyRuleConfig = { id: 'refunds', effect: 'forbid', tools: ['issue_refund'] };
    const [e] = await problems({ files: [p], rules: [rule] });
    expect(e).toBe(
      'dup.cedar:1:1: duplicate policy id "refunds" (already used at policy.rules[0] (refunds))',
    );
  });

  it('refuses templates, an unreadable file, a bad @risk and @obligation on a forbid', async () => {
    const tpl = file('template.cedar', 'permit (principal == ?principal, action, resource);');
    const risky = file(
      'risky.cedar',
      '@id("r") @risk("extreme") permit (principal, action, resource);\n@id("f") @obligation forbid (principal, action, resource);',
    );
    const errors = await problems({ files: [tpl, join(dir, 'missing.cedar'), risky] });
    expect(errors).toEqual([
      'template.cedar:1:1: policy templates (?principal, ?resource) are not supported',
      'missing.cedar: cannot read the policy file (ENOENT)',
      'risky.cedar:1:1: policy "r": @risk("extreme") is not a risk class (low, medium, high, critical)',
      expect.stringMatching(/^risky\.cedar:2:1: policy "f": @obligation marks a permit/),
    ]);
  });

  it('reports a tool no upstream provides: an error when the tool list is complete, a warning when not', async () => {
    const p = file(
      'tools.cedar',
      '@id("t") forbid (principal, action, resource == Warden::Tool::"delete_acount");',
    );
    const rule: PolicyRuleConfig = { id: 'r', effect: 'permit', tools: ['lookup_ordr', 'lookup_order'] };
    const names = new Set(Object.keys(tools));
    const errors = await problems({ files: [p], rules: [rule] }, { knownTools: { names, complete: true } });
    expect(errors).toEqual([
      'policy.rules[0] (r): policy "r" names tool "lookup_ordr", which no upstream or tools: entry provides',
      'tools.cedar:1:1: policy "t" names tool "delete_acount", which no upstream or tools: entry provides',
    ]);
    const r = await buildPolicySet(
      sources({ files: [p], rules: [rule] }, { knownTools: { names, complete: false } }),
    );
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.set.warnings.filter((w) => w.includes('may yet appear'))).toHaveLength(2);
  });

  it('refuses an argument typed differently by two sources', async () => {
    const rule: PolicyRuleConfig = {
      id: 'r',
      effect: 'forbid',
      when: { arguments: { amountCents: { eq: 'lots' } } },
    };
    const errors = await problems({ rules: [rule] });
    expect(errors[0]).toMatch(
      /^policy\.rules\[0\] \(r\)\.when\.arguments\.amountCents: argument "amountCents" is string here but integer at tools\.issue_refund\.arguments\.amountCents\.type/,
    );
  });

  it('knows which attributes the set reads, so requests carry no more', async () => {
    const base = await buildPolicySet(sources());
    if (!base.ok) throw new Error(base.errors.join('\n'));
    expect([...base.set.reads.names].sort()).toEqual(['allowedTools', 'deniedTools', 'name']);
    const p = file(
      'reads.cedar',
      'forbid (principal, action, resource) when { context.time.hour > 22 && principal.owner == "x" };',
    );
    const whole = file(
      'whole.cedar',
      'forbid (principal, action, resource) when { [context].contains(context) && principal.owner == "nobody" };',
    );
    const r = await buildPolicySet(
      sources({
        files: [p],
        rules: [{ id: 'r', effect: 'forbid', toolTags: ['write'], when: { user: { tier: ['free'] } } }],
      }),
    );
    if (!r.ok) throw new Error(r.errors.join('\n'));
    expect([...r.set.reads.names].sort()).toEqual(
      ['allowedTools', 'deniedTools', 'hour', 'name', 'owner', 'tags', 'tier', 'time', 'user'].sort(),
    );
    expect(r.set.reads.wholeContext).toBe(false);
    const w = await buildPolicySet(sources({ files: [whole] }));
    if (!w.ok) throw new Error(w.errors.join('\n'));
    expect(w.set.reads.wholeContext).toBe(true);
    const request = buildRequest(
      {
        agent: {
          id: 'a',
          type: 't',
          version: '1',
          environment: 'e',
          owner: 'o',
          allowedTools: [],
          deniedTools: [],
        },
        user: { id: 'u', tier: 'gold' },
        tool: { name: 'lookup_order', upstream: 'u' },
        arguments: { amountCents: 'not checked: nothing reads it' },
        session: { id: 's', calls: 3 },
        clientIp: '10.0.0.1',
        now: Date.UTC(2026, 0, 1),
      },
      { risk: 'low', tags: ['read'] },
      base.set.argumentTypes,
      new LocalTime('UTC'),
      [],
      base.set.reads,
    );
    expect(request.context).toEqual({});
    expect(request.entities.map((e) => e.attrs)).toEqual([
      { allowedTools: [], deniedTools: [] },
      { name: 'lookup_order' },
    ]);
  });

  it('builds requests that conform to the schema it validates policies against', async () => {
    const r = await buildPolicySet(
      sources({ rules: [{ id: 'x', effect: 'permit', when: { arguments: { note: { eq: 'a' } } } }] }),
    );
    if (!r.ok) throw new Error(r.errors.join('\n'));
    const request = buildRequest(
      {
        agent: {
          id: 'a',
          type: 't',
          version: '1',
          environment: 'e',
          owner: 'o',
          allowedTools: ['lookup_order'],
          deniedTools: [],
        },
        user: { id: 'u', tier: 'gold' },
        tool: { name: 'lookup_order', upstream: 'u' },
        arguments: { note: 'a', amountCents: 5, unrelated: { deep: [1] } },
        session: { id: 's', calls: 3 },
        clientIp: '::ffff:10.1.2.3',
        now: Date.UTC(2026, 0, 1),
      },
      { risk: 'low', tags: ['read'] },
      r.set.argumentTypes,
      new LocalTime('UTC'),
      ['lookup_order'],
    );
    // The slow, schema-checked path: Cedar itself confirms every entity and context attribute is typed right.
    const answer = isAuthorized({
      ...request,
      policies: { staticPolicies: r.set.policies },
      schema: r.set.schema,
      validateRequest: true,
    });
    expect(answer.type, JSON.stringify(answer)).toBe('success');
    if (answer.type === 'success') expect(answer.response.decision).toBe('allow');
    expect(request.context['arguments']).toEqual({ note: 'a', amountCents: 5 });
  });
});
