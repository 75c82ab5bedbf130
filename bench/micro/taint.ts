/**
 * Session taint (issue #7), what the taint-session step adds to a call: with
 * nothing new to record (a clean result, or a session already tainted: every
 * later call of a tainted session), and when a result taints the session —
 * the taint bits committed to the store before the agent sees the result,
 * then the SESSION_TAINTED entry — on SQLite and PostgreSQL. Reading the taint
 * rides on the call claim (session-guard); the pipeline benchmark measures it
 * with the rest of a call.
 */

import { type Session, TAINT } from '../../src/identity/index.js';
import { taintSession } from '../../src/pipeline/taint-session.js';
import type { CallState } from '../../src/pipeline/types.js';
import { AGENT_ID, inBenchSchema, openWorld, PG_URL, pgSkipNote, type World } from './fixtures.js';
import {
  type BenchContext,
  cpuNote,
  type MicroResult,
  rateRow,
  runAlternating,
  skipped,
  usRow,
} from './harness.js';

const G = 'taint';
const TOOL = 'lookup_order';
const CONCURRENCY = 16;
/** Untainted sessions made before timing: each tainting call uses up one. */
const POOL = 50_000;
/** Rows per INSERT while filling the pool (PostgreSQL binds at most 65,535 values). */
const CHUNK = 500;

/** The three rows' names (also those of the rows skipped when PostgreSQL is not there). */
function rowNames(dialect: string) {
  const taints = 'taint-session step, a result taints the session';
  return {
    none: `taint-session step, nothing new to record (${dialect})`,
    one: `${taints}, serial (${dialect})`,
    many: `${taints}, ${CONCURRENCY} in flight (${dialect})`,
  };
}

/** `POOL` copies of the world's session under new ids, untainted; its own row stays as it was. */
async function sessionPool(world: World): Promise<{ session: Session; ids: string[] }> {
  const db = world.services.store.db;
  const row = await db
    .selectFrom('sessions')
    .selectAll()
    .where('agent_id', '=', AGENT_ID)
    .executeTakeFirstOrThrow();
  const ids = Array.from({ length: POOL }, (_, i) => `ses_bench_taint_${i}`);
  for (let i = 0; i < ids.length; i += CHUNK) {
    await db
      .insertInto('sessions')
      .values(ids.slice(i, i + CHUNK).map((id) => ({ ...row, id, taint: 0 })))
      .execute();
  }
  const session = await world.services.sessions.get(row.id);
  if (!session) throw new Error(`session ${row.id} vanished`);
  return { session, ids };
}

/** The step as the gateway wires it (src/pipeline/from-config.ts), for a tool labelled untrusted-content. */
async function taintRows(world: World, ctx: BenchContext, dialect: string): Promise<MicroResult[]> {
  const { session, ids } = await sessionPool(world);
  const agent = await world.services.agents.get(AGENT_ID);
  const labelled = { ...world.config.tools[TOOL]!, capabilities: ['untrusted-content' as const] };
  const step = taintSession({
    sessions: world.services.sessions,
    audit: world.services.audit,
    toolConfig: (name) => (name === TOOL ? labelled : undefined),
  });
  const tool = { name: TOOL, upstream: 'support-desk', upstreamName: TOOL, inputSchema: { type: 'object' } };
  let calls = 0;
  const state = (id: string, taint: number): CallState => {
    calls += 1;
    return {
      request: {
        token: world.token,
        toolName: TOOL,
        parameters: {},
        traceId: `bench-taint-${calls}`,
        clientIp: '127.0.0.1',
        face: 'mcp',
      },
      startedAt: Date.now(),
      allowedBy: [],
      ...(agent ? { agent } : {}),
      session: { ...session, id },
      tool,
      taint,
    };
  };
  let next = 0;
  const fresh = () => {
    const id = ids[next++];
    // A reused session would already hold the bit and write nothing: the row would flatter the step.
    if (id === undefined) throw new Error(`the pool of ${POOL} untainted sessions ran out`);
    return id;
  };
  ctx.progress(
    `taint: nothing new / a result taints the session, serial and ${CONCURRENCY} in flight (${dialect})`,
  );
  const cases = [
    { op: () => step.run(state(session.id, TAINT.untrusted)) },
    { op: () => step.run(state(fresh(), 0)) },
    { op: () => step.run(state(fresh(), 0)), concurrency: CONCURRENCY },
  ];
  const [none, one, many] = await runAlternating(cases, ctx.timing);
  // Every session handed out was tainted in the store: no timed call was a write that did nothing.
  const { tainted } = await world.services.store.db
    .selectFrom('sessions')
    .select((eb) => eb.fn.countAll<number>().as('tainted'))
    .where('id', 'like', 'ses_bench_taint_%')
    .where('taint', '=', TAINT.untrusted)
    .executeTakeFirstOrThrow();
  if (Number(tainted) !== next)
    throw new Error(`${next} sessions tainted by the step, ${tainted} in the store`);
  const written = `the taint bit committed (${dialect}, durable) before the result is handed on, then the SESSION_TAINTED entry`;
  const name = rowNames(dialect);
  return [
    usRow(
      G,
      name.none,
      none!,
      `a session already tainted (every later call of it) or a clean result: no store access; ${cpuNote(none!)}`,
    ),
    usRow(G, name.one, one!, `${written}; ${cpuNote(one!)}`),
    rateRow(
      G,
      name.many,
      many!,
      'ops/s',
      `${written}; ${CONCURRENCY} sessions tainted at once; ${cpuNote(many!)}`,
    ),
  ];
}

/** The taint group: SQLite, then PostgreSQL when it answers. */
export async function taintBench(ctx: BenchContext): Promise<MicroResult[]> {
  const out: MicroResult[] = [];
  const world = await openWorld();
  try {
    out.push(...(await taintRows(world, ctx, 'sqlite')));
  } finally {
    await world.close();
  }

  const note = await pgSkipNote();
  if (note !== null) {
    const name = rowNames('postgres');
    out.push(
      skipped(G, name.none, 'us/op', note),
      skipped(G, name.one, 'us/op', note),
      skipped(G, name.many, 'ops/s', note),
    );
    return out;
  }
  await inBenchSchema('taint', async (pgSchema) => {
    const pgWorld = await openWorld({
      tweak: (config) => {
        config.store.url = PG_URL;
      },
      pgSchema,
    });
    try {
      out.push(...(await taintRows(pgWorld, ctx, 'postgres')));
    } finally {
      await pgWorld.close();
    }
  });
  return out;
}
