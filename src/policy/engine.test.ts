import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { AuditInput } from '../audit/index.js';
import { toolDefaults } from '../config/constants.js';
import type { PolicyConfig } from '../config/policy-types.js';
import { isWardenError, WardenError } from '../errors.js';
import { ManualClock } from '../util/clock.js';
import { PolicyEngine, type PolicyEngineOptions } from './engine.js';
import type { AuthzInput } from './request.js';

const dir = mkdtempSync(join(tmpdir(), 'warden-engine-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const engines: PolicyEngine[] = [];
afterEach(() => {
  for (const e of engines.splice(0)) e.close();
});

const tools = { lookup_order: toolDefaults('low'), issue_refund: toolDefaults('high') };
const input: AuthzInput = {
  agent: {
    id: 'a1',
    type: 'support',
    version: '1',
    environment: 'test',
    owner: 'o',
    allowedTools: ['lookup_order', 'issue_refund'],
    deniedTools: [],
  },
  tool: { name: 'lookup_order', upstream: 'u' },
  arguments: {},
  session: { id: 's1', calls: 0 },
  clientIp: '127.0.0.1',
  now: Date.UTC(2026, 0, 12, 12),
};

const FORBID_LOOKUP =
  '@id("no-lookups") forbid (principal, action, resource == Warden::Tool::"lookup_order");';

async function engineWith(
  files: Record<string, string>,
  over: Partial<PolicyEngineOptions> = {},
  watch = false,
) {
  const paths = Object.entries(files).map(([name, text]) => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  });
  const audit: AuditInput[] = [];
  const policy: PolicyConfig = { files: paths, rules: [], arguments: {}, timezone: 'UTC', watch };
  const engine = await PolicyEngine.create({
    policy,
    tools,
    audit: async (e) => {
      audit.push(e);
    },
    clock: new ManualClock(),
    ...over,
  });
  engines.push(engine);
  return { engine, audit, paths };
}

const allowed = (e: PolicyEngine, i: AuthzInput = input) => e.authorize(i).allowed;

describe('policy engine', () => {
  it('denies by default, permits from the allow list, and lets a forbid win', async () => {
    const { engine } = await engineWith({ 'base.cedar': FORBID_LOOKUP });
    expect(engine.authorize({ ...input, tool: { name: 'issue_refund', upstream: 'u' } })).toEqual({
      allowed: true,
      policyIds: ['agent.allowedTools'],
      obligations: {},
      errors: [],
    });
    expect(engine.authorize(input)).toMatchObject({
      allowed: false,
      reason: 'forbid',
      policyIds: ['no-lookups'],
    });
    const stranger = { ...input, agent: { ...input.agent, allowedTools: [] } };
    expect(engine.authorize({ ...stranger, tool: { name: 'issue_refund', upstream: 'u' } })).toMatchObject({
      allowed: false,
      reason: 'not-permitted',
      policyIds: [],
    });
  });

  it('audits the start with the digest of the set in force', async () => {
    const { engine, audit } = await engineWith({ 'start.cedar': FORBID_LOOKUP });
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({
      event: 'POLICY_RELOADED',
      actorType: 'SYSTEM',
      result: 'success',
      data: { ok: true, trigger: 'start', digest: engine.current.digest, policyCount: 3 },
    });
  });

  it('refuses to start on an invalid set, naming every problem', async () => {
    const err = await engineWith({
      'bad.cedar': 'permit (principal, action, resource) when { nope };',
    }).catch((e) => e);
    expect(isWardenError(err, 'CONFIG_INVALID')).toBe(true);
    expect((err as WardenError).message).toMatch(/bad\.cedar:1:\d+: /);
  });

  it('answers a repeated request the same way, and never mixes up requests that differ in what policies read', async () => {
    const { engine } = await engineWith({
      'night.cedar':
        '@id("no-lookups-at-night") forbid (principal, action, resource == Warden::Tool::"lookup_order") when { context.time.hour >= 22 };',
    });
    const noon = input.now;
    const night = Date.UTC(2026, 0, 12, 23);
    const verdicts = [noon, noon, night, night, noon, night].map((now) => allowed(engine, { ...input, now }));
    expect(verdicts).toEqual([true, true, false, false, true, false]);
    // Another agent, same tool and time: its own lists decide, not the first agent's remembered answer.
    const stranger = { ...input, agent: { ...input.agent, id: 'a2', allowedTools: [] } };
    expect(allowed(engine, stranger)).toBe(false);
    expect(allowed(engine)).toBe(true);
  });

  it('swaps in a valid reload at once, and audits it', async () => {
    const { engine, audit, paths } = await engineWith({ 'swap.cedar': '' });
    const before = engine.current.digest;
    expect(allowed(engine)).toBe(true);
    writeFileSync(paths[0]!, FORBID_LOOKUP);
    const r = await engine.reload('sighup');
    expect(r).toMatchObject({ ok: true, trigger: 'sighup', policyCount: 3, errors: [] });
    expect(engine.current.digest).not.toBe(before);
    expect(allowed(engine)).toBe(false);
    expect(audit.at(-1)).toMatchObject({
      event: 'POLICY_RELOADED',
      actorId: 'policy:sighup',
      result: 'success',
      data: { ok: true, digest: engine.current.digest },
    });
  });

  it('keeps the running set when a reload is invalid, and says why in the log and the audit log', async () => {
    const logged: Array<{ obj: object; msg: string }> = [];
    const logger = {
      info() {},
      warn() {},
      error: (obj: object, msg: string) => logged.push({ obj, msg }),
    };
    const { engine, audit, paths } = await engineWith({ 'keep.cedar': FORBID_LOOKUP }, { logger });
    const digest = engine.current.digest;
    writeFileSync(paths[0]!, 'forbid (principal, action, resource) when { resource.nmae == "x" };');
    const r = await engine.reload('watch');
    expect(r.ok).toBe(false);
    expect(r.digest).toBe(digest);
    expect(r.errors[0]).toMatch(/keep\.cedar:1:\d+: policy "keep\.cedar#1": .*`nmae`/);
    expect(engine.current.digest).toBe(digest);
    expect(allowed(engine)).toBe(false); // still the old forbid
    expect(audit.at(-1)).toMatchObject({
      event: 'POLICY_RELOADED',
      result: 'failure',
      data: { ok: false, trigger: 'watch', digest, errors: r.errors },
    });
    expect(logged.at(-1)?.msg).toMatch(/previous set stays in force/);
  });

  it('keeps the running set when re-reading the config fails', async () => {
    const reloadPolicy = async (): Promise<PolicyConfig> => {
      throw new WardenError('CONFIG_INVALID', 'warden.yaml:3:5: policy.rules[0].effect: invalid option');
    };
    const { engine, audit } = await engineWith({ 'cfg.cedar': FORBID_LOOKUP }, { reloadPolicy });
    const r = await engine.reload();
    expect(r).toMatchObject({
      ok: false,
      errors: ['warden.yaml:3:5: policy.rules[0].effect: invalid option'],
    });
    expect(allowed(engine)).toBe(false);
    expect(audit.at(-1)?.result).toBe('failure');
  });

  it('reloads when a watched file changes', async () => {
    const { engine, paths, audit } = await engineWith({ 'watched.cedar': '' }, {}, true);
    expect(allowed(engine)).toBe(true);
    writeFileSync(paths[0]!, FORBID_LOOKUP);
    await expect.poll(() => allowed(engine), { timeout: 5000, interval: 50 }).toBe(false);
    expect(audit.at(-1)).toMatchObject({ event: 'POLICY_RELOADED', data: { ok: true, trigger: 'watch' } });
  });

  it('serialises concurrent reloads; each decision sees one whole set', async () => {
    const { engine, paths } = await engineWith({ 'race.cedar': '' });
    writeFileSync(paths[0]!, FORBID_LOOKUP);
    const results = await Promise.all([engine.reload(), engine.reload(), engine.reload()]);
    expect(results.map((r) => r.ok)).toEqual([true, true, true]);
    expect(new Set(results.map((r) => r.digest)).size).toBe(1);
    expect(allowed(engine)).toBe(false);
  });

  it('fails closed: a forbid that errors at run time denies, and a closed engine decides nothing', async () => {
    const overflow =
      '@id("overflow") forbid (principal, action, resource) when { context.session.calls * 4611686018427387904 > 0 };';
    const { engine } = await engineWith({ 'err.cedar': overflow });
    expect(allowed(engine)).toBe(true); // calls = 0: no overflow, the forbid does not apply
    const d = engine.authorize({ ...input, session: { id: 's1', calls: 3 } });
    expect(d).toMatchObject({ allowed: false, reason: 'forbid-error', policyIds: ['overflow'] });
    expect(d.errors[0]).toMatch(/^overflow: .*overflow/);
    engine.close();
    expect(() => engine.authorize(input)).toThrow(expect.objectContaining({ code: 'POLICY_UNAVAILABLE' }));
  });

  it('obligation policies add their annotations but never grant', async () => {
    const text = [
      '@id("watch-refunds") @obligation @approval("finance") @risk("medium") @ticket("FIN-1")',
      'permit (principal, action, resource == Warden::Tool::"issue_refund");',
      '@id("high") @obligation @risk("high") @approval("required")',
      'permit (principal, action, resource == Warden::Tool::"issue_refund");',
    ].join('\n');
    const { engine } = await engineWith({ 'obl.cedar': text });
    const refund = { ...input, tool: { name: 'issue_refund', upstream: 'u' } };
    expect(engine.authorize(refund)).toEqual({
      allowed: true,
      policyIds: ['agent.allowedTools', 'high', 'watch-refunds'],
      obligations: { approval: 'required', risk: 'high', ticket: 'FIN-1' },
      errors: [],
    });
    const stranger = { ...refund, agent: { ...refund.agent, allowedTools: [] } };
    expect(engine.authorize(stranger)).toMatchObject({ allowed: false, reason: 'not-permitted' });
  });

  it("evaluates an agent's own policies beside the shared ones, as one set", async () => {
    const text = [
      '@id("a1-no-refunds") forbid (principal == Warden::Agent::"a1", action, resource == Warden::Tool::"issue_refund");',
      '@id("a2-may-refund") permit (principal == Warden::Agent::"a2", action, resource == Warden::Tool::"issue_refund");',
      '@id("a2-refund-approval") @obligation @approval("required") permit (principal in Warden::Agent::"a2", action, resource);',
      '@id("a3-boom") forbid (principal == Warden::Agent::"a3", action, resource) when { context.session.calls * 4611686018427387904 > 0 };',
      '@id("everyone-reads") permit (principal, action, resource == Warden::Tool::"lookup_order");',
    ].join('\n');
    const { engine } = await engineWith({ 'slices.cedar': text });
    const refund = { ...input, tool: { name: 'issue_refund', upstream: 'u' } };
    const as = (id: string, allowedTools: string[] = []) => ({ ...input.agent, id, allowedTools });
    expect(engine.authorize({ ...refund, agent: as('a1', ['issue_refund']) })).toMatchObject({
      allowed: false,
      reason: 'forbid',
      policyIds: ['a1-no-refunds'],
    });
    expect(engine.authorize({ ...refund, agent: as('a2') })).toEqual({
      allowed: true,
      policyIds: ['a2-may-refund', 'a2-refund-approval'],
      obligations: { approval: 'required' },
      errors: [],
    });
    // Shared and own permits merge; an obligation from the agent's slice applies to a shared permit.
    expect(engine.authorize({ ...input, agent: as('a2', ['lookup_order']) })).toMatchObject({
      allowed: true,
      policyIds: ['a2-refund-approval', 'agent.allowedTools', 'everyone-reads'],
    });
    expect(engine.authorize({ ...refund, agent: as('a9') })).toMatchObject({
      allowed: false,
      reason: 'not-permitted',
    });
    expect(engine.authorize({ ...input, agent: as('a3'), session: { id: 's', calls: 2 } })).toMatchObject({
      allowed: false,
      reason: 'forbid-error',
      policyIds: ['a3-boom'],
    });
    // Reloads alternate cache ids; decisions stay right across several.
    for (let i = 0; i < 3; i++) expect((await engine.reload()).ok).toBe(true);
    expect(engine.authorize({ ...refund, agent: as('a1', ['issue_refund']) }).policyIds).toEqual([
      'a1-no-refunds',
    ]);
  });

  it('the basic engine holds the agent lists alone', () => {
    const e = PolicyEngine.basic();
    engines.push(e);
    expect(allowed(e)).toBe(true);
    expect(allowed(e, { ...input, agent: { ...input.agent, deniedTools: ['lookup_order'] } })).toBe(false);
    expect(e.current.policyCount).toBe(2);
  });
});
