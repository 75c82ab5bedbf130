/**
 * Upstream misbehaviour (issue #10, "Bad input"): an upstream that breaks the
 * protocol gives the agent a clear error, leaves other sessions unaffected and
 * leaks nothing between sessions. A real gateway (real HTTP, real store) in
 * front of hand-written node:http upstreams (test/helpers/raw-upstream.ts) that
 * misbehave on purpose — in-process, and one in a child process that is killed
 * mid-call — plus a well-behaved SDK upstream. Agents use the official SDK
 * client. For every case: the error the agent gets, a concurrent well-behaved
 * session that keeps working, the audit outcome, and the upstream still usable.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEntry } from '../../src/audit/index.js';
import { toolDefaults } from '../../src/config/constants.js';
import type { HttpUpstreamConfig } from '../../src/config/types.js';
import { MAX_INSPECT_CHARS, UNINSPECTED } from '../../src/inspect/redact.js';
import { dataOf, wardenError } from '../helpers/approvals.js';
import { STACK_FRAME } from '../helpers/cli-process.js';
import {
  type ContentUpstream,
  httpUpstream,
  startContentUpstream,
  stringTool,
} from '../helpers/content-upstream.js';
import { makeTarget } from '../helpers/dialects.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import {
  RAW_TOOLS,
  type RawCall,
  type RawUpstream,
  rawUpstreamCommand,
  startRawUpstream,
} from '../helpers/raw-upstream.js';

const AGENT = 'misbehaviour-agent';
/** The per-call timeout of the misbehaving upstreams `raw` and `proc`. */
const TIMEOUT_MS = 1_000;
/** `long_*` tools: the same misbehaviour behind an upstream with time to spare (floods, huge results). */
const LONG_TIMEOUT_MS = 15_000;
/**
 * maxResultBytes of `long`: above its 20,000-notification flood (about 2.5 MB), and far enough
 * below the 20 MB `huge` result that the upstream cannot have written it all into the socket
 * buffers when the gateway hangs up.
 */
const LONG_MAX_RESULT_BYTES = 8 * 2 ** 20;
const UPSTREAM_CODES = ['UPSTREAM_ERROR', 'UPSTREAM_TIMEOUT', 'UPSTREAM_UNAVAILABLE'];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` until it returns something, every 25 ms, for at most `ms`. */
async function eventually<T>(probe: () => T | undefined | Promise<T | undefined>, ms = 5_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`not within ${ms} ms`);
    await sleep(25);
  }
}

const textOf = (r: CallToolResult) =>
  r.content.map((c) => (c.type === 'text' ? c.text : `[${c.type}]`)).join('');

/** The raw upstream in a child process, so it can really die mid-call. */
interface ChildUpstream {
  url: string;
  port: number;
  proc: ChildProcess;
  /** Names of the calls it reported, in order. */
  calls: string[];
  kill(): Promise<void>;
}

async function startChildUpstream(port = 0): Promise<ChildUpstream> {
  const { command, args } = rawUpstreamCommand();
  const proc = spawn(command, [...args, String(port), 'proc_'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const calls: string[] = [];
  let resolveListening: (port: number) => void = () => {};
  const listening = new Promise<number>((resolve) => {
    resolveListening = resolve;
  });
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    const e = JSON.parse(line) as { event: string; port?: number; name?: string };
    if (e.event === 'listening') resolveListening(e.port!);
    if (e.event === 'call') calls.push(e.name!);
  });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const bound = await Promise.race([
    listening,
    exited.then(() => {
      throw new Error('raw upstream child exited before listening');
    }),
    sleep(30_000).then(() => {
      throw new Error('raw upstream child did not listen within 30 s');
    }),
  ]);
  return {
    url: `http://127.0.0.1:${bound}/mcp`,
    port: bound,
    proc,
    calls,
    async kill() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
}

