/**
 * The REST face: POST /v1/tool-calls `{ toolName, parameters, reasoning, traceId }`
 * on the same pipeline as MCP, with DESIGN.md's error shape.
 */
import type { Context } from 'hono';
import { z } from 'zod';
import { toWardenError, WardenError } from '../errors.js';
import type { Pipeline } from '../pipeline/index.js';
import {
  bearerOf,
  challengeHeaders,
  clientIpOf,
  errorResponse,
  type NodeBindings,
  parseJsonBody,
  readBodyText,
  traceIdOf,
} from './request.js';

const Body = z
  .object({
    toolName: z.string().min(1).max(256),
    parameters: z.record(z.string(), z.unknown()).optional(),
    reasoning: z.string().max(4000).optional(),
    traceId: z.string().optional(),
    /** Retry of a held call: the approval id from the 202 answer. */
    approvalId: z.string().max(100).optional(),
    /** `wait` (hold until a human decides) or `pending` (answer 202 at once); `Prefer: respond-async` = pending. */
    approval: z.enum(['wait', 'pending']).optional(),
    /** What the agent's model spent on this call: `{ "tokens": N }` (validated by the pipeline). */
    usage: z.unknown().optional(),
  })
  .strict();

export interface RestFaceDeps {
  pipeline: Pipeline;
  bodyLimitBytes: number;
  maxJsonDepth: number;
  trustProxy: boolean;
  resourceMetadataUrl: string;
}

/** Build the handler for POST /v1/tool-calls. */
export function restToolCalls(deps: RestFaceDeps) {
  return async function toolCalls(c: Context<{ Bindings: NodeBindings }>): Promise<Response> {
    let traceId = traceIdOf(c);
    const token = bearerOf(c);
    try {
      const json = parseJsonBody(
        await readBodyText(c.req.raw, deps.bodyLimitBytes, c.env?.incoming),
        deps.maxJsonDepth,
      );
      if (Array.isArray(json)) {
        throw new WardenError('BATCH_NOT_SUPPORTED', 'Send one tool call per request', {
          rule: 'request.batch',
        });
      }
      const parsed = Body.safeParse(json);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        const where = issue?.path.length ? issue.path.join('.') : 'body';
        throw new WardenError('INVALID_REQUEST', `${where}: ${issue?.message ?? 'invalid'}`, {
          rule: 'request.shape',
        });
      }
      traceId = traceIdOf(c, parsed.data.traceId);
      const approvalMode =
        parsed.data.approval ??
        (/\brespond-async\b/i.test(c.req.header('prefer') ?? '') ? 'pending' : undefined);
      const out = await deps.pipeline.run({
        token,
        toolName: parsed.data.toolName,
        // The raw parsed value, not zod's copy: zod drops an own "__proto__" key, and arguments are
        // checked (and refused) as sent, never silently rewritten.
        parameters: (json as { parameters?: unknown }).parameters ?? {},
        reasoning: parsed.data.reasoning,
        traceId,
        clientIp: clientIpOf(c, deps.trustProxy),
        face: 'rest',
        signal: c.req.raw.signal,
        ...(parsed.data.usage === undefined ? {} : { usage: parsed.data.usage }),
        ...(parsed.data.approvalId === undefined ? {} : { approvalId: parsed.data.approvalId }),
        ...(approvalMode === undefined ? {} : { approvalMode }),
      });
      if (out.ok) return c.json({ traceId, result: out.result }, 200, { 'x-trace-id': traceId });
      return fail(c, out.error, traceId, deps.resourceMetadataUrl);
    } catch (e) {
      return fail(c, toWardenError(e), traceId, deps.resourceMetadataUrl);
    }
  };
}

function fail(c: Context, e: WardenError, traceId: string, resourceMetadataUrl: string): Response {
  return errorResponse(c, e, traceId, challengeHeaders(e, resourceMetadataUrl));
}
