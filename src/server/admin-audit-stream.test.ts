import { Hono } from 'hono';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDialect } from '../../test/helpers/dialects.js';
import { AuditLog } from '../audit/index.js';
import { toWardenError } from '../errors.js';
import type { Store } from '../store/index.js';
import { AuditStreams, mountAuditStream } from './admin-audit-stream.js';
import type { AdminHelpers } from './admin-tools.js';
import { errorResponse, type NodeBindings } from './request.js';

/** Operators are admin.ts's business: here every caller is one. */
const helpers: AdminHelpers = {
  asOperator: (_roles, fn) => async (c) => {
    try {
      return await fn(c, { id: 'carol', roles: ['auditor'] } as never, 'trace-test');
    } catch (e) {
      return errorResponse(c, toWardenError(e), 'trace-test');
    }
  },
  readBody: async () => ({}) as never,
  via: () => 'api',
};

/** Read `res`'s body until `enough(text)` holds or `ms` pass; then cancel it. */
async function readUntil(res: Response, enough: (text: string) => boolean, ms = 5_000): Promise<string> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  const end = Date.now() + ms;
  try {
    while (!enough(text) && Date.now() < end) {
      const r = await Promise.race([
        reader.read(),
        new Promise<'timeout'>((resolve) =>
          setTimeout(() => resolve('timeout'), Math.max(end - Date.now(), 1)),
        ),
      ]);
      if (r === 'timeout' || r.done) break;
      text += decoder.decode(r.value, { stream: true });
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  return text;
}

describeEachDialect('audit stream (in process)', (target) => {
  let store: Store;
  let log: AuditLog;
  let streams: AuditStreams;
  const app = new Hono<{ Bindings: NodeBindings }>();

  beforeAll(async () => {
    store = await target.open();
    log = new AuditLog(store);
    for (let i = 0; i < 7; i++)
      await log.append({ traceId: `t${i}`, event: 'TOOL_CALL', actorType: 'AI_AGENT' });
    streams = new AuditStreams({
      store,
      subscribe: (fn) => log.observe({ committed: () => fn() }),
      maxStreams: 1,
      heartbeatMs: 50,
      pollMs: 1_000,
      pageSize: 3,
    });
    mountAuditStream(app, streams, helpers);
  });
  afterAll(async () => {
    await streams?.close();
    await store?.close();
    await target.cleanup();
  });

  it('replays in pages from the start, sends heartbeats when idle, wakes at once on a commit here', async () => {
    const res = await app.request('/admin/v1/audit/stream?from=start');
    expect(res.status).toBe(200);
    // The poll is slow (1 s): the entry appended now arrives through the in-process wake-up.
    setTimeout(() => void log.append({ traceId: 'late', event: 'TOOL_DENIED', actorType: 'HUMAN' }), 150);
    const text = await readUntil(
      res,
      (t) => t.includes('id: 8\n') && (t.match(/: heartbeat/g) ?? []).length >= 2,
      900,
    );
    const ids = [...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
    expect(ids).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(text).toContain('event: entry\ndata: {"seq":8,');
    expect(text).toContain('"actorType":"HUMAN"');
    expect((text.match(/: heartbeat/g) ?? []).length).toBeGreaterThanOrEqual(2);
  });

  it('bounds open streams and refuses a bad Last-Event-ID', async () => {
    await new Promise((r) => setTimeout(r, 50));
    expect(streams.open).toBe(0);
    const one = await app.request('/admin/v1/audit/stream');
    expect(one.status).toBe(200);
    const two = await app.request('/admin/v1/audit/stream');
    expect(two.status).toBe(503);
    expect(((await two.json()) as { error: { code: string } }).error.code).toBe('AUDIT_STREAM_LIMIT');
    await readUntil(one, () => true, 10);
    await new Promise((r) => setTimeout(r, 50));
    expect(streams.open).toBe(0);
    const bad = await app.request('/admin/v1/audit/stream', { headers: { 'Last-Event-ID': 'abc' } });
    expect(bad.status).toBe(400);
  });
});
