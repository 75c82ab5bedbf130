import { afterEach, describe, expect, it } from 'vitest';
import { toolDefaults } from '../config/constants.js';
import { inspectionSchema, taintSchema } from '../config/schema-inspection.js';
import { policySchema } from '../config/schema-policy.js';
import { toolSchema } from '../config/schema-tools.js';
import type { ToolConfig } from '../config/types.js';
import { PolicyEngine } from './engine.js';
import {
  canonicalRecipient,
  RecipientMatcher,
  recipientFacts,
  recipientPatternProblem,
} from './recipients.js';
import type { AuthzInput } from './request.js';
import { TAINT_POLICY_IDS } from './taint.js';

describe('recipients', () => {
  const m = new RecipientMatcher([
    'John.Doe@Gmail.com',
    '*@example.com',
    '*@*.corp.example',
    '+1 (555) 010-0100',
  ]);

  it('canonicalises addresses and numbers, and refuses what is neither', () => {
    expect(canonicalRecipient(' Jane <Jane@Example.COM> ')).toBe('jane@example.com');
    expect(canonicalRecipient('mailto:a@b.io')).toBe('a@b.io');
    expect(canonicalRecipient('"Doe, Jane" <jane@example.com>')).toBe('jane@example.com');
    // Which address would the tool use? Neither is trusted.
    expect(canonicalRecipient('evil@x.io <jane@example.com>')).toBeUndefined();
    expect(canonicalRecipient('mailto:jane@example.com?cc=evil@x.io')).toBeUndefined();
    expect(canonicalRecipient('jane@example.com\nevil@x.io')).toBeUndefined();
    expect(canonicalRecipient('+1-555-010-0100')).toBe('+15550100100');
    expect(canonicalRecipient('BevBuzz')).toBeUndefined();
    expect(canonicalRecipient('a@b')).toBeUndefined();
    expect(canonicalRecipient('12')).toBeUndefined();
  });

  it('matches exact addresses case-insensitively, domains exactly, subdomains only under *@*.', () => {
    expect(m.matches('john.doe@gmail.com')).toBe(true);
    expect(m.matches('amy@gmail.com')).toBe(false);
    expect(m.matches('anyone@example.com')).toBe(true);
    expect(m.matches('x@evil-example.com')).toBe(false);
    expect(m.matches('x@sub.example.com')).toBe(false); // *@example.com is that domain only
    expect(m.matches('x@eu.corp.example')).toBe(true);
    expect(m.matches('x@corp.example')).toBe(false);
    expect(m.matches('+15550100100')).toBe(true);
    expect(m.matches('15550100100')).toBe(false); // a leading + is part of the number
  });

  it('a call is trusted only when it names at least one recipient and every one is trusted', () => {
    const names = ['to', 'cc', 'bcc'];
    expect(recipientFacts(names, { to: 'john.doe@gmail.com, a@example.com' }, m)).toEqual({
      count: 2,
      trusted: true,
    });
    expect(recipientFacts(names, { to: 'john.doe@gmail.com', bcc: 'amy.watson@gmail.com' }, m)).toEqual({
      count: 2,
      trusted: false,
    });
    expect(recipientFacts(names, { to: 'john.doe@gmail.com;x@evil.io' }, m)).toEqual({
      count: 2,
      trusted: false,
    });
    expect(recipientFacts(names, { to: '', cc: '' }, m)).toEqual({ count: 0, trusted: false });
    expect(recipientFacts(names, {}, m)).toEqual({ count: 0, trusted: false });
    expect(recipientFacts(['to'], { to: ['a@example.com', 'b@example.com'] }, m)).toEqual({
      count: 2,
      trusted: true,
    });
    // Not a string: not trusted, whatever it holds.
    expect(recipientFacts(['to'], { to: ['a@example.com', { email: 'b@example.com' }] }, m)?.trusted).toBe(
      false,
    );
    expect(recipientFacts(['to'], { to: 42 }, m)).toEqual({ count: 1, trusted: false });
    // Not an address or a number: not trusted.
    expect(recipientFacts(['to'], { to: 'the whole team' }, m)?.trusted).toBe(false);
    expect(recipientFacts(undefined, { to: 'a@example.com' }, m)).toBeUndefined();
    expect(recipientFacts(['to'], { to: 'a@example.com' }, undefined)?.trusted).toBe(false);
  });

  it('refuses patterns it cannot read, in the config too', () => {
    expect(recipientPatternProblem('*@example.com')).toBeUndefined();
    expect(recipientPatternProblem('*@*')).toMatch(/dotted domain/);
    expect(recipientPatternProblem('j*@example.com')).toMatch(/star/);
    expect(recipientPatternProblem('nobody')).toMatch(/expected an e-mail address/);
    const r = taintSchema.safeParse({ trustedRecipients: ['ok@example.com', '*@com'] });
    expect(r.success).toBe(false);
    expect(JSON.stringify(r.error?.issues)).toContain('trustedRecipients');
    expect(toolSchema.safeParse({ recipients: [] }).success).toBe(false);
  });
});