describe('upstream misbehaviour (issue #10)', () => {
  const target = makeTarget('sqlite');
  let t: TestGateway;
  let raw: RawUpstream;
  let long: RawUpstream;
  let good: ContentUpstream;
  let child: ChildUpstream;

  beforeAll(async () => {
    [raw, long, good, child] = await Promise.all([
      startRawUpstream(),
      startRawUpstream(0, () => {}, 'long_'),
      startContentUpstream({
        echo: {
          tool: stringTool('echo', ['text']),
          respond: (a) => ({ content: [{ type: 'text', text: `echo:${String(a.text)}` }] }),
        },
      }),
      startChildUpstream(),
    ]);
    t = await startTestGateway(target, (config) => {
      config.upstreams = [
        httpUpstream('good', good.url),
        httpUpstream('raw', raw.url, TIMEOUT_MS),
        {
          ...(httpUpstream('long', long.url, LONG_TIMEOUT_MS) as HttpUpstreamConfig),
          maxResultBytes: LONG_MAX_RESULT_BYTES,
        },
        httpUpstream('proc', child.url, TIMEOUT_MS),
      ];
      const names = ['echo', ...RAW_TOOLS.flatMap((x) => [x.name, `long_${x.name}`, `proc_${x.name}`])];
      for (const name of names) config.tools[name] = toolDefaults('low');
      const demo = config.agents.find((a) => a.id === 'demo-support')!;
      config.agents.push({
        ...demo,
        id: AGENT,
        type: 'batch',
        allowedTools: names,
        deniedTools: [],
        maxConcurrentSessions: 500,
        constraints: { maxToolCalls: 10_000, allowedCidrs: ['127.0.0.0/8', '::1/128'] },
      });
      config.tokens.maxToolCalls = 10_000;
      // Failures are the point here: the breakers must not turn them into CIRCUIT_OPEN.
      config.breakers.session = { ...config.breakers.session, maxConsecutiveFailures: null };
      config.breakers.agent = { ...config.breakers.agent, maxConsecutiveFailures: null };
    });
    await eventually(() => (t.gw.pool.status().every((u) => u.state === 'up') ? true : undefined), 15_000);
  }, 60_000);

  afterAll(async () => {
    await t?.close();
    await Promise.all([raw?.close(), long?.close(), good?.close(), child?.kill()]);
    await target.cleanup();
  });

  /** A fresh agent session with its own MCP session. */
  const session = async (): Promise<Client> => t.mcp(await t.operatorToken(AGENT));

  async function call(client: Client, name: string, args: Record<string, unknown> = {}) {
    const t0 = performance.now();
    const r = (await client.callTool({ name, arguments: args })) as CallToolResult;
    return { r, ms: performance.now() - t0 };
  }

  /** The agent got an error it can act on: a tool error naming the code and the trace, and nothing else. */
  function expectCleanError(r: CallToolResult, codes: string[] = UPSTREAM_CODES) {
    const shown = JSON.stringify(r);
    expect(r.isError, shown.slice(0, 300)).toBe(true);
    const error = wardenError(r);
    expect(codes, shown.slice(0, 300)).toContain(error?.code);
    expect(error?.traceId).toMatch(/^[A-Za-z0-9._:-]{8,128}$/);
    expect(textOf(r)).toContain(error!.code);
    expect(textOf(r)).toContain(error!.traceId);
    // Short, and none of the upstream's garbage, addresses or our stack in it.
    expect(shown.length).toBeLessThan(1_000);
    expect(shown).not.toMatch(STACK_FRAME);
    expect(shown).not.toMatch(/node_modules|\.ts:\d+|127\.0\.0\.1|STRAY|not json|huge-data/);
    return error!;
  }

  /** The outcome entry of the call `traceId` (written on the next flush: polled). */
  const outcomeOf = (traceId: string): Promise<AuditEntry> =>
    eventually(async () =>
      (await t.gw.audit.read({ traceId, event: 'TOOL_CALL', limit: 20 })).find(
        (e) => dataOf(e).phase === 'outcome',
      ),
    );

  async function expectAuditedFailure(traceId: string, code: string) {
    const entry = await outcomeOf(traceId);
    expect(entry.agentId).toBe(AGENT);
    expect(entry.result).toBe(code === 'UPSTREAM_TIMEOUT' ? 'timeout' : 'failure');
    expect(dataOf(entry).errorCode).toBe(code);
    return entry;
  }

  /**
   * Another agent session calling well-behaved tools in a loop: `echo` on another
   * upstream and `raw_echo` on the misbehaving one. Every answer must be its own.
   */
  function bystander(tools = ['echo', 'raw_echo']) {
    let stopping = false;
    let rounds = 0;
    const problems: string[] = [];
    const running = (async () => {
      const client = await session();
      for (let i = 0; !stopping && i < 2_000; i++) {
        for (const name of tools) {
          const text = `bystander-${i}-${name}`;
          try {
            const { r } = await call(client, name, { text });
            const got = textOf(r);
            if (r.isError || got !== `${name}:${text}`) problems.push(`${name}: ${got.slice(0, 200)}`);
          } catch (e) {
            problems.push(`${name}: ${(e as Error).message.slice(0, 200)}`);
          }
        }
        rounds++;
        await sleep(5);
      }
    })();
    return {
      /** Stops the loop; resolves to the rounds done and the problems seen. */
      async stop() {
        stopping = true;
        await running;
        return { rounds, problems };
      },
    };
  }

  /** The session that misbehaved is still fine too, and so is the upstream. */
  async function expectStillServing(client: Client, tool = 'raw_echo') {
    const { r } = await call(client, tool, { text: 'after' });
    expect([r.isError ?? false, textOf(r)]).toEqual([false, `${tool.replace(/^(long|proc)_/, '')}:after`]);
  }

  it('a 200 body that is not JSON-RPC → UPSTREAM_ERROR at once, audited; the upstream stays up', async () => {
    const client = await session();
    const by = bystander();
    for (const kind of ['not-json', 'not-jsonrpc', 'truncated', 'bad-result', 'empty']) {
      const { r, ms } = await call(client, 'malformed', { kind });
      const error = expectCleanError(r, ['UPSTREAM_ERROR']);
      expect(ms, kind).toBeLessThan(TIMEOUT_MS); // refused as malformed, not waited out
      await expectAuditedFailure(error.traceId, 'UPSTREAM_ERROR');
    }
    expect(await by.stop()).toMatchObject({ problems: [] });
    expect(t.gw.pool.status().find((u) => u.name === 'raw')?.state).toBe('up');
    await expectStillServing(client);
  });

  it('an answer for an id nobody asked is dropped: the call times out cleanly, no session receives it', async () => {
    const [client, other] = await Promise.all([session(), session()]);
    const by = bystander();
    // Another session's call is in flight on the same upstream connection when the stray answer arrives.
    const [stray, own] = await Promise.all([
      call(client, 'wrong_id', { mode: 'never' }),
      call(other, 'slow', { ms: '300', text: 'mine' }),
    ]);
    expect([own.r.isError ?? false, textOf(own.r)]).toEqual([false, 'slow:mine']);
    const error = expectCleanError(stray.r, ['UPSTREAM_TIMEOUT']);
    expect(stray.ms).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
    expect(stray.ms).toBeLessThan(TIMEOUT_MS + 2_000);
    await expectAuditedFailure(error.traceId, 'UPSTREAM_TIMEOUT');
    // The gateway told the upstream it gave up on the real request.
    const sent = raw.callsOf('wrong_id').at(-1)!;
    await eventually(() => (raw.cancelled.includes(sent.id) ? true : undefined));
    expect(await by.stop()).toMatchObject({ problems: [] });
    await expectStillServing(client);
  });

  it('stray answers before the real one are ignored; the real one is delivered', async () => {
    const client = await session();
    const by = bystander();
    const { r, ms } = await call(client, 'wrong_id', { mode: 'later' });
    expect([r.isError ?? false, textOf(r)]).toEqual([false, 'wrong_id: the real answer']);
    expect(ms).toBeLessThan(TIMEOUT_MS);
    expect(await by.stop()).toMatchObject({ problems: [] });
  });

  it('20,000 notifications before the result: the result arrives in bounded time, nothing is relayed', async () => {
    const client = await session();
    let relayed = 0;
    client.fallbackNotificationHandler = async () => {
      relayed++;
    };
    const by = bystander();
    const { r, ms } = await call(client, 'long_flood', { count: '20000' });
    expect([r.isError ?? false, textOf(r)]).toEqual([false, 'flood done after 20000']);
    expect(ms).toBeLessThan(10_000);
    expect(relayed).toBeLessThan(100); // the upstream's chatter is not the agent's
    const { rounds, problems } = await by.stop();
    expect(problems).toEqual([]);
    expect(rounds).toBeGreaterThan(0);
    expect(long.callsOf('flood').at(-1)?.notifications).toBe(20_000);
  });

  it('a flood that never ends → UPSTREAM_TIMEOUT within the timeout', async () => {
    const client = await session();
    const by = bystander();
    const { r, ms } = await call(client, 'flood_forever');
    const error = expectCleanError(r, ['UPSTREAM_TIMEOUT']);
    expect(ms).toBeLessThan(TIMEOUT_MS + 2_000);
    await expectAuditedFailure(error.traceId, 'UPSTREAM_TIMEOUT');
    const { rounds, problems } = await by.stop();
    expect(problems).toEqual([]);
    expect(rounds).toBeGreaterThan(2); // served during the flood, not only after it
    await expectStillServing(client);
  });

  it('an upstream that never answers → UPSTREAM_TIMEOUT within the configured timeout, audited as timeout', async () => {
    const client = await session();
    const by = bystander();
    for (const tool of ['hang', 'hang_sse']) {
      const { r, ms } = await call(client, tool);
      const error = expectCleanError(r, ['UPSTREAM_TIMEOUT']);
      expect(ms, tool).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
      expect(ms, tool).toBeLessThan(TIMEOUT_MS + 2_000);
      await expectAuditedFailure(error.traceId, 'UPSTREAM_TIMEOUT');
      const sent = raw.callsOf(tool).at(-1)!;
      await eventually(() => (raw.cancelled.includes(sent.id) ? true : undefined));
    }
    const { rounds, problems } = await by.stop();
    expect(problems).toEqual([]);
    expect(rounds).toBeGreaterThan(2);
    await expectStillServing(client);
  });

  it('a socket destroyed mid-call → UPSTREAM_ERROR at once; one dropped socket does not take the upstream down', async () => {
    const client = await session();
    const by = bystander();
    const { r, ms } = await call(client, 'die');
    const error = expectCleanError(r, ['UPSTREAM_ERROR']);
    expect(ms).toBeLessThan(TIMEOUT_MS);
    await expectAuditedFailure(error.traceId, 'UPSTREAM_ERROR');
    expect(await by.stop()).toMatchObject({ problems: [] });
    await sleep(200); // the gateway's probe (a ping) has answered by now
    expect(t.gw.pool.status().find((u) => u.name === 'raw')?.state).toBe('up');
    await expectStillServing(client);
  });

  it('a socket destroyed in the middle of an event stream → a clean upstream error, audited', async () => {
    const client = await session();
    const by = bystander();
    const { r, ms } = await call(client, 'die_midstream');
    const error = expectCleanError(r);
    expect(ms).toBeLessThan(TIMEOUT_MS + 2_000);
    await expectAuditedFailure(error.traceId, error.code);
    expect(await by.stop()).toMatchObject({ problems: [] });
    await expectStillServing(client);
  });

  it('the upstream process dies mid-call: a clean error at once, UNAVAILABLE while down, served again once back', async () => {
    const client = await session();
    const by = bystander();
    const before = child.calls.length;
    const pending = call(client, 'proc_hang');
    await eventually(() => (child.calls.length > before ? true : undefined));
    const port = child.port;
    await child.kill();
    const { r, ms } = await pending;
    const error = expectCleanError(r, ['UPSTREAM_ERROR', 'UPSTREAM_UNAVAILABLE']);
    expect(ms).toBeLessThan(TIMEOUT_MS); // the connection loss is reported, not waited out
    await expectAuditedFailure(error.traceId, error.code);
    // While it is down: refused fast, cleanly.
    const down = await call(client, 'proc_raw_echo', { text: 'x' });
    expectCleanError(down.r, ['UPSTREAM_UNAVAILABLE']);
    expect(down.ms).toBeLessThan(TIMEOUT_MS);
    await eventually(() =>
      t.gw.pool.status().find((u) => u.name === 'proc')?.state === 'down' ? true : undefined,
    );
    // Back on the same port: the gateway reconnects by itself.
    child = await startChildUpstream(port);
    await eventually(
      () => (t.gw.pool.status().find((u) => u.name === 'proc')?.state === 'up' ? true : undefined),
      15_000,
    );
    await expectStillServing(client, 'proc_raw_echo');
    expect(await by.stop()).toMatchObject({ problems: [] });
  }, 30_000);

  it('two sessions answered out of order each get their own result', async () => {
    const [alice, bob] = await Promise.all([session(), session()]);
    const [a, b] = await Promise.all([
      call(alice, 'reverse', { who: 'alice' }),
      call(bob, 'reverse', { who: 'bob' }),
    ]);
    expect(textOf(a.r)).toBe('reverse: private data of alice');
    expect(textOf(b.r)).toBe('reverse: private data of bob');
  });

  it('a result far larger than the limits: bounded gateway memory, and the agent never gets it unchecked', async () => {
    const client = await session();
    const by = bystander(['echo']);
    const baseline = process.memoryUsage.rss();
    let peak = baseline;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage.rss());
    }, 10);
    try {
      const { r, ms } = await call(client, 'long_huge', { mb: '50' });
      peak = Math.max(peak, process.memoryUsage.rss());
      expect(ms).toBeLessThan(LONG_TIMEOUT_MS);
      if (r.isError) {
        expectCleanError(r, ['UPSTREAM_ERROR', 'RESULT_WITHHELD']);
      } else {
        // Passed on: only as far as it was inspected, and marked where it was cut (the
        // repetitive text is also wrapped as untrusted data: a short header and footer).
        const text = textOf(r);
        expect(text.length).toBeLessThanOrEqual(MAX_INSPECT_CHARS + 1_024);
        expect(text).toContain(`huge-d${UNINSPECTED}`);
      }
    } finally {
      clearInterval(sampler);
    }
    // The guard stops reading at maxResultBytes (8 MiB here); an explosion (copies per
    // step, per session, retained after the call) would be far more.
    expect(peak - baseline).toBeLessThan(400 * 2 ** 20);
    expect(await by.stop()).toMatchObject({ problems: [] });
    await expectStillServing(client, 'long_raw_echo');
  }, 30_000);

  it('answers crossed between two sessions’ calls are never delivered to the other session', async () => {
    const [alice, bob] = await Promise.all([session(), session()]);
    const [a, b] = await Promise.all([
      call(alice, 'crossed', { who: 'alice' }),
      call(bob, 'crossed', { who: 'bob' }),
    ]);
    // Each gets its own data or a clean error; never the other's.
    expect(JSON.stringify(a.r)).not.toContain('bob');
    expect(JSON.stringify(b.r)).not.toContain('alice');
    for (const { r } of [a, b]) if (r.isError) expectCleanError(r);
  });

  it('a call that timed out releases its upstream request (no socket held open by a hung upstream)', async () => {
    const client = await session();
    const { r } = await call(client, 'hang');
    expectCleanError(r, ['UPSTREAM_TIMEOUT']);
    const sent = raw.callsOf('hang').at(-1)!;
    await eventually(() => (sent.endedBy ? true : undefined), 2_000);
    expect(sent.endedBy).toBe('client');
  });

  it('a never-ending flood stops being read once the call timed out', async () => {
    const client = await session();
    const { r } = await call(client, 'flood_forever');
    expectCleanError(r, ['UPSTREAM_TIMEOUT']);
    const sent: RawCall = raw.callsOf('flood_forever').at(-1)!;
    await eventually(() => (sent.endedBy ? true : undefined), 2_000);
    expect(sent.endedBy).toBe('client');
  });

  it('a connection lost mid-stream is reported at once as lost (UPSTREAM_ERROR), not after the timeout', async () => {
    const client = await session();
    const { r, ms } = await call(client, 'die_midstream');
    expectCleanError(r, ['UPSTREAM_ERROR']);
    expect(ms).toBeLessThan(TIMEOUT_MS);
  });

  it('an oversized result is refused without reading it all: the gateway hangs up early', async () => {
    const client = await session();
    const { r } = await call(client, 'long_huge', { mb: '20' });
    const sent = long.callsOf('huge').at(-1)!;
    await eventually(() => (sent.endedBy ? true : undefined), 2_000);
    // Past maxResultBytes the gateway stops reading, and the call fails saying why (in the audit).
    expect(sent.endedBy).toBe('client');
    const error = expectCleanError(r, ['UPSTREAM_ERROR']);
    expect(error.message).toBe('Upstream result too large'); // the agent is told why, not the limit
    const entry = await expectAuditedFailure(error.traceId, 'UPSTREAM_ERROR');
    expect(String(dataOf(entry).error)).toContain('maxResultBytes');
    await expectStillServing(client, 'long_raw_echo');
  });
});
