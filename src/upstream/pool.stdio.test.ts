/**
 * The pool against the real support desk over stdio (spawned via
 * supportDeskCommand, so through tsx when running from source).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { supportDeskCommand } from '../../examples/support-desk/command.js';
import { isWardenError } from '../errors.js';
import { mapResolver, recordingLogger, stdioConfig } from './fixtures/helpers.js';
import { UpstreamPool } from './pool.js';

const KEY = 'sd-key-8c1f2e';

describe('stdio upstream: support desk', () => {
  let pool: UpstreamPool;
  const resolver = mapResolver({ DESK_KEY: KEY });

  beforeAll(async () => {
    pool = new UpstreamPool(
      [
        stdioConfig('desk', supportDeskCommand(), {
          // The desk refuses every call unless the gateway injected the right key.
          env: { SUPPORT_DESK_REQUIRE_KEY: KEY },
          credentials: { env: { SUPPORT_DESK_API_KEY: { env: 'DESK_KEY' } } },
        }),
      ],
      { resolveSecret: resolver },
    );
    await pool.start();
  });
  afterAll(() => pool.close());

  it('connects and publishes the six tools under their own names', () => {
    expect(pool.status()).toEqual([{ name: 'desk', transport: 'stdio', state: 'up', tools: 6 }]);
    const tools = pool.listTools();
    expect(tools.map((t) => t.name)).toEqual([
      'lookup_order',
      'check_shipping_status',
      'create_support_ticket',
      'issue_refund',
      'bulk_message',
      'delete_account',
    ]);
    expect(tools[0]).toMatchObject({ upstream: 'desk', upstreamName: 'lookup_order' });
    expect(tools[0]?.inputSchema).toMatchObject({ type: 'object' });
    expect(tools[0]?.outputSchema).toMatchObject({ type: 'object' });
    expect(tools[0]?.annotations).toMatchObject({ readOnlyHint: true });
    expect(pool.getTool('issue_refund')?.description).toContain('Refunds');
  });

  it('calls a tool with the injected credential (the desk requires it)', async () => {
    const r = await pool.callTool('lookup_order', { orderId: 'ORD-4F8K2P1Z' });
    expect(r.isError).toBeFalsy();
    expect(r.structuredContent).toMatchObject({ customer: { name: 'Maria Gonzalez' } });
    expect(resolver.calls).toBeGreaterThanOrEqual(1);
  });

  it('returns a tool error result as is, without throwing', async () => {
    const r = await pool.callTool('lookup_order', { orderId: 'ORD-00000000' });
    expect(r.isError).toBe(true);
  });

  it('throws TOOL_UNKNOWN for a name nobody publishes', async () => {
    const err = await pool.callTool('drop_tables', {}).catch((e: unknown) => e);
    expect(isWardenError(err, 'TOOL_UNKNOWN')).toBe(true);
  });

  it('serves 200 concurrent calls with large arguments on one client without MaxListenersExceededWarning', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      // One signal shared by every call (like a session's kill signal), and 4 KB bodies
      // that fill the child's stdin buffer: the two ways listeners piled up.
      const session = new AbortController();
      const body = 'x'.repeat(4000);
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          pool.callTool(
            'create_support_ticket',
            { subject: `Ticket ${i}`, body, priority: 'low' },
            { signal: session.signal },
          ),
        ),
      );
      expect(results.every((r) => !r.isError)).toBe(true);
      const ids = new Set(results.map((r) => (r.structuredContent as { ticketId: string }).ticketId));
      expect(ids.size).toBe(200);
      await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
  });
});

describe('stdio upstream: credentials', () => {
  it('without the injected key the desk refuses every call', async () => {
    const pool = new UpstreamPool(
      [stdioConfig('desk', supportDeskCommand(), { env: { SUPPORT_DESK_REQUIRE_KEY: KEY } })],
      { resolveSecret: mapResolver({}) },
    );
    try {
      await pool.start();
      const r = await pool.callTool('lookup_order', { orderId: 'ORD-4F8K2P1Z' });
      expect(r.isError).toBe(true);
      expect(JSON.stringify(r.content)).toContain('Unauthorized');
    } finally {
      await pool.close();
    }
  });

  it('an unresolvable credential keeps the upstream down (fail closed) without blocking start', async () => {
    const logger = recordingLogger();
    const pool = new UpstreamPool(
      [
        stdioConfig('desk', supportDeskCommand(), {
          credentials: { env: { SUPPORT_DESK_API_KEY: { env: 'MISSING' } } },
        }),
      ],
      { resolveSecret: mapResolver({}), logger, reconnect: { initialMs: 60_000 } },
    );
    try {
      await pool.start();
      const [s] = pool.status();
      expect(s?.state).toBe('down');
      expect(s?.lastError).toContain('MISSING');
      expect(logger.lines.some((l) => l.level === 'warn')).toBe(true);
    } finally {
      await pool.close();
    }
  });
});

describe('stdio upstreams: aggregation and isolation', () => {
  let pool: UpstreamPool;

  beforeAll(async () => {
    pool = new UpstreamPool(
      [
        stdioConfig('broken', { command: '/nonexistent/upstream-binary', args: [] }),
        stdioConfig('east', supportDeskCommand()),
        stdioConfig('west', supportDeskCommand()),
      ],
      { resolveSecret: mapResolver({}), reconnect: { initialMs: 60_000 } },
    );
    await pool.start();
  });
  afterAll(() => pool.close());

  it('a failing upstream does not block the others', () => {
    const byName = Object.fromEntries(pool.status().map((s) => [s.name, s]));
    expect(byName['broken']).toMatchObject({ state: 'down', tools: 0 });
    expect(byName['broken']?.lastError).toMatch(/connect failed/);
    expect(byName['east']).toMatchObject({ state: 'up', tools: 6 });
    expect(byName['west']).toMatchObject({ state: 'up', tools: 6 });
  });

  it('prefixes every shared name with its upstream', () => {
    const names = pool.listTools().map((t) => t.name);
    expect(names).toHaveLength(12);
    expect(names).toContain('east__lookup_order');
    expect(names).toContain('west__lookup_order');
    expect(names).not.toContain('lookup_order');
    expect(pool.getTool('west__issue_refund')).toMatchObject({
      upstream: 'west',
      upstreamName: 'issue_refund',
    });
  });

  it('routes each prefixed call to its own upstream', async () => {
    await pool.callTool('east__delete_account', { customerId: 'CUS-10001', confirm: true });
    const east = await pool.callTool('east__lookup_order', { orderId: 'ORD-4F8K2P1Z' });
    const west = await pool.callTool('west__lookup_order', { orderId: 'ORD-4F8K2P1Z' });
    expect(east.structuredContent).toMatchObject({ customer: { name: '[deleted]' } });
    expect(west.structuredContent).toMatchObject({ customer: { name: 'Maria Gonzalez' } });
  });

  it('rejects duplicate upstream names at construction', () => {
    const make = () =>
      new UpstreamPool([stdioConfig('a', supportDeskCommand()), stdioConfig('a', supportDeskCommand())], {
        resolveSecret: mapResolver({}),
      });
    expect(make).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
  });
});