describe('taint.trustedRecipients in policy', () => {
  const tools: Record<string, ToolConfig> = {
    send_email: {
      ...toolDefaults('low'),
      capabilities: ['external-communication'],
      recipients: ['to', 'cc'],
    },
    post_webhook: { ...toolDefaults('low'), capabilities: ['external-communication'] },
  };
  const engines: PolicyEngine[] = [];
  afterEach(() => {
    for (const e of engines.splice(0)) e.close();
  });
  async function engine(taint: unknown, rules: unknown[] = []) {
    const policy = policySchema.parse({ rules });
    const e = await PolicyEngine.create({
      policy: { ...policy, files: [] },
      tools,
      taint: taintSchema.parse(taint),
      inspectArguments: inspectionSchema.parse({}).arguments,
    });
    engines.push(e);
    return e;
  }
  const call = (tool: string, args: Record<string, unknown>, taint: AuthzInput['taint']): AuthzInput => ({
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
    arguments: args,
    session: { id: 's1', calls: 0 },
    clientIp: '10.1.2.3',
    now: Date.UTC(2026, 0, 12, 12),
    ...(taint ? { taint } : {}),
  });
  const untrusted = { untrusted: true, privateData: false };

  it('lets an untrusted session write to trusted recipients only; private data still waits', async () => {
    const e = await engine({
      untrusted: 'approval',
      privateData: 'approval',
      trustedRecipients: ['me@example.com'],
    });
    expect(e.authorize(call('send_email', { to: 'me@example.com' }, untrusted))).toMatchObject({
      allowed: true,
      obligations: {},
    });
    const out = e.authorize(call('send_email', { to: 'me@example.com', cc: 'amy@gmail.com' }, untrusted));
    expect(out).toMatchObject({ allowed: true, obligations: { approval: 'required' } });
    expect(out.policyIds).toContain(TAINT_POLICY_IDS.untrusted);
    // A tool that declares no recipients has none that are trusted.
    expect(e.authorize(call('post_webhook', { url: 'me@example.com' }, untrusted))).toMatchObject({
      obligations: { approval: 'required' },
    });
    // Private data does not leave, to trusted recipients included.
    const both = e.authorize(
      call('send_email', { to: 'me@example.com' }, { untrusted: true, privateData: true }),
    );
    expect(both.policyIds).toContain(TAINT_POLICY_IDS.privateData);
    expect(both.policyIds).not.toContain(TAINT_POLICY_IDS.untrusted);
    expect(both).toMatchObject({ allowed: true, obligations: { approval: 'required' } });
  });

  it('changes nothing without a list, and policies may read context.recipients themselves', async () => {
    const plain = await engine({});
    expect(plain.authorize(call('send_email', { to: 'me@example.com' }, untrusted))).toMatchObject({
      obligations: { approval: 'required' },
    });
    const e = await engine({ untrusted: 'allow', trustedRecipients: ['*@example.com'] }, [
      {
        id: 'outside-needs-a-human',
        effect: 'obligation',
        tools: ['send_email'],
        when: { recipients: { trusted: false } },
        obligations: { approval: 'required' },
      },
    ]);
    expect(e.authorize(call('send_email', { to: 'x@example.com' }, undefined))).toMatchObject({
      obligations: {},
    });
    expect(e.authorize(call('send_email', { to: 'x@example.com' }, undefined)).policyIds).not.toContain(
      'outside-needs-a-human',
    );
    expect(e.authorize(call('send_email', { to: 'x@example.org' }, undefined))).toMatchObject({
      obligations: { approval: 'required' },
      policyIds: expect.arrayContaining(['outside-needs-a-human']),
    });
  });
});
