/**
 * Per-tool argument constraints from config (`tools.<name>.arguments`,
 * `forbiddenKeys`), on top of the upstream's own schema: the operator's
 * narrower idea of what a call may carry. Checks are strict about types —
 * "100" is not a number, ["x"] is not a string — and never change a value.
 */
import type { ArgumentRule } from '../config/types.js';

/** Keys refused at any depth, whatever the config says: prototype-pollution vectors. */
export const ALWAYS_FORBIDDEN_KEYS: readonly string[] = ['__proto__', 'constructor', 'prototype'];

const MAX_SEGMENT = 64;
const MAX_PATH = 200;

/** An argument path for messages (`items[0].sku`), with over-long caller-chosen keys cut short. */
export function formatPath(path: ReadonlyArray<string | number>): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else {
      const key = p.length > MAX_SEGMENT ? `${p.slice(0, MAX_SEGMENT)}…` : p;
      out += out === '' ? key : `.${key}`;
    }
  }
  return out.length > MAX_PATH ? `${out.slice(0, MAX_PATH)}…` : out;
}

/**
 * The path of the first forbidden key anywhere in `value`, or null. Own keys
 * only, as JSON.parse creates them: `{"__proto__": …}` parses to an own
 * property named `__proto__`, which a later spread or merge could turn into a
 * prototype write. Depth is bounded before this runs (maxJsonDepth).
 */
export function findForbiddenKey(
  value: unknown,
  forbidden: ReadonlySet<string>,
): Array<string | number> | null {
  const stack: Array<[unknown, Array<string | number>]> = [[value, []]];
  while (stack.length > 0) {
    const [v, path] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (Array.isArray(v)) {
      v.forEach((child, i) => {
        stack.push([child, [...path, i]]);
      });
      continue;
    }
    for (const key of Object.keys(v)) {
      if (forbidden.has(key)) return [...path, key];
      stack.push([(v as Record<string, unknown>)[key], [...path, key]]);
    }
  }
  return null;
}

function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'an integer' : 'a number';
  if (typeof v === 'object') return 'an object';
  return `a ${typeof v}`;
}

function hasType(type: NonNullable<ArgumentRule['type']>, v: unknown): boolean {
  switch (type) {
    case 'integer':
      return typeof v === 'number' && Number.isInteger(v);
    case 'number':
      return typeof v === 'number' && Number.isFinite(v);
    case 'array':
      return Array.isArray(v);
    case 'object':
      return typeof v === 'object' && v !== null && !Array.isArray(v);
    default:
      return typeof v === type;
  }
}

/** Length in code points, as JSON Schema counts it; stops counting past `cap`. */
function codePoints(s: string, cap: number): number {
  if (s.length <= cap) {
    let n = 0;
    for (const _ of s) n++;
    return n;
  }
  let n = 0;
  for (const _ of s) if (++n > cap) break;
  return n;
}

const patterns = new Map<string, RegExp>();

/** A config pattern as a full-string, Unicode-aware matcher (compiled once; config checked it parses). */
function fullMatch(pattern: string): RegExp {
  let re = patterns.get(pattern);
  if (!re) {
    // Anchored here as well, so `ORD-\d+` cannot match inside "xORD-1; DROP…".
    re = new RegExp(`^(?:${pattern})$`, 'u');
    patterns.set(pattern, re);
  }
  return re;
}

function list(values: ReadonlyArray<string | number | boolean>): string {
  const text = values.map((v) => JSON.stringify(v)).join(', ');
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

/** What is wrong with `value` under `rule` (a public message, never echoing the value), or null. */
export function checkArgumentRule(rule: ArgumentRule, value: unknown): string | null {
  if (rule.type !== undefined && !hasType(rule.type, value)) {
    return `expected ${rule.type === 'integer' || rule.type === 'array' || rule.type === 'object' ? 'an' : 'a'} ${rule.type}, got ${kindOf(value)}`;
  }
  // Strict equality: "100" is not 100, true is not "true".
  if (rule.enum !== undefined && !rule.enum.some((e) => e === value)) {
    return `expected one of ${list(rule.enum)}`;
  }
  if (rule.pattern !== undefined || rule.minLength !== undefined || rule.maxLength !== undefined) {
    if (typeof value !== 'string') return `expected a string, got ${kindOf(value)}`;
    if (rule.maxLength !== undefined && codePoints(value, rule.maxLength) > rule.maxLength) {
      return `expected at most ${rule.maxLength} characters`;
    }
    if (rule.minLength !== undefined && codePoints(value, rule.minLength) < rule.minLength) {
      return `expected at least ${rule.minLength} characters`;
    }
    if (rule.pattern !== undefined && !fullMatch(rule.pattern).test(value)) {
      return `expected a string matching ${rule.pattern.slice(0, 200)}`;
    }
  }
  if (rule.minimum !== undefined || rule.maximum !== undefined) {
    if (typeof value !== 'number' || !Number.isFinite(value))
      return `expected a number, got ${kindOf(value)}`;
    if (rule.minimum !== undefined && value < rule.minimum) return `expected at least ${rule.minimum}`;
    if (rule.maximum !== undefined && value > rule.maximum) return `expected at most ${rule.maximum}`;
  }
  if (rule.maxItems !== undefined) {
    if (!Array.isArray(value)) return `expected an array, got ${kindOf(value)}`;
    if (value.length > rule.maxItems) return `expected at most ${rule.maxItems} items`;
  }
  return null;
}
