/**
 * Tool arguments as Cedar sees them (`context.arguments`). Cedar's validator
 * has no open records, so policies can read only declared arguments, each with
 * one type across all tools. Types come from `policy.arguments`, from
 * `tools.<t>.arguments.<a>.type`, and from the comparisons rules make; two
 * sources disagreeing is a load error. At call time a declared argument whose
 * value has another type denies the call: leaving it out instead would let a
 * forbid (or an approval obligation) silently not apply — type confusion as a
 * bypass.
 */
import type { ArgumentCondition, PolicyArgumentType, PolicyRuleConfig } from '../config/policy-types.js';
import type { ToolConfig } from '../config/types.js';
import { WardenError } from '../errors.js';

/** Where each declared argument type came from, for conflict messages. */
export interface ArgumentTypes {
  types: Map<string, PolicyArgumentType>;
  errors: string[];
}

function conditionType(c: ArgumentCondition): PolicyArgumentType | 'mixed' | undefined {
  const seen = new Set<PolicyArgumentType>();
  const note = (v: unknown) => {
    if (typeof v === 'string') seen.add('string');
    else if (typeof v === 'number') seen.add('integer');
    else if (typeof v === 'boolean') seen.add('boolean');
  };
  if (c.gt !== undefined || c.gte !== undefined || c.lt !== undefined || c.lte !== undefined)
    seen.add('integer');
  if (c.like !== undefined) seen.add('string');
  note(c.eq);
  note(c.ne);
  for (const v of [...(c.in ?? []), ...(c.notIn ?? [])]) note(v);
  if (seen.size > 1) return 'mixed';
  return [...seen][0];
}

/** Collect the declared argument types, reporting every conflict. */
export function collectArgumentTypes(input: {
  declared?: Readonly<Record<string, PolicyArgumentType>>;
  tools: Readonly<Record<string, ToolConfig>>;
  rules: readonly PolicyRuleConfig[];
}): ArgumentTypes {
  const types = new Map<string, PolicyArgumentType>();
  const origin = new Map<string, string>();
  const errors: string[] = [];
  const add = (name: string, type: PolicyArgumentType, where: string) => {
    const had = types.get(name);
    if (had === undefined) {
      types.set(name, type);
      origin.set(name, where);
    } else if (had !== type) {
      errors.push(
        `${where}: argument "${name}" is ${type} here but ${had} at ${origin.get(name)}; ` +
          'context.arguments gives each name one type (rename one, or set policy.arguments)',
      );
    }
  };
  for (const [name, type] of Object.entries(input.declared ?? {}))
    add(name, type, `policy.arguments.${name}`);
  for (const [tool, cfg] of Object.entries(input.tools)) {
    for (const [name, rule] of Object.entries(cfg.arguments)) {
      const t = rule.type;
      if (t === 'string' || t === 'integer' || t === 'boolean')
        add(name, t, `tools.${tool}.arguments.${name}.type`);
    }
  }
  input.rules.forEach((r, i) => {
    for (const [name, cond] of Object.entries(r.when?.arguments ?? {})) {
      const where = `policy.rules[${i}] (${r.id}).when.arguments.${name}`;
      const t = conditionType(cond);
      if (t === 'mixed') errors.push(`${where}: compares with values of different types`);
      else if (t !== undefined) add(name, t, where);
    }
  });
  return { types, errors };
}

function matches(type: PolicyArgumentType, v: unknown): boolean {
  if (type === 'string') return typeof v === 'string';
  if (type === 'boolean') return typeof v === 'boolean';
  // Cedar Long is 64-bit, but a JSON number is exact only up to 2^53.
  return typeof v === 'number' && Number.isSafeInteger(v);
}

/**
 * The declared arguments of a call, typed for Cedar; undeclared ones are left
 * out (no policy can name them). Throws INVALID_ARGUMENTS on a type mismatch.
 */
export function cedarArguments(
  args: Readonly<Record<string, unknown>>,
  types: ReadonlyMap<string, PolicyArgumentType>,
): Record<string, string | number | boolean> {
  // Null prototype: an argument named __proto__ stays data.
  const out: Record<string, string | number | boolean> = Object.create(null);
  for (const [name, type] of types) {
    if (!Object.hasOwn(args, name)) continue;
    const v = args[name];
    if (!matches(type, v)) {
      throw new WardenError(
        'INVALID_ARGUMENTS',
        `Argument "${name}" must be ${type === 'integer' ? 'an integer' : `a ${type}`}`,
        {
          rule: `policy.argument-type:${name}`,
          detail: `policies read context.arguments.${name} as ${type}; got ${v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v}`,
        },
      );
    }
    out[name] = v as string | number | boolean;
  }
  return out;
}
