/**
 * The validate-arguments step as the pipeline runs it: depth bound, forbidden
 * keys, the upstream's real input schema (ajv, compiled once per definition),
 * then the tool's configured argument rules.
 */
import type { ToolConfig } from '../../src/config/types.js';
import type { CallState, ToolCallRequest } from '../../src/pipeline/index.js';
import { validateArguments } from '../../src/pipeline/validate-arguments.js';
import type { AggregatedTool } from '../../src/upstream/index.js';
import { supportDeskTools } from './fixtures.js';
import { type BenchContext, type MicroResult, run, sig, usRow } from './harness.js';

const G = 'arguments';

/** Operator rules on top of the upstream schema, as a deployment would narrow a write tool. */
export const TICKET_RULES: ToolConfig = {
  risk: 'medium',
  tags: ['write'],
  cost: 0,
  arguments: {
    orderId: { type: 'string', pattern: 'ORD-[A-Z0-9]{8}' },
    subject: { type: 'string', maxLength: 120 },
    body: { type: 'string', maxLength: 2000 },
    priority: { enum: ['low', 'normal'] },
  },
  forbiddenKeys: ['password', 'apiKey'],
  resourceScopes: [],
};

const TICKET_ARGS = {
  orderId: 'ORD-4F8K2P1Z',
  subject: 'Parcel arrived damaged',
  body: 'The customer reports the box was crushed and two mugs are broken; they ask for a replacement or a refund.',
  priority: 'normal',
};

/** The argument-validation group. */
export async function argumentsBench(ctx: BenchContext): Promise<MicroResult[]> {
  const tools = await supportDeskTools();
  const ticket = tools.find((t) => t.name === 'create_support_ticket')!;
  const lookup = tools.find((t) => t.name === 'lookup_order')!;
  const configs: Record<string, ToolConfig> = {
    create_support_ticket: TICKET_RULES,
    lookup_order: {
      ...TICKET_RULES,
      risk: 'low',
      tags: ['read'],
      arguments: { orderId: TICKET_RULES.arguments['orderId']! },
    },
  };
  const step = validateArguments({
    limits: { maxJsonDepth: 32 },
    toolConfig: (name) => (Object.hasOwn(configs, name) ? configs[name] : undefined),
  });
  const stateFor = (tool: AggregatedTool, parameters: unknown): CallState => {
    const request: ToolCallRequest = {
      token: 't',
      toolName: tool.name,
      parameters,
      reasoning: 'The customer asked for it.',
      traceId: 'bench',
      clientIp: '127.0.0.1',
      face: 'mcp',
    };
    return { request, startedAt: 0, allowedBy: [], tool };
  };

  // The first call compiles the schema (and builds the draft-07 ajv instance): paid once per definition.
  const t0 = performance.now();
  await step.run(stateFor(ticket, TICKET_ARGS));
  const firstMs = sig(performance.now() - t0);

  const out: MicroResult[] = [];
  ctx.progress('arguments: create_support_ticket');
  out.push(
    usRow(
      G,
      'validate-arguments step, create_support_ticket (valid)',
      await run(() => step.run(stateFor(ticket, TICKET_ARGS)), ctx.timing),
      `real upstream schema (4 properties, pattern, enum) + 4 config rules + 2 forbidden keys; first call ${firstMs} ms (schema compile)`,
    ),
  );
  ctx.progress('arguments: lookup_order');
  out.push(
    usRow(
      G,
      'validate-arguments step, lookup_order (valid)',
      await run(() => step.run(stateFor(lookup, { orderId: 'ORD-4F8K2P1Z' })), ctx.timing),
      'the pipeline benchmark’s tool: 1 property with a pattern + 1 pattern rule',
    ),
  );
  ctx.progress('arguments: refusal');
  const bad = { ...TICKET_ARGS, orderId: 'ORD-1; DROP TABLE' };
  out.push(
    usRow(
      G,
      'validate-arguments step, refusal (schema pattern)',
      await run(async () => {
        try {
          await step.run(stateFor(ticket, bad));
        } catch {
          return;
        }
        throw new Error('expected a refusal');
      }, ctx.timing),
      'INVALID_ARGUMENTS thrown and caught: the cost of refusing a bad call',
    ),
  );
  return out;
}
