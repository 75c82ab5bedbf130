import { afterEach, describe, expect, it } from 'vitest';
import { toolDefaults } from '../config/constants.js';
import { inspectionSchema, taintSchema } from '../config/schema-inspection.js';
import { policySchema } from '../config/schema-policy.js';
import type { ToolConfig } from '../config/types.js';
import { compileRule } from './compile.js';
import { PolicyEngine } from './engine.js';
import type { AuthzInput } from './request.js';
import { SECRETS_OUT_POLICY_ID, secretsOutRule, TAINT_POLICY_IDS, taintRules } from './taint.js';

const tools: Record<string, ToolConfig> = {
  fetch_page: { ...toolDefaults('low'), capabilities: ['untrusted-content'] },
  read_inbox: { ...toolDefaults('low'), capabilities: ['private-data'] },
  send_email: { ...toolDefaults('low'), capabilities: ['external-communication'] },
};
const engines: PolicyEngine[] = [];
afterEach(() => {
  for (const e of engines.splice(0)) e.close();
});

async function engine(opts: { rules?: unknown[]; taint?: unknown; inspection?: unknown } = {}) {
  const policy = policySchema.parse({ rules: opts.rules ?? [] });
  const e = await PolicyEngine.create({
    policy: { ...policy, files: [] },
    tools,
    taint: taintSchema.parse(opts.taint ?? {}),
    inspectArguments: inspectionSchema.parse(opts.inspection ?? {}).arguments,
  });
  engines.push(e);
  return e;
}

const call = (tool: string, over: Partial<AuthzInput> = {}): AuthzInput => ({
  agent: {
    id: 'a1',
    type: 'assistant',
    version: '1',
    environment: 'production',
    owner: 'o',
    allowedTools: Object.keys(tools),
    deniedTools: [],
  },
  tool: { name: tool, upstream: 'u' },
  arguments: {},
  session: { id: 's1', calls: 0 },
  clientIp: '10.1.2.3',
  now: Date.UTC(2026, 0, 12, 12),
  taint: { untrusted: false, privateData: false },
  ...over,
});
const untrusted = { taint: { untrusted: true, privateData: false } };
const privateData = { taint: { untrusted: false, privateData: true } };

describe('taint policies', () => {
  it('compile to Cedar on the tool capability and the session taint', () => {
    const [rule] = taintRules(taintSchema.parse({ untrusted: 'deny' }));
    expect(rule?.id).toBe(TAINT_POLICY_IDS.untrusted);
    expect(compileRule(rule!)).toContain('resource.capabilities.containsAny(["external-communication"])');
    expect(compileRule(rule!)).toContain(
      '(context has taint && context.taint has untrusted && context.taint.untrusted)',
    );
    expect(taintRules(taintSchema.parse({ untrusted: 'allow', privateData: 'allow' }))).toEqual([]);
  });

  it('by default: an untrusted session needs a human for external tools; other tools and clean sessions do not', async () => {
    const e = await engine();
    const held = e.authorize(call('send_email', untrusted));
    expect(held).toMatchObject({ allowed: true, obligations: { approval: 'required' } });
    expect(held.policyIds).toContain(TAINT_POLICY_IDS.untrusted);
    expect(e.authorize(call('send_email'))).toMatchObject({ allowed: true, obligations: {} });
    expect(e.authorize(call('read_inbox', untrusted))).toMatchObject({ allowed: true, obligations: {} });
    // privateData is `allow` by default: recorded, not held.
    expect(e.authorize(call('send_email', privateData))).toMatchObject({ allowed: true, obligations: {} });
  });

  it('deny refuses, naming the taint policy; allow lets the call through', async () => {
    const e = await engine({ taint: { untrusted: 'allow', privateData: 'deny' } });
    expect(e.authorize(call('send_email', privateData))).toMatchObject({
      allowed: false,
      policyIds: [TAINT_POLICY_IDS.privateData],
    });
    expect(e.authorize(call('send_email', untrusted))).toMatchObject({ allowed: true, obligations: {} });
  });

  it('a request without taint context is clean, not an error', async () => {
    const e = await engine();
    const { taint: _, ...bare } = call('send_email');
    expect(e.authorize(bare)).toMatchObject({ allowed: true, obligations: {}, errors: [] });
  });

  it('rule ids of the generated policies are reserved', () => {
    const r = policySchema.safeParse({ rules: [{ id: 'taint.untrusted', effect: 'permit' }] });
    expect(r.success).toBe(false);
  });
});

describe('detector conditions and the secrets-out policy', () => {
  it('secrets in the arguments of an external tool are refused by default; approval and allow as configured', async () => {
    const secret = { detectors: { secrets: 1, injection: 0 } };
    const def = await engine();
    expect(def.authorize(call('send_email', secret))).toMatchObject({
      allowed: false,
      policyIds: [SECRETS_OUT_POLICY_ID],
    });
    expect(def.authorize(call('read_inbox', secret)).allowed).toBe(true);
    expect(def.authorize(call('send_email', { detectors: { secrets: 0 } })).allowed).toBe(true);
    const approve = await engine({ inspection: { arguments: { secretsToExternal: 'approval' } } });
    expect(approve.authorize(call('send_email', secret))).toMatchObject({
      allowed: true,
      obligations: { approval: 'required' },
    });
    expect(secretsOutRule({ secrets: false, secretsToExternal: 'allow' })).toEqual([]);
  });

  it('refuses a secrets policy that could never fire: secretsToExternal without secrets counted', () => {
    const args = (a: unknown) => inspectionSchema.safeParse({ arguments: a });
    expect(args({ secrets: false, secretsToExternal: 'deny' }).success).toBe(false);
    expect(args({ secrets: false, secretsToExternal: 'approval' }).success).toBe(false);
    expect(args({ secrets: false }).data?.arguments.secretsToExternal).toBe('allow');
    expect(args({}).data?.arguments.secretsToExternal).toBe('deny');
  });

  it('a rule on a score holds only when the detector ran and the score compares', async () => {
    const e = await engine({
      rules: [
        {
          id: 'injection-out',
          effect: 'forbid',
          toolCapabilities: ['external-communication'],
          when: { detectors: { injection: { gte: 50 } } },
        },
        {
          id: 'clean-only',
          effect: 'forbid',
          tools: ['read_inbox'],
          when: { taint: { untrusted: false }, detectors: { pii: { gt: 2 } } },
        },
      ],
    });
    expect(e.authorize(call('send_email', { detectors: { injection: 72 } }))).toMatchObject({
      allowed: false,
      policyIds: ['injection-out'],
    });
    expect(e.authorize(call('send_email', { detectors: { injection: 49 } })).allowed).toBe(true);
    // Not run (absent) is not a score of 0 and not a match: the forbid does not apply.
    expect(e.authorize(call('send_email', { detectors: {} })).allowed).toBe(true);
    expect(e.authorize(call('read_inbox', { detectors: { pii: 3 } })).allowed).toBe(false);
    expect(e.authorize(call('read_inbox', { detectors: { pii: 3 }, ...untrusted })).allowed).toBe(true);
  });

  it('validates the new conditions and selectors', () => {
    const bad = [
      { id: 'x', effect: 'forbid', when: { detectors: {} } },
      { id: 'x', effect: 'forbid', when: { detectors: { injection: { gte: 'high' } } } },
      { id: 'x', effect: 'forbid', when: { taint: { tainted: true } } },
      { id: 'x', effect: 'forbid', toolCapabilities: ['sends-email'] },
    ];
    for (const rule of bad)
      expect(policySchema.safeParse({ rules: [rule] }).success, JSON.stringify(rule)).toBe(false);
  });
});
