import { describe, expect, it } from 'vitest';
import type { ArgumentRule, ToolConfig } from '../config/types.js';
import { isWardenError, type WardenError } from '../errors.js';
import type { AggregatedTool } from '../upstream/index.js';
import { checkArgumentRule, findForbiddenKey } from './argument-rules.js';
import { InputSchemas } from './input-schemas.js';
import type { CallState } from './types.js';
import { checkArguments, modelTokensOf, validateArguments } from './validate-arguments.js';

/** lookup_order as the demo upstream publishes it (the SDK's draft-07 conversion of its zod schema). */
const lookupOrder: AggregatedTool = {
  name: 'lookup_order',
  upstream: 'support-desk',
  upstreamName: 'lookup_order',
  inputSchema: {
    type: 'object',
    properties: { orderId: { type: 'string', pattern: '^ORD-[A-Z0-9]{8}$' } },
    required: ['orderId'],
    $schema: 'http://json-schema.org/draft-07/schema#',
  },
};

const refund: AggregatedTool = {
  name: 'issue_refund',
  upstream: 'support-desk',
  upstreamName: 'issue_refund',
  inputSchema: {
    type: 'object',
    properties: {
      orderId: { type: 'string' },
      amountCents: { type: 'integer', exclusiveMinimum: 0 },
      reason: { type: 'string', minLength: 1, maxLength: 500 },
      tags: { type: 'array', items: { type: 'string' } },
      notifyAt: { type: 'string', format: 'date-time' },
    },
    required: ['orderId', 'amountCents'],
    additionalProperties: false,
    $schema: 'http://json-schema.org/draft-07/schema#',
  },
};

function config(over: Partial<ToolConfig> = {}): ToolConfig {
  return { risk: 'low', tags: [], cost: 0, arguments: {}, forbiddenKeys: [], resourceScopes: [], ...over };
}

/** Runs the step on `parameters` (raw, as a face hands them in) and returns the error, if any. */
async function run(
  tool: AggregatedTool,
  parameters: unknown,
  cfg?: ToolConfig,
): Promise<{ error?: WardenError; state: CallState }> {
  const step = validateArguments({ limits: { maxJsonDepth: 8 }, toolConfig: () => cfg });
  const state: CallState = {
    request: {
      token: 't',
      toolName: tool.name,
      parameters,
      traceId: 'tr',
      clientIp: '127.0.0.1',
      face: 'rest',
    },
    startedAt: 0,
    allowedBy: [],
    tool,
  };
  try {
    await step.run(state);
    return { state };
  } catch (e) {
    if (!isWardenError(e)) throw e;
    return { error: e, state };
  }
}

