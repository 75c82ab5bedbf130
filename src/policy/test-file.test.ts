import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../config/index.js';
import type { WardenConfig } from '../config/types.js';
import { isWardenError } from '../errors.js';
import {
  parsePolicyTests,
  runPolicyTestFiles,
  runPolicyTests,
  toProblem,
  validatePolicies,
} from './test-file.js';

const examples = join(dirname(fileURLToPath(import.meta.url)), '../../examples/policies');
const testFile = join(examples, 'policies.tests.yaml');

let config: WardenConfig;
beforeAll(async () => {
  config = (await loadConfig(join(examples, 'warden.yaml'))).config;
});

describe('policy test files', () => {
  it('every case of the example file passes', async () => {
    const results = await runPolicyTestFiles(config, [testFile]);
    expect(results.length).toBeGreaterThanOrEqual(20);
    expect(results.filter((r) => !r.ok)).toEqual([]);
  });

  it('reports a wrong expectation as FAIL, saying what differed', async () => {
    const cases = parsePolicyTests(
      `
- name: wrongly expects a $100.01 refund to run without approval
  agent: { id: support-bot-prod }
  tool: { name: issue_refund }
  arguments: { amountCents: 10001 }
  time: 2026-01-12T12:00:00+01:00
  expect: { decision: allow, policies: [refund-over-1000-critical], obligations: { approval: false, risk: medium } }
- name: wrongly expects the deny list to allow
  agent: { id: support-bot-prod }
  tool: { name: bulk_message }
  time: 2026-01-12T12:00:00+01:00
  expect: { decision: allow }
`,
      'inline.yaml',
    );
    const [wrong, denied] = await runPolicyTests(config, [{ file: 'inline.yaml', cases }]);
    expect(wrong?.ok).toBe(false);
    expect(wrong?.problems).toEqual([
      'policies: expected refund-over-1000-critical among the determining ones, got [agent.allowedTools, refund-over-100-needs-approval]',
      'approval: expected none, got required',
      'risk: expected medium, got high',
    ]);
    expect(denied?.ok).toBe(false);
    expect(denied?.problems).toEqual(['decision: expected allow, got deny (TOOL_DENIED: agent.deniedTools)']);
    expect(denied?.actual).toMatchObject({ decision: 'deny', code: 'TOOL_DENIED' });
  });

  it('a case may override a tool’s tags and an unknown agent gives its type', async () => {
    const cases = parsePolicyTests(
      `
- name: lookup_order tagged write is after hours at 23:00
  agent: { id: support-bot-prod }
  tool: { name: lookup_order, tags: [write] }
  time: 2026-01-12T23:00:00+01:00
  expect: { decision: deny, code: POLICY_DENIED, policies: [after-hours-read-only] }
- name: a new support agent reads through its type
  agent: { id: new-bot, type: customer-support }
  tool: { name: check_shipping_status }
  expect: { decision: allow, policies: [support-may-read] }
`,
      'inline.yaml',
    );
    const results = await runPolicyTests(config, [{ file: 'inline.yaml', cases }]);
    expect(results.map((r) => [r.ok, r.problems])).toEqual([
      [true, []],
      [true, []],
    ]);
  });

  it('names the case index and name of a malformed case', () => {
    let err: unknown;
    try {
      parsePolicyTests(
        '- name: ok\n  agent: {id: a, type: t}\n  tool: {name: x}\n  expect: {decision: allow}\n' +
          '- name: broken\n  agent: {id: a}\n  tool: {}\n  expect: {decision: maybe}\n',
        'bad.yaml',
      );
    } catch (e) {
      err = e;
    }
    expect(isWardenError(err, 'CONFIG_INVALID')).toBe(true);
    const message = (err as Error).message;
    expect(message).toContain('bad.yaml: case 1 (broken): tool.name:');
    expect(message).toContain('bad.yaml: case 1 (broken): expect.decision:');
  });
});

describe('policy validate', () => {
  it('summarizes a valid set', async () => {
    const r = await validatePolicies(config);
    expect(r.ok).toBe(true);
    if (r.ok) {
      expect(r.policyCount).toBeGreaterThan(0);
      expect(r.digest).toMatch(/^[0-9a-f]{64}$/);
    }
  });

  it('names each problem of an invalid set', async () => {
    const broken: WardenConfig = {
      ...config,
      policy: {
        ...config.policy,
        rules: [...config.policy.rules, { ...config.policy.rules[0]!, id: 'support-may-read' }],
      },
    };
    const r = await validatePolicies(broken);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problems.map((p) => p.message).join('\n')).toMatch(/support-may-read/);
  });

  it('splits file:line:col messages', () => {
    expect(toProblem('a/b.cedar:3:20: unexpected token')).toEqual({
      file: 'a/b.cedar',
      line: 3,
      column: 20,
      message: 'unexpected token',
    });
    expect(toProblem('something else')).toEqual({ message: 'something else' });
  });
});
