import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from './load.js';
import { policySchema } from './schema-policy.js';

const dir = mkdtempSync(join(tmpdir(), 'warden-schema-policy-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const messages = (v: unknown) => {
  const r = policySchema.safeParse(v);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

/** Load a config file whose only content is `yaml`, returning the error message. */
async function loadError(yaml: string): Promise<string> {
  const p = join(dir, 'warden.yaml');
  writeFileSync(p, yaml);
  return loadConfig(p, { cwd: dir }).then(
    () => '',
    (e: Error) => e.message,
  );
}

describe('policy: the YAML shorthand', () => {
  it('accepts every selector, condition and obligation', () => {
    const p = policySchema.parse({
      files: ['p.cedar'],
      arguments: { note: 'string' },
      timezone: 'Europe/Paris',
      rules: [
        {
          id: 'everything',
          effect: 'permit',
          agents: ['a'],
          agentTypes: ['t'],
          environments: ['production'],
          tools: ['x'],
          toolTags: ['write'],
          risk: ['high'],
          when: {
            time: { outside: '06:00-22:00', days: ['Mon'] },
            arguments: { amountCents: { gt: 1, lte: 5 }, note: { in: ['a', 'b'] }, flag: { eq: true } },
            user: { tier: ['gold'] },
            session: { calls: { lt: 10 }, toolsUsed: ['y'] },
            clientIp: { in: ['10.0.0.0/8'], notIn: ['10.9.0.0/16'] },
          },
          obligations: { approval: 'required', risk: 'high', annotations: { notify: 'finance' } },
        },
      ],
    });
    expect(p.rules[0]?.when?.time?.outside).toBe('06:00-22:00');
    expect(policySchema.parse(undefined)).toEqual({
      files: [],
      rules: [],
      arguments: {},
      timezone: 'UTC',
      watch: false,
    });
  });

  it('is strict: a misspelt key is an error, not a rule that matches everything', () => {
    expect(messages({ rules: [{ id: 'r', effect: 'forbid', tool: ['x'] }] })).toEqual([
      'rules.0: Unrecognized key: "tool"',
    ]);
    expect(
      messages({ rules: [{ id: 'r', effect: 'permit', obligations: { aproval: 'required' } }] }),
    ).toEqual(['rules.0.obligations: Unrecognized key: "aproval"']);
  });

  it('refuses values that would compile to a rule that cannot mean what it says', () => {
    const bad = (rule: Record<string, unknown>) =>
      messages({ rules: [{ id: 'r', effect: 'forbid', ...rule }] });
    expect(bad({ when: { time: { outside: '6:00-22:00' } } })[0]).toMatch(/window like 06:00-22:00/);
    expect(bad({ when: { time: { within: '22:00-22:00' } } })[0]).toMatch(/starts where it ends/);
    expect(bad({ when: { time: { within: '01:00-02:00', outside: '03:00-04:00' } } })[0]).toMatch(
      /either within or outside/,
    );
    expect(bad({ when: { time: { days: ['Monday'] } } })[0]).toMatch(/^rules\.0\.when\.time\.days\.0: /);
    expect(bad({ when: { arguments: { amount: { gt: 1.5 } } } })[0]).toMatch(
      /^rules\.0\.when\.arguments\.amount\.gt: .*int/,
    );
    expect(bad({ when: { arguments: { amount: { gt: 2 ** 60 } } } })[0]).toMatch(
      /^rules\.0\.when\.arguments\.amount\.gt: /,
    );
    expect(bad({ when: { arguments: { amount: {} } } })[0]).toMatch(/at least one comparison/);
    expect(bad({ when: { clientIp: { in: ['10.0.0.0/33'] } } })[0]).toMatch(/CIDR/);
    expect(bad({ tools: [] })[0]).toMatch(/non-empty list/);
    expect(bad({ risk: ['extreme'] })[0]).toMatch(/^rules\.0\.risk\.0: /);
    expect(bad({ obligations: { risk: 'high' } })[0]).toMatch(
      /^rules\.0\.obligations: a forbid denies outright/,
    );
    expect(messages({ rules: [{ id: 'r', effect: 'obligation' }] })[0]).toMatch(
      /^rules\.0\.effect: an obligation rule needs/,
    );
    expect(
      messages({ rules: [{ id: 'r', effect: 'permit', obligations: { annotations: { risk: 'x' } } }] })[0],
    ).toMatch(/reserved annotation name/);
    expect(messages({ rules: [{ id: 'agent.deniedTools', effect: 'permit' }] })[0]).toMatch(/reserved/);
    expect(messages({ arguments: { n: 'number' } })[0]).toMatch(/string, integer or boolean/);
  });

  it('takes resources and prompts, without what is about tool calls', () => {
    expect(
      messages({
        rules: [
          { id: 'r', effect: 'permit', agentTypes: ['t'], resources: ['kb://*'], prompts: ['s_*'] },
          { id: 'f', effect: 'forbid', resources: ['kb://x/*'], when: { taint: { untrusted: true } } },
        ],
      }),
    ).toEqual([]);
    expect(
      messages({
        rules: [
          {
            id: 'm',
            effect: 'permit',
            prompts: ['p'],
            toolTags: ['write'],
            risk: ['high'],
            toolCapabilities: ['private-data'],
            when: { detectors: { pii: { gt: 0 } } },
          },
        ],
      }),
    ).toEqual([
      'rules.0.toolTags: a rule about prompts cannot also have toolTags: that is about tool calls (write a separate rule)',
      'rules.0.toolCapabilities: a rule about prompts cannot also have toolCapabilities: that is about tool calls (write a separate rule)',
      'rules.0.risk: a rule about prompts cannot also have risk: that is about tool calls (write a separate rule)',
      'rules.0.when.detectors: a rule about prompts cannot also have when.detectors: that is about tool calls (write a separate rule)',
    ]);
    expect(messages({ rules: [{ id: 'e', effect: 'permit', resources: [] }] })[0]).toMatch(/non-empty list/);
  });

  it('refuses duplicate rule ids at the duplicate', () => {
    expect(
      messages({
        rules: [
          { id: 'r', effect: 'permit' },
          { id: 'x', effect: 'permit' },
          { id: 'r', effect: 'forbid' },
        ],
      }),
    ).toEqual(['rules.2.id: duplicate policy id "r" (already used by policy.rules[0])']);
  });

  it('reports problems at file:line:col like the rest of the config', async () => {
    const msg = await loadError(
      [
        'policy:',
        '  rules:',
        '    - id: after-hours',
        '      effect: forbid',
        '      toolTags: [write]',
        '      when:',
        '        time: { outside: "06:00-2200" }',
        '    - id: refunds',
        '      effect: obligation',
        '      tools: [issue_refund]',
        '      when: { arguments: { amountCents: { gt: "10000" } } }',
        '      obligations: { approval: required }',
      ].join('\n'),
    );
    const lines = msg.split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(
      /^warden\.yaml:7:\d+: policy\.rules\[0\]\.when\.time\.outside: expected a window like 06:00-22:00/,
    );
    expect(lines[1]).toMatch(/^warden\.yaml:11:\d+: policy\.rules\[1\]\.when\.arguments\.amountCents\.gt: /);
  });
});