describe('validate-arguments: the upstream schema', () => {
  it('accepts a valid call and leaves the arguments exactly as sent (same object, no defaults)', async () => {
    const args = { orderId: 'ORD-4F8K2P1Z' };
    const { error, state } = await run(lookupOrder, args);
    expect(error).toBeUndefined();
    expect(state.parameters).toBe(args);
    expect(args).toEqual({ orderId: 'ORD-4F8K2P1Z' });
    expect(state.allowedBy).toContain('arguments.valid');
  });

  it.each([
    [{ orderId: 'ORD-4F8K2P1' }, 'argument "orderId": must match pattern "^ORD-[A-Z0-9]{8}$"'],
    [{ orderId: 'ORD-4F8K2P1ZZ' }, 'argument "orderId": must match pattern "^ORD-[A-Z0-9]{8}$"'],
    [{ orderId: 'ord-4f8k2p1z' }, 'argument "orderId": must match pattern "^ORD-[A-Z0-9]{8}$"'],
    [{ orderId: 'ORD-4F8K2P1Z\n' }, 'argument "orderId": must match pattern "^ORD-[A-Z0-9]{8}$"'],
    [{}, 'argument "orderId" is required'],
    // Type confusion: a number or an array where a string is expected is refused, not converted.
    [{ orderId: 12345678 }, 'argument "orderId": must be string'],
    [{ orderId: ['ORD-4F8K2P1Z'] }, 'argument "orderId": must be string'],
  ])('refuses %j with a message naming the argument', async (args, message) => {
    const { error } = await run(lookupOrder, args);
    expect(error?.code).toBe('INVALID_ARGUMENTS');
    expect(error?.rule).toBe('arguments.schema');
    expect(error?.message).toBe(message);
  });

  it('never coerces: "100" is not an integer, 1.5 is not one either, and nothing is removed or defaulted', async () => {
    expect((await run(refund, { orderId: 'o', amountCents: '100' })).error?.message).toBe(
      'argument "amountCents": must be integer',
    );
    expect((await run(refund, { orderId: 'o', amountCents: 1.5 })).error?.message).toBe(
      'argument "amountCents": must be integer',
    );
    expect((await run(refund, { orderId: 'o', amountCents: 0 })).error?.message).toBe(
      'argument "amountCents": must be > 0',
    );
    const extra = { orderId: 'o', amountCents: 1, sneaky: true };
    expect((await run(refund, extra)).error?.message).toBe('argument "sneaky" is not accepted by this tool');
    expect(extra).toEqual({ orderId: 'o', amountCents: 1, sneaky: true });
  });

  it('checks formats and names nested paths', async () => {
    expect((await run(refund, { orderId: 'o', amountCents: 1, notifyAt: 'tomorrow' })).error?.message).toBe(
      'argument "notifyAt": must match format "date-time"',
    );
    expect((await run(refund, { orderId: 'o', amountCents: 1, tags: ['a', 2] })).error?.message).toBe(
      'argument "tags[1]": must be string',
    );
    expect(
      (await run(refund, { orderId: 'o', amountCents: 1, notifyAt: '2026-11-25T12:00:00Z' })).error,
    ).toBe(undefined);
  });

  it('does not echo a huge value back', async () => {
    const { error } = await run(lookupOrder, { orderId: 'x'.repeat(100_000) });
    expect(error?.message.length).toBeLessThan(300);
  });

  it('refuses (fail closed) when the schema does not compile, naming the upstream in the private detail', async () => {
    const broken: AggregatedTool = {
      ...lookupOrder,
      name: 'broken',
      inputSchema: { type: 'object', properties: { a: { type: 'strnig' } } },
    };
    const { error } = await run(broken, { a: 'x' });
    expect(error?.code).toBe('UPSTREAM_ERROR');
    expect(error?.rule).toBe('arguments.schema-invalid');
    expect(error?.detail).toContain('support-desk/lookup_order');
    const badRegex = { ...broken, inputSchema: { type: 'object', properties: { a: { pattern: '([' } } } };
    expect((await run(badRegex, { a: 'x' })).error?.code).toBe('UPSTREAM_ERROR');
    const remoteRef = { ...broken, inputSchema: { $ref: 'https://evil.example/schema.json' } };
    expect((await run(remoteRef, {})).error?.code).toBe('UPSTREAM_ERROR');
    const async = { ...broken, inputSchema: { $async: true, type: 'object' } };
    expect((await run(async, {})).error?.code).toBe('UPSTREAM_ERROR');
  });

  it('understands JSON Schema 2020-12 tools', async () => {
    const tool: AggregatedTool = {
      ...lookupOrder,
      inputSchema: {
        $schema: 'https://json-schema.org/draft/2020-12/schema',
        type: 'object',
        properties: { pair: { type: 'array', prefixItems: [{ type: 'string' }, { type: 'integer' }] } },
      },
    };
    expect((await run(tool, { pair: ['a', 1] })).error).toBeUndefined();
    expect((await run(tool, { pair: ['a', 'b'] })).error?.message).toBe(
      'argument "pair[1]": must be integer',
    );
  });
});

describe('InputSchemas cache', () => {
  it('compiles a definition once and again when it changes', () => {
    const schemas = new InputSchemas();
    const first = schemas.compiled(lookupOrder);
    expect(schemas.compiled(lookupOrder)).toBe(first);
    // The same definition in a fresh object (the pool re-listed the tools): still one compilation.
    expect(schemas.compiled({ ...lookupOrder, inputSchema: structuredClone(lookupOrder.inputSchema) })).toBe(
      first,
    );
    expect(schemas.size).toBe(1);
    const changed = {
      ...lookupOrder,
      inputSchema: { ...lookupOrder.inputSchema, properties: { orderId: { type: 'integer' } } },
    };
    const second = schemas.compiled(changed);
    expect(second).not.toBe(first);
    expect(schemas.size).toBe(2);
    // Same schema, another upstream: its own entry.
    schemas.compiled({
      ...lookupOrder,
      upstream: 'other',
      inputSchema: structuredClone(lookupOrder.inputSchema),
    });
    expect(schemas.size).toBe(3);
  });

  it('a tool whose definition changed is validated against the new one', async () => {
    const step = validateArguments({ limits: { maxJsonDepth: 8 } });
    const call = async (tool: AggregatedTool, parameters: unknown) => {
      const state: CallState = {
        request: { token: 't', toolName: 'x', parameters, traceId: 't', clientIp: '', face: 'rest' },
        startedAt: 0,
        allowedBy: [],
        tool,
      };
      return step.run(state).then(
        () => 'ok',
        (e: WardenError) => e.code,
      );
    };
    expect(await call(lookupOrder, { orderId: 'ORD-4F8K2P1Z' })).toBe('ok');
    const changed = {
      ...lookupOrder,
      inputSchema: { ...lookupOrder.inputSchema, properties: { orderId: { type: 'integer' } } },
    };
    expect(await call(changed, { orderId: 'ORD-4F8K2P1Z' })).toBe('INVALID_ARGUMENTS');
  });
});

