/**
 * The pool against the test fixture over stdio: pagination, env isolation,
 * timeouts, aborts, tool-list changes, bad output, crashes and reconnects.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isWardenError, WardenError } from '../errors.js';
import { testServerCommand } from './fixtures/command.js';
import { eventually, mapResolver, stdioConfig, waitFor } from './fixtures/helpers.js';
import { UpstreamPool } from './pool.js';
import type { AggregatedTool } from './types.js';

async function stats(pool: UpstreamPool, name = 'stats') {
  const r = await pool.callTool(name, {});
  return r.structuredContent as { calls: number; cancelled: number; pid: number };
}

async function failure(p: Promise<unknown>): Promise<WardenError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  if (!(e instanceof WardenError)) throw new Error(`expected a WardenError, got ${String(e)}`);
  return e;
}

describe('stdio fixture', () => {
  let pool: UpstreamPool;
  const changes: AggregatedTool[][] = [];

  beforeAll(async () => {
    // A canary in Warden's own environment: the child must not see it.
    process.env['WARDEN_LEAK_CANARY'] = 'warden-internal-secret';
    pool = new UpstreamPool(
      [
        stdioConfig('fx', testServerCommand(), {
          env: { FIXTURE_PAGE_SIZE: '3', VISIBLE_SETTING: 'on' },
          credentials: { env: { FX_TOKEN: { env: 'FX' } } },
          timeoutMs: 5_000,
        }),
      ],
      { resolveSecret: mapResolver({ FX: 'fx-secret' }) },
    );
    pool.onToolsChanged((tools) => changes.push(tools));
    await pool.start();
  });
  afterAll(async () => {
    delete process.env['WARDEN_LEAK_CANARY'];
    await pool.close();
  });

  it('lists every page of a paginated tools/list', () => {
    expect(pool.listTools().map((t) => t.name)).toEqual([
      'echo',
      'sleep',
      'stats',
      'crash',
      'add_tool',
      'env_has',
      'fail',
      'bad_output',
    ]);
    expect(changes).toHaveLength(1);
  });

  it('gives the child a minimal env plus its config and credentials, not Warden’s env', async () => {
    const has = async (name: string) =>
      ((await pool.callTool('env_has', { name })).structuredContent as { present: boolean }).present;
    expect(await has('WARDEN_LEAK_CANARY')).toBe(false);
    expect(await has('VISIBLE_SETTING')).toBe(true);
    expect(await has('FX_TOKEN')).toBe(true);
    expect(await has('PATH')).toBe(true);
  });

  it('returns tool errors as results and rejects output that breaks the output schema', async () => {
    expect((await pool.callTool('fail', {})).isError).toBe(true);
    expect((await pool.callTool('echo', { text: 'hi' })).structuredContent).toEqual({ text: 'hi' });
    const e = await failure(pool.callTool('bad_output', {}));
    expect(e.code).toBe('UPSTREAM_ERROR');
    expect(e.detail).toContain('bad_output');
  });

  it('times out with UPSTREAM_TIMEOUT and cancels the request at the upstream', async () => {
    const before = await stats(pool);
    const started = Date.now();
    const e = await failure(pool.callTool('sleep', { ms: 10_000 }, { timeoutMs: 200 }));
    expect(e.code).toBe('UPSTREAM_TIMEOUT');
    expect(e.status).toBe(504);
    expect(Date.now() - started).toBeLessThan(3_000);
    await eventually(
      async () => (await stats(pool)).cancelled > before.cancelled,
      5_000,
      'upstream cancellation',
    );
  });

  it('uses the configured per-call timeout by default', async () => {
    const short = new UpstreamPool([stdioConfig('fx', testServerCommand(), { timeoutMs: 150 })], {
      resolveSecret: mapResolver({}),
    });
    try {
      await short.start();
      const e = await failure(short.callTool('sleep', { ms: 5_000 }));
      expect(e.code).toBe('UPSTREAM_TIMEOUT');
      expect((await short.callTool('sleep', { ms: 10 })).isError).toBeFalsy();
    } finally {
      await short.close();
    }
  });

  it('propagates an abort to the upstream', async () => {
    const before = await stats(pool);
    const ac = new AbortController();
    const call = pool.callTool('sleep', { ms: 10_000 }, { signal: ac.signal });
    setTimeout(() => ac.abort(), 100);
    const e = await failure(call);
    expect(e.code).toBe('UPSTREAM_ERROR');
    expect(e.message).toBe('Upstream call aborted');
    await eventually(
      async () => (await stats(pool)).cancelled > before.cancelled,
      5_000,
      'upstream cancellation',
    );
  });

  it('keeps a WardenError abort reason (kill switch) and maps a deadline signal to a timeout', async () => {
    const kill = new AbortController();
    const call = pool.callTool('sleep', { ms: 10_000 }, { signal: kill.signal });
    kill.abort(new WardenError('SESSION_REVOKED', 'Session revoked'));
    expect((await failure(call)).code).toBe('SESSION_REVOKED');

    const e = await failure(pool.callTool('sleep', { ms: 10_000 }, { signal: AbortSignal.timeout(100) }));
    expect(e.code).toBe('UPSTREAM_TIMEOUT');

    const pre = await failure(pool.callTool('echo', { text: 'x' }, { signal: AbortSignal.abort() }));
    expect(pre.message).toBe('Upstream call aborted');
  });

  it('refreshes the tool list on notifications/tools/list_changed', async () => {
    const seen = changes.length;
    await pool.callTool('add_tool', { name: 'late_tool' });
    await waitFor(() => pool.getTool('late_tool') !== undefined, 5_000, 'late_tool');
    expect(changes.length).toBeGreaterThan(seen);
    expect(changes.at(-1)?.some((t) => t.name === 'late_tool')).toBe(true);
    expect(pool.status()[0]?.tools).toBe(9);
    const r = await pool.callTool('late_tool', {});
    expect(r.content).toEqual([{ type: 'text', text: 'hello from late_tool' }]);
  });
});

describe('stdio fixture: crash and reconnect', () => {
  let pool: UpstreamPool;

  beforeAll(async () => {
    pool = new UpstreamPool([stdioConfig('fx', testServerCommand())], {
      resolveSecret: mapResolver({}),
      reconnect: { initialMs: 300, maxMs: 2_000 },
    });
    await pool.start();
  });
  afterAll(() => pool.close());

  it('marks the upstream down when the child dies, then reconnects and serves again', async () => {
    const { pid } = await stats(pool);

    const crash = await failure(pool.callTool('crash', {}));
    expect(crash.code).toBe('UPSTREAM_ERROR');
    expect(crash.message).toBe('Upstream connection lost');

    // Down now: calls fail fast, and the tools stay published so names do not flap.
    expect(pool.status()[0]?.state).not.toBe('up');
    const down = await failure(pool.callTool('echo', { text: 'x' }));
    expect(down.code).toBe('UPSTREAM_UNAVAILABLE');
    expect(down.status).toBe(503);
    expect(pool.getTool('echo')).toBeDefined();

    await waitFor(() => pool.status()[0]?.state === 'up', 30_000, 'reconnect');
    const after = await stats(pool);
    expect(after.pid).not.toBe(pid);
    expect((await pool.callTool('echo', { text: 'back' })).structuredContent).toEqual({ text: 'back' });
    expect(pool.status()[0]).toEqual({ name: 'fx', transport: 'stdio', state: 'up', tools: 8 });
  });

  it('after close, calls fail with UPSTREAM_UNAVAILABLE and nothing reconnects', async () => {
    await pool.close();
    const e = await failure(pool.callTool('echo', { text: 'x' }));
    expect(isWardenError(e, 'UPSTREAM_UNAVAILABLE')).toBe(true);
    await new Promise((r) => setTimeout(r, 500));
    expect(pool.status()[0]?.state).toBe('down');
  });
});
