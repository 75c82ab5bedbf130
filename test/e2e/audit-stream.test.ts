/**
 * Issue #9, streaming for SIEMs: `GET /admin/v1/audit/stream` through a real
 * gateway and a real HTTP client reading the body as it arrives. Admins and
 * auditors only; entries arrive in order as `id: <seq>` / `event: entry`;
 * `Last-Event-ID` resumes with no gap and no repeat; filters apply; the
 * gateway's cap on open streams answers 503 AUDIT_STREAM_LIMIT.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { AuditEntry, AuditInput } from '../../src/audit/index.js';
import { expectCleanError, ORDER, request, withApprovals } from '../helpers/approvals.js';
import { describeEachDialect } from '../helpers/dialects.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

interface SseEvent {
  id?: string;
  event?: string;
  data: string;
}

/** An SSE connection read with fetch: parsed events as they come, and comments counted. */
async function connect(url: string, token: string | undefined, headers: Record<string, string> = {}) {
  const abort = new AbortController();
  const res = await fetch(url, {
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
    signal: abort.signal,
  });
  const events: SseEvent[] = [];
  let comments = 0;
  let ended = false;
  let failed = false;
  const reading = (async () => {
    if (!res.ok || !res.body) return;
    const decoder = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of res.body) {
        buf += decoder.decode(chunk as Uint8Array, { stream: true });
        for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const ev: SseEvent = { data: '' };
          let isComment = true;
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) continue;
            isComment = false;
            const [k, ...rest] = line.split(':');
            const v = rest.join(':').replace(/^ /, '');
            if (k === 'id') ev.id = v;
            else if (k === 'event') ev.event = v;
            else if (k === 'data') ev.data += v;
          }
          if (isComment) comments++;
          else events.push(ev);
        }
      }
    } catch {
      // aborted by the test, or the connection was cut
      failed = true;
    }
    ended = true;
  })();
  return {
    res,
    events,
    entries: () => events.filter((e) => e.event === 'entry').map((e) => JSON.parse(e.data) as AuditEntry),
    comments: () => comments,
    ended: () => ended,
    /** The body ended with an error (cut), not with the end of the response. */
    failed: () => failed,
    /** Wait until `n` entries arrived (bounded). */
    async waitFor(n: number, ms = 10_000) {
      const end = Date.now() + ms;
      while (events.filter((e) => e.event === 'entry').length < n) {
        if (Date.now() > end || ended) throw new Error(`got ${events.length} events, wanted ${n} entries`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    async close() {
      abort.abort();
      await reading;
    },
  };
}

function note(tag: string, extra: Partial<AuditInput> = {}): AuditInput {
  return { traceId: `stream-${tag}`, event: 'POLICY_RELOADED', actorType: 'SYSTEM', data: { tag }, ...extra };
}

describeEachDialect('audit SSE stream', (target) => {
  let t: TestGateway | undefined;
  let url: string;
  const tokens: Record<string, string> = {};
  let agentToken: string;

  beforeAll(async () => {
    t = await startTestGateway(target, (config) => withApprovals(config));
    url = `${t.gw.url}/admin/v1/audit/stream`;
    for (const id of ['root', 'carol', 'alice'])
      tokens[id] = (await t.gw.operatorTokens.issue(id, 3_600_000)).token;
    agentToken = await t.operatorToken('demo-support');
  }, 60_000);
  afterAll(async () => {
    await t?.close();
    await target.cleanup();
  });

  it('admins and auditors only: an agent token and an approver are refused', async () => {
    expectCleanError(await request(url, { token: agentToken }), 403, 'AGENT_TOKEN_REFUSED');
    expectCleanError(await request(url, { token: tokens.alice }), 403, 'APPROVER_FORBIDDEN');
    expectCleanError(await request(url, {}), 401, 'OPERATOR_UNAUTHENTICATED');
    expectCleanError(await request(`${url}?event=nope`, { token: tokens.carol }), 400, 'INVALID_REQUEST');
    for (const who of ['carol', 'root']) {
      const s = await connect(url, tokens[who]);
      expect(s.res.status).toBe(200);
      expect(s.res.headers.get('content-type')).toContain('text/event-stream');
      await s.close();
    }
  });

  it('streams the entries of calls made after connecting, in order, with the actor type', async () => {
    const s = await connect(url, tokens.carol);
    try {
      const head = (await t!.gw.audit.head()).seq;
      for (let i = 0; i < 3; i++) {
        const r = await request(`${t!.gw.url}/v1/tool-calls`, {
          token: agentToken,
          json: { toolName: 'lookup_order', parameters: { orderId: ORDER }, traceId: `stream-call-${i}` },
        });
        expect(r.status, r.text).toBe(200);
      }
      const now = (await t!.gw.audit.head()).seq;
      await s.waitFor(now - head);
      const got = s.entries();
      expect(got.map((e) => e.seq)).toEqual(Array.from({ length: now - head }, (_, i) => head + 1 + i));
      expect(s.events.filter((e) => e.event === 'entry').map((e) => e.id)).toEqual(
        got.map((e) => String(e.seq)),
      );
      const calls = got.filter((e) => e.event === 'TOOL_CALL' && e.traceId.startsWith('stream-call-'));
      expect(calls.length).toBeGreaterThanOrEqual(3);
      expect(calls.every((e) => e.actorType === 'AI_AGENT' && e.agentId === 'demo-support')).toBe(true);
      // Exactly as stored: the chain links.
      for (let i = 1; i < got.length; i++) expect(got[i]!.prevHash).toBe(got[i - 1]!.hash);
      expect(got[0]).toEqual((await t!.gw.audit.read({ afterSeq: head, limit: 1 }))[0]);
    } finally {
      await s.close();
    }
  });

  it('Last-Event-ID resumes without gaps or duplicates (and wins over ?after)', async () => {
    const first = await connect(url, tokens.carol);
    const head = (await t!.gw.audit.head()).seq;
    for (let i = 0; i < 5; i++) await t!.gw.audit.append(note(`a${i}`));
    await first.waitFor(5);
    const seen = first.entries().slice(0, 3);
    await first.close();
    // Appended while disconnected.
    for (let i = 0; i < 4; i++) await t!.gw.audit.append(note(`b${i}`));
    const resumed = await connect(`${url}?after=1`, tokens.carol, {
      'Last-Event-ID': String(seen.at(-1)!.seq),
    });
    try {
      await resumed.waitFor(6);
      const all = [...seen, ...resumed.entries()].map((e) => e.seq);
      expect(all).toEqual(Array.from({ length: 9 }, (_, i) => head + 1 + i));
    } finally {
      await resumed.close();
    }
  });

  it('filters by event, agent and session; ?from=start replays from the beginning', async () => {
    const head = (await t!.gw.audit.head()).seq;
    const filtered = await connect(`${url}?event=AGENT_UPDATED,SESSION_REVOKED&agent=analyst-1`, tokens.root);
    const fromStart = await connect(`${url}?from=start&event=POLICY_RELOADED`, tokens.root);
    const bySession = await connect(`${url}?session=ses_stream_x`, tokens.root);
    try {
      await t!.gw.audit.append(note('f1', { event: 'AGENT_UPDATED', agentId: 'demo-support' }));
      await t!.gw.audit.append(note('f2', { event: 'AGENT_UPDATED', agentId: 'analyst-1' }));
      await t!.gw.audit.append(
        note('f3', { event: 'TOOL_CALL', agentId: 'analyst-1', sessionId: 'ses_stream_x' }),
      );
      await t!.gw.audit.append(note('f4', { event: 'SESSION_REVOKED', agentId: 'analyst-1' }));
      await filtered.waitFor(2);
      await bySession.waitFor(1);
      expect(filtered.entries().map((e) => [e.seq, e.event, e.traceId])).toEqual([
        [head + 2, 'AGENT_UPDATED', 'stream-f2'],
        [head + 4, 'SESSION_REVOKED', 'stream-f4'],
      ]);
      expect(bySession.entries().map((e) => e.traceId)).toEqual(['stream-f3']);
      // From the start: every POLICY_RELOADED entry so far (the notes of the resume test: 9).
      await fromStart.waitFor(9);
      const replay = fromStart.entries();
      expect(replay.every((e) => e.event === 'POLICY_RELOADED')).toBe(true);
      expect(replay.map((e) => e.seq)).toEqual([...replay.map((e) => e.seq)].sort((a, b) => a - b));
      expect(replay[0]!.seq).toBeLessThanOrEqual(head);
    } finally {
      await Promise.all([filtered.close(), fromStart.close(), bySession.close()]);
    }
  });

  it('caps open streams: the one too many gets 503 AUDIT_STREAM_LIMIT; a freed place is reusable', async () => {
    const open = await Promise.all(Array.from({ length: 32 }, () => connect(url, tokens.carol)));
    try {
      expect(open.every((s) => s.res.status === 200)).toBe(true);
      const refused = await request(url, { token: tokens.carol });
      expectCleanError(refused, 503, 'AUDIT_STREAM_LIMIT');
      expect(refused.headers.get('retry-after')).toBe('5');
      await open.pop()!.close();
      // The server notices the closed connection shortly after: then the place is free again.
      const deadline = Date.now() + 5_000;
      let status = 0;
      while (status !== 200 && Date.now() < deadline) {
        const s = await connect(url, tokens.carol);
        status = s.res.status;
        await s.close();
        if (status !== 200) await new Promise((r) => setTimeout(r, 50));
      }
      expect(status).toBe(200);
    } finally {
      await Promise.all(open.map((s) => s.close()));
    }
    await new Promise((r) => setTimeout(r, 200));
    expect(t!.gw.auditStreams.open).toBe(0);
  });

  it('a stream ends cleanly when the gateway closes', async () => {
    const s = await connect(url, tokens.carol);
    expect(s.res.status).toBe(200);
    const closing = t!.close();
    t = undefined;
    await closing;
    const end = Date.now() + 5_000;
    while (!s.ended() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    expect(s.ended()).toBe(true);
    expect(s.failed()).toBe(false);
    await s.close();
  });
});