describe('validate-arguments: forbidden keys', () => {
  it.each([
    ['{"__proto__": {"isAdmin": true}, "orderId": "ORD-4F8K2P1Z"}', '__proto__'],
    ['{"orderId": "ORD-4F8K2P1Z", "meta": {"constructor": {"prototype": {}}}}', 'meta.constructor'],
    ['{"orderId": "ORD-4F8K2P1Z", "list": [{"ok": 1}, {"prototype": 1}]}', 'list[1].prototype'],
  ])('refuses %s at any depth (raw JSON.parse output)', async (json, path) => {
    const parsed: unknown = JSON.parse(json);
    const { error } = await run(lookupOrder, parsed);
    expect(error?.code).toBe('INVALID_ARGUMENTS');
    expect(error?.rule).toBe('arguments.forbidden-key');
    expect(error?.message).toBe(`argument "${path}": this key is not allowed`);
  });

  it('refuses keys the tool config forbids, besides the built-in ones', async () => {
    const cfg = config({ forbiddenKeys: ['debug'] });
    const { error } = await run(lookupOrder, { orderId: 'ORD-4F8K2P1Z', opts: { debug: true } }, cfg);
    expect(error?.rule).toBe('arguments.forbidden-key');
    expect(error?.message).toBe('argument "opts.debug": this key is not allowed');
    expect(findForbiddenKey({ a: [{ b: 1 }] }, new Set(['c']))).toBeNull();
  });

  it('does not mistake inherited names for keys', () => {
    expect(findForbiddenKey({ toString: 'x', valueOf: 1 }, new Set(['__proto__', 'constructor']))).toBeNull();
  });
});

