/**
 * Upstream tools' input schemas, compiled with ajv once per definition. The
 * cache key is upstream + name + a hash of the schema, so a changed definition
 * (an upstream update, a "rug pull") is compiled afresh rather than validated
 * against the old one. Validation never rewrites: no coercion, no defaults,
 * nothing removed — a call either matches the schema as sent or is refused.
 */
import { createHash } from 'node:crypto';
import { Ajv, type ErrorObject, type Options, type ValidateFunction } from 'ajv';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import type { AggregatedTool } from '../upstream/index.js';
import { formatPath } from './argument-rules.js';

// ajv-formats is CommonJS typed as `export default`: NodeNext reads that as `.default`, but Node
// hands ESM importers `module.exports`, which is the plugin function itself.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

const OPTIONS: Options = {
  // Never rewrite arguments (DESIGN.md): "100" stays a string and fails `type: number`.
  coerceTypes: false,
  useDefaults: false,
  removeAdditional: false,
  // The first error is enough to refuse, and a hostile call cannot make us build thousands of messages.
  allErrors: false,
  // Unknown keywords in upstream schemas are annotations (x-…): ignored, not refused.
  strictSchema: false,
  strictTypes: false,
  strictTuples: false,
  strictRequired: false,
  strictNumbers: true,
  validateFormats: true,
  unicodeRegExp: true,
  // A schema's $id must not leak into the next tool's compilation; remote $refs are never fetched.
  addUsedSchema: false,
  logger: false,
};

/** Most schemas compiled at once; the oldest go first (definitions that changed leave stale entries). */
const MAX_ENTRIES = 2048;

/** A compiled schema, or why it would not compile (the call is then refused: fail closed). */
export type CompiledSchema = { ok: true; validate: ValidateFunction } | { ok: false; problem: string };

/** The first schema violation as a public message (path and expectation; never the value). */
export type SchemaCheck = { ok: true } | { ok: false; message: string };

/** One ajv per JSON Schema dialect, built on first use (building one costs ~25 ms; compiling with it ~1 ms). */
const instances = new Map<string, Ajv>();

function ajvFor(schema: Record<string, unknown>): Ajv {
  const declared = typeof schema.$schema === 'string' ? schema.$schema : '';
  // MCP tools declare draft-07 (the SDK's zod conversion) or 2020-12; an unknown $schema fails to compile.
  const dialect = declared.includes('2020-12') ? '2020-12' : declared.includes('2019-09') ? '2019-09' : '07';
  let ajv = instances.get(dialect);
  if (!ajv) {
    ajv =
      dialect === '2020-12'
        ? new Ajv2020(OPTIONS)
        : dialect === '2019-09'
          ? new Ajv2019(OPTIONS)
          : new Ajv(OPTIONS);
    addFormats(ajv);
    instances.set(dialect, ajv);
  }
  return ajv;
}

function describeError(e: ErrorObject): string {
  const path = e.instancePath
    .split('/')
    .slice(1)
    .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
  const params = e.params as Record<string, unknown>;
  if (e.keyword === 'required' && typeof params.missingProperty === 'string') {
    return `argument "${formatPath([...path, params.missingProperty])}" is required`;
  }
  if (e.keyword === 'additionalProperties' && typeof params.additionalProperty === 'string') {
    return `argument "${formatPath([...path, params.additionalProperty])}" is not accepted by this tool`;
  }
  const where = path.length === 0 ? 'arguments' : `argument "${formatPath(path)}"`;
  return `${where}: ${(e.message ?? 'is invalid').slice(0, 200)}`;
}

/** Compiled input schemas of upstream tools, keyed by definition. */
export class InputSchemas {
  private readonly byKey = new Map<string, CompiledSchema>();
  /** Fast path: the pool hands out the same schema object until the definition changes. */
  private readonly byObject = new WeakMap<object, CompiledSchema>();

  /** The compiled schema of `tool` (compiled on first use of this definition). */
  compiled(tool: Pick<AggregatedTool, 'upstream' | 'upstreamName' | 'inputSchema'>): CompiledSchema {
    const schema = tool.inputSchema;
    const seen = this.byObject.get(schema);
    if (seen) return seen;
    // The same upstream serialises a definition the same way; a reordered copy merely compiles twice.
    const hash = createHash('sha256').update(JSON.stringify(schema)).digest('base64url');
    const key = `${tool.upstream}\u0000${tool.upstreamName}\u0000${hash}`;
    let entry = this.byKey.get(key);
    if (!entry) {
      entry = compile(schema);
      if (this.byKey.size >= MAX_ENTRIES) {
        const oldest = this.byKey.keys().next().value;
        if (oldest !== undefined) this.byKey.delete(oldest);
      }
      this.byKey.set(key, entry);
    }
    this.byObject.set(schema, entry);
    return entry;
  }

  /** How many definitions are compiled (tests). */
  get size(): number {
    return this.byKey.size;
  }
}

function compile(schema: Record<string, unknown>): CompiledSchema {
  const ajv = ajvFor(schema);
  try {
    const validate = ajv.compile(schema);
    // An $async schema's validator returns a Promise, which is truthy: it would pass everything.
    if ((validate as { $async?: unknown }).$async === true)
      return { ok: false, problem: '$async schemas are not supported' };
    return { ok: true, validate };
  } catch (e) {
    return { ok: false, problem: e instanceof Error ? e.message.slice(0, 500) : String(e) };
  } finally {
    // The shared instance keeps every compiled schema object; our cache owns their lifetime instead.
    ajv.removeSchema(schema);
  }
}

/** Validate `args` against a compiled schema. */
export function checkSchema(validate: ValidateFunction, args: unknown): SchemaCheck {
  if (validate(args)) return { ok: true };
  const first = validate.errors?.[0];
  return { ok: false, message: first ? describeError(first) : 'arguments do not match the tool schema' };
}
