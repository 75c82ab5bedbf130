import { describe, expect, it } from 'vitest';
import { loadYaml } from '../../test/helpers/config-yaml.js';
import { embeddedDefault } from './defaults.js';
import { breakersSchema } from './schema-breakers.js';

const MIN = 60_000;

function issues(value: unknown): string[] {
  const r = breakersSchema.safeParse(value);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

const DEFAULTS = {
  session: { maxConsecutiveFailures: 5, maxCost: null, maxWallTimeMs: null, coolDownMs: 5 * MIN },
  agent: { maxConsecutiveFailures: 20, maxCost: null, costWindowMs: 24 * 60 * MIN, coolDownMs: 15 * MIN },
  agentTypes: {},
  countToolErrors: false,
};

describe('breakers: schema', () => {
  it('is on for failures by default, in the file and in the embedded default', () => {
    expect(breakersSchema.parse(undefined)).toEqual(DEFAULTS);
    expect(embeddedDefault({ cwd: '/tmp', now: 0 }).breakers).toEqual(DEFAULTS);
  });

  it('takes durations, costs and null (off; coolDown null = until an operator resets)', () => {
    expect(
      breakersSchema.parse({
        session: { maxConsecutiveFailures: null, maxCost: 2.5, maxWallTime: '1h', coolDown: null },
        agent: { maxCost: 100, costWindow: '1h', coolDown: 30_000 },
        countToolErrors: true,
      }),
    ).toEqual({
      session: { maxConsecutiveFailures: null, maxCost: 2.5, maxWallTimeMs: 60 * MIN, coolDownMs: null },
      agent: { maxConsecutiveFailures: 20, maxCost: 100, costWindowMs: 60 * MIN, coolDownMs: 30_000 },
      agentTypes: {},
      countToolErrors: true,
    });
  });

  it('keeps only the keys an agent-type override gives', () => {
    const c = breakersSchema.parse({
      agentTypes: { 'batch-job': { session: { maxConsecutiveFailures: null }, agent: { coolDown: null } } },
    });
    expect(c.agentTypes).toEqual({
      'batch-job': { session: { maxConsecutiveFailures: null }, agent: { coolDownMs: null } },
    });
  });

  it('refuses nonsense with the path that is wrong', () => {
    expect(issues({ session: { maxConsecutiveFailures: 0 } })).toEqual([
      'session.maxConsecutiveFailures: Too small: expected number to be >=1',
    ]);
    expect(issues({ session: { maxCost: -1 } })[0]).toMatch(/^session\.maxCost: /);
    expect(issues({ session: { coolDown: '10ms' } })).toEqual([
      'session.coolDown: expected at least 1s, got "10ms"',
    ]);
    expect(issues({ agent: { costWindow: 'soon' } })[0]).toMatch(/^agent\.costWindow: expected a duration/);
    expect(issues({ agent: { maxWallTime: '1h' } })[0]).toMatch(/^agent: /);
    expect(issues({ sesion: {} })).toHaveLength(1);
    expect(issues({ agentTypes: { x: { session: { coolDown: 'x' } } } })[0]).toMatch(
      /^agentTypes\.x\.session\.coolDown: /,
    );
  });

  it('loads from a file, with a hint for a misspelt key', async () => {
    const ok = await loadYaml('breakers:\n  session:\n    coolDown: null\n    maxWallTime: 10m\n');
    if ('error' in ok) throw new Error(ok.error);
    expect(ok.config.breakers.session).toMatchObject({ coolDownMs: null, maxWallTimeMs: 10 * MIN });
    const bad = await loadYaml('breakers:\n  session:\n    maxConsecutiveFailure: 3\n');
    expect('error' in bad ? bad.error : '').toMatch(/breakers\.session.*maxConsecutiveFailures/s);
  });
});