describe('validate-arguments: config rules', () => {
  const any: AggregatedTool = { ...lookupOrder, name: 'any_tool', inputSchema: { type: 'object' } };
  const withRule = (rule: ArgumentRule) => config({ arguments: { v: rule } });
  const check = async (rule: ArgumentRule, v: unknown) => (await run(any, { v }, withRule(rule))).error;

  it.each<[string, ArgumentRule, unknown, unknown]>([
    // [what, rule, at the edge (accepted), one past (refused)]
    ['maximum', { type: 'integer', maximum: 10_000 }, 10_000, 10_001],
    ['minimum', { type: 'number', minimum: 0.5 }, 0.5, 0.49],
    ['maxLength', { maxLength: 5 }, 'abcde', 'abcdef'],
    ['maxLength counts code points', { maxLength: 2 }, '😀😀', '😀😀😀'],
    ['minLength', { minLength: 2 }, 'ab', 'a'],
    ['maxItems', { maxItems: 2 }, [1, 2], [1, 2, 3]],
    ['enum', { enum: ['low', 'normal'] }, 'normal', 'high'],
    ['pattern', { pattern: '^ORD-[A-Z0-9]{8}$' }, 'ORD-4F8K2P1Z', 'ORD-4F8K2P1Z9'],
  ])('%s: the edge passes, one past is refused', async (_what, rule, edge, past) => {
    expect(await check(rule, edge)).toBeUndefined();
    const error = await check(rule, past);
    expect(error?.code).toBe('INVALID_ARGUMENTS');
    expect(error?.rule).toBe('arguments.rule:any_tool.v');
    expect(error?.message).toMatch(/^argument "v": expected /);
  });

  it('patterns match the whole string, with Unicode semantics', async () => {
    expect(await check({ pattern: 'ORD-\\d+' }, 'xORD-1')).toBeDefined();
    expect(await check({ pattern: 'ORD-\\d+' }, 'ORD-1; DROP TABLE')).toBeDefined();
    expect(await check({ pattern: 'a|b' }, 'ab')).toBeDefined();
    expect(await check({ pattern: '^.$' }, '😀')).toBeUndefined();
    expect(await check({ pattern: '^\\p{Lu}+$' }, 'ÄÖ')).toBeUndefined();
  });

  it('type confusion is refused: "100" is not a number, arrays are not scalars', async () => {
    expect((await check({ maximum: 1000 }, '100'))?.message).toBe(
      'argument "v": expected a number, got a string',
    );
    expect((await check({ type: 'integer' }, 1.5))?.message).toBe(
      'argument "v": expected an integer, got a number',
    );
    expect((await check({ type: 'string' }, ['a']))?.message).toBe(
      'argument "v": expected a string, got an array',
    );
    expect((await check({ maxLength: 10 }, ['a']))?.message).toBe(
      'argument "v": expected a string, got an array',
    );
    expect((await check({ enum: [100] }, '100'))?.message).toBe('argument "v": expected one of 100');
    expect((await check({ enum: ['true'] }, true))?.message).toBe('argument "v": expected one of "true"');
    expect((await check({ maxItems: 1 }, 'a'))?.message).toBe(
      'argument "v": expected an array, got a string',
    );
    expect((await check({ type: 'object' }, null))?.message).toBe(
      'argument "v": expected an object, got null',
    );
  });

  it('a rule does not make an absent argument required (the schema says what is required)', async () => {
    expect((await run(any, {}, withRule({ maximum: 1 }))).error).toBeUndefined();
  });

  it('the schema is checked before the config rules', async () => {
    const cfg = config({ arguments: { orderId: { maxLength: 3 } } });
    expect((await run(lookupOrder, { orderId: 5 }, cfg)).error?.rule).toBe('arguments.schema');
    expect((await run(lookupOrder, { orderId: 'ORD-4F8K2P1Z' }, cfg)).error?.rule).toBe(
      'arguments.rule:lookup_order.orderId',
    );
  });

  it('checkArgumentRule never echoes the value', () => {
    const secret = 'sk_live_0123456789abcdef';
    expect(checkArgumentRule({ maxLength: 4 }, secret)).not.toContain(secret);
    expect(checkArgumentRule({ pattern: '^x$' }, secret)).not.toContain(secret);
  });
});

describe('validate-arguments: shape and depth (kept from the spine)', () => {
  it('refuses non-objects and over-deep values', async () => {
    expect((await run(lookupOrder, [1])).error?.code).toBe('INVALID_ARGUMENTS');
    expect((await run(lookupOrder, 'x')).error?.rule).toBe('arguments.object');
    let deep: unknown = 1;
    for (let i = 0; i < 10; i++) deep = { d: deep };
    expect((await run(lookupOrder, { deep })).error?.code).toBe('NESTING_TOO_DEEP');
  });

  it('checkArguments is usable on its own (the hook a policy rewrite must go through again)', () => {
    expect(() =>
      checkArguments(lookupOrder, { orderId: 'ORD-4F8K2P1Z' }, undefined, new InputSchemas()),
    ).not.toThrow();
    expect(() => checkArguments(lookupOrder, { orderId: 'no' }, undefined, new InputSchemas())).toThrow(
      /must match pattern/,
    );
  });
});

describe('modelTokensOf (usage reported by the agent)', () => {
  it('takes {tokens: N}; absent is unknown, never zero', () => {
    expect(modelTokensOf(undefined)).toBeUndefined();
    expect(modelTokensOf(null)).toBeUndefined();
    expect(modelTokensOf({ tokens: 0 })).toBe(0);
    expect(modelTokensOf({ tokens: 12_345 })).toBe(12_345);
  });

  it('refuses anything else with INVALID_REQUEST', () => {
    for (const bad of [
      5,
      'many',
      [],
      {},
      { tokens: -1 },
      { tokens: 1.5 },
      { tokens: '100' },
      { tokens: 1e12 },
      { tokens: 10, cost: 3 },
    ]) {
      expect(() => modelTokensOf(bad), JSON.stringify(bad)).toThrowError(
        expect.objectContaining({ code: 'INVALID_REQUEST', rule: 'request.usage' }),
      );
    }
  });
});
