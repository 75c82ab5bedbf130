/**
 * Redaction (issue #7): replace detected spans with a marker that names the
 * type, in plain text or in structured content. Structured content is walked,
 * never serialised and re-parsed, so the result is always valid JSON; only
 * string leaves change, keys are left as they are.
 */
import type { Finding } from './pii.js';

/** What an over-deep subtree or a string beyond the budget becomes: fail closed, never passed through unread. */
export const UNINSPECTED = '[REDACTED:UNINSPECTED]';

/** Replaces each span of `text` with `[REDACTED:<TYPE>]`; overlapping spans are merged into the first one's marker. */
export function redactText(
  text: string,
  findings: readonly { type: string; start: number; end: number }[],
): string {
  if (findings.length === 0) return text;
  const spans = [...findings].sort((a, b) => a.start - b.start || b.end - a.end);
  let out = '';
  let at = 0;
  for (const f of spans) {
    const start = Math.min(Math.max(f.start, 0), text.length);
    const end = Math.min(Math.max(f.end, start), text.length);
    if (start < at) {
      at = Math.max(at, end); // overlaps the span just replaced: widen it, no second marker
      continue;
    }
    if (end === start) continue;
    out += `${text.slice(at, start)}[REDACTED:${f.type}]`;
    at = end;
  }
  return out + text.slice(at);
}

/** Limits for {@link redactJson}. */
export interface RedactJsonOptions {
  /** Nesting depth walked; a deeper container becomes {@link UNINSPECTED}. Default 64. */
  maxDepth?: number;
  /** String leaves inspected; later strings become {@link UNINSPECTED}. Default 10 000. */
  maxStrings?: number;
  /** Containers and leaves visited (bounds shared-reference blow-up from non-JSON input). Default 100 000. */
  maxNodes?: number;
}

/** RFC 6901 escaping of one reference token. */
const pointerToken = (k: string) => k.replace(/~/g, '~0').replace(/\//g, '~1');

/**
 * Returns a redacted copy of `value` (the input is not mutated) and the findings with their JSON Pointer
 * paths; `uninspected` lists the paths replaced wholesale because a bound was reached or a cycle found.
 */
export function redactJson(
  value: unknown,
  detect: (s: string) => Finding[],
  opts: RedactJsonOptions = {},
): { value: unknown; findings: Array<Finding & { path: string }>; uninspected: string[] } {
  const maxDepth = opts.maxDepth ?? 64;
  const maxStrings = opts.maxStrings ?? 10_000;
  const maxNodes = opts.maxNodes ?? 100_000;
  const findings: Array<Finding & { path: string }> = [];
  const uninspected: string[] = [];
  const ancestors = new Set<object>();
  let strings = 0;
  let nodes = 0;

  const giveUp = (path: string) => {
    uninspected.push(path);
    return UNINSPECTED;
  };

  const walk = (v: unknown, path: string, depth: number): unknown => {
    if (++nodes > maxNodes) return giveUp(path);
    if (typeof v === 'string') {
      if (++strings > maxStrings) return giveUp(path);
      const found = detect(v);
      if (found.length === 0) return v;
      for (const f of found) findings.push({ ...f, path });
      return redactText(v, found);
    }
    if (v === null || typeof v !== 'object') return v;
    // As JSON.stringify does: a Date (or anything with toJSON) is serialised first, then inspected.
    const toJSON = (v as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') return walk(toJSON.call(v), path, depth);
    if (depth >= maxDepth || ancestors.has(v)) return giveUp(path);
    ancestors.add(v);
    try {
      if (Array.isArray(v)) {
        return v.map((item, i) => {
          const r = walk(item, `${path}/${i}`, depth + 1);
          return r === undefined || typeof r === 'function' || typeof r === 'symbol' ? null : r;
        });
      }
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(v)) {
        const r = walk((v as Record<string, unknown>)[k], `${path}/${pointerToken(k)}`, depth + 1);
        if (r === undefined || typeof r === 'function' || typeof r === 'symbol') continue;
        // defineProperty, not assignment: a "__proto__" key stays an own data property.
        Object.defineProperty(out, k, { value: r, enumerable: true, writable: true, configurable: true });
      }
      return out;
    } finally {
      ancestors.delete(v);
    }
  };

  return { value: walk(value, '', 0), findings, uninspected };
}
