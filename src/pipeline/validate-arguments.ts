import type { ToolConfig } from '../config/types.js';
import { WardenError } from '../errors.js';
import type { AggregatedTool } from '../upstream/index.js';
import { ALWAYS_FORBIDDEN_KEYS, checkArgumentRule, findForbiddenKey, formatPath } from './argument-rules.js';
import { checkSchema, InputSchemas } from './input-schemas.js';
import type { CallState, PipelineDeps, Step } from './types.js';

/** Depth of a JSON value, stopping as soon as it exceeds `limit` (so a hostile value costs little). */
export function jsonDepthExceeds(value: unknown, limit: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (d > limit) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, d + 1]);
  }
  return false;
}

/** The parts of a tool's config that constrain its arguments. */
export type ArgumentConstraints = Partial<Pick<ToolConfig, 'arguments' | 'forbiddenKeys'>>;

/**
 * Checks `args` (a JSON object of bounded depth) as the step does: forbidden
 * keys, the upstream schema, then the config's rules; throws the first
 * violation. Exported as the hook for an explicit, audited policy rewrite (not
 * built yet): such a rewrite must produce a new object, pass it through here
 * again, and record both versions — arguments are otherwise never changed.
 */
export function checkArguments(
  tool: AggregatedTool,
  args: Record<string, unknown>,
  constraints: ArgumentConstraints | undefined,
  schemas: InputSchemas,
): void {
  const forbidden = new Set([...ALWAYS_FORBIDDEN_KEYS, ...(constraints?.forbiddenKeys ?? [])]);
  const bad = findForbiddenKey(args, forbidden);
  if (bad !== null) {
    throw new WardenError('INVALID_ARGUMENTS', `argument "${formatPath(bad)}": this key is not allowed`, {
      rule: 'arguments.forbidden-key',
    });
  }
  const compiled = schemas.compiled(tool);
  if (!compiled.ok) {
    // The upstream's definition is broken, not the call: refuse (fail closed) and say whose fault it is.
    throw new WardenError('UPSTREAM_ERROR', "The tool's input schema is invalid; the call was refused", {
      rule: 'arguments.schema-invalid',
      detail: `${tool.upstream}/${tool.upstreamName}: ${compiled.problem}`,
    });
  }
  const checked = checkSchema(compiled.validate, args);
  if (!checked.ok) {
    throw new WardenError('INVALID_ARGUMENTS', checked.message, { rule: 'arguments.schema' });
  }
  for (const [name, rule] of Object.entries(constraints?.arguments ?? {})) {
    // Whether an argument must be present is the schema's business; a rule constrains it when it is.
    if (!Object.hasOwn(args, name)) continue;
    const problem = checkArgumentRule(rule, args[name]);
    if (problem !== null) {
      throw new WardenError('INVALID_ARGUMENTS', `argument "${formatPath([name])}": ${problem}`, {
        rule: `arguments.rule:${tool.name}.${name}`,
      });
    }
  }
}

/** Most model tokens one call may report (far above any model's context; a bigger number is a bug or a lie). */
const MAX_REPORTED_TOKENS = 100_000_000;

/**
 * The model tokens an agent reports for this call (`usage.tokens`; MCP `_meta["warden/usage"]`),
 * for the token-burn baseline (issue #8). Absent = unknown (never zero); malformed = refused.
 */
export function modelTokensOf(usage: unknown): number | undefined {
  if (usage === undefined || usage === null) return undefined;
  const tokens = (usage as { tokens?: unknown }).tokens;
  const keys = typeof usage === 'object' && !Array.isArray(usage) ? Object.keys(usage) : null;
  if (
    keys === null ||
    keys.some((k) => k !== 'tokens') ||
    typeof tokens !== 'number' ||
    !Number.isInteger(tokens) ||
    tokens < 0 ||
    tokens > MAX_REPORTED_TOKENS
  ) {
    throw new WardenError(
      'INVALID_REQUEST',
      `usage must be {"tokens": <integer 0..${MAX_REPORTED_TOKENS}>} (the model tokens this call cost)`,
      { rule: 'request.usage' },
    );
  }
  return tokens;
}

/**
 * Step (after resolve-tool, before authorize): arguments must be a JSON object
 * of bounded depth, free of forbidden keys, valid against the upstream tool's
 * input schema and the tool's configured rules. Refused, never rewritten:
 * `state.parameters` is exactly what was validated, so policy and the upstream
 * see the same arguments.
 */
export function validateArguments(deps: Pick<PipelineDeps, 'limits' | 'toolConfig'>): Step {
  const schemas = new InputSchemas();
  return {
    name: 'validate-arguments',
    async run(state: CallState) {
      const tool = state.tool;
      if (!tool) throw new WardenError('INTERNAL', 'Argument validation ran out of order');
      const params = state.request.parameters ?? {};
      if (typeof params !== 'object' || params === null || Array.isArray(params)) {
        throw new WardenError('INVALID_ARGUMENTS', 'parameters must be a JSON object', {
          rule: 'arguments.object',
        });
      }
      if (jsonDepthExceeds(params, deps.limits.maxJsonDepth)) {
        throw new WardenError(
          'NESTING_TOO_DEEP',
          `parameters are nested deeper than ${deps.limits.maxJsonDepth}`,
          {
            rule: 'arguments.max-depth',
          },
        );
      }
      const reasoning = state.request.reasoning;
      if (reasoning !== undefined && reasoning !== null && typeof reasoning !== 'string') {
        throw new WardenError('INVALID_REQUEST', 'reasoning must be a string', { rule: 'request.reasoning' });
      }
      state.modelTokens = modelTokensOf(state.request.usage);
      const args = params as Record<string, unknown>;
      checkArguments(tool, args, deps.toolConfig?.(tool.name), schemas);
      state.parameters = args;
      state.reasoning = typeof reasoning === 'string' ? reasoning.slice(0, 4000) : undefined;
      state.allowedBy.push('arguments.valid');
    },
  };
}
