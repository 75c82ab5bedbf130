/**
 * Redaction (issue #7): replace detected spans with a marker that names the
 * type, in plain text or in structured content. Structured content is walked,
 * never serialised and re-parsed, so the result is always valid JSON; only
 * string leaves change, keys are left as they are.
 */
import type { Finding } from './pii.js';

/** What an over-deep subtree or a string beyond the budget becomes: fail closed, never passed through unread. */
export const UNINSPECTED = '[REDACTED:UNINSPECTED]';

/**
 * The most UTF-16 units of one text (and, in {@link redactJson}, of all string leaves together) that are
 * inspected: 4 Mi, about 1.6 s of every detector on one core. Redaction replaces whatever lies beyond with
 * {@link UNINSPECTED}: an oversized result is cut, never passed on partly unread.
 */
export const MAX_INSPECT_CHARS = 4 * 1024 * 1024;

const isHigh = (c: number) => c >= 0xd800 && c <= 0xdbff;
const isLow = (c: number) => c >= 0xdc00 && c <= 0xdfff;
/** Whether index `i` of `s` falls between the two halves of a surrogate pair. */
const splitsPair = (s: string, i: number) =>
  i > 0 && i < s.length && isHigh(s.charCodeAt(i - 1)) && isLow(s.charCodeAt(i));

/** The first `max` UTF-16 units of `text` (one fewer rather than half a surrogate pair): what detectors may be given. */
export function inspectablePrefix(text: string, max: number = MAX_INSPECT_CHARS): string {
  if (text.length <= max) return text;
  const cut = Math.max(0, Math.floor(max));
  return text.slice(0, splitsPair(text, cut) ? cut - 1 : cut);
}

/** The marker for one replaced span, given its type and the exact text it covers. */
export type SpanMarker = (type: string, matched: string) => string;

/**
 * Replaces each span of `text` with `[REDACTED:<TYPE>]` (or what `mark` makes of it); overlapping spans are merged into the first one's
 * marker, and a span edge inside a surrogate pair widens to the whole character. Text beyond `maxChars`
 * (default {@link MAX_INSPECT_CHARS}) becomes {@link UNINSPECTED}.
 */
export function redactText(
  text: string,
  findings: readonly { type: string; start: number; end: number }[],
  opts: { maxChars?: number; mark?: SpanMarker } = {},
): string {
  const head = inspectablePrefix(text, opts.maxChars);
  const tail = head.length < text.length ? UNINSPECTED : '';
  if (findings.length === 0) return tail === '' ? text : head + tail;
  const limit = head.length;
  const spans = [...findings].sort((a, b) => a.start - b.start || b.end - a.end);
  const mark = opts.mark ?? ((type: string) => `[REDACTED:${type}]`);
  let out = '';
  let at = 0;
  // The span being replaced: its marker is written once its end is known (overlaps widen it).
  let open: { type: string; start: number } | undefined;
  const close = () => {
    if (open) out += mark(open.type, text.slice(open.start, at));
    open = undefined;
  };
  for (const f of spans) {
    let start = Math.min(Math.max(Math.trunc(f.start) || 0, 0), limit);
    let end = Math.min(Math.max(Math.trunc(f.end) || 0, start), limit);
    if (end === start) continue;
    if (splitsPair(text, start)) start--;
    if (splitsPair(text, end)) end++;
    if (start < at) {
      at = Math.max(at, end); // overlaps the span just replaced: widen it, no second marker
      continue;
    }
    close();
    out += text.slice(at, start);
    open = { type: f.type, start };
    at = end;
  }
  close();
  return out + text.slice(at, limit) + tail;
}

/** Limits for {@link redactJson}. */
export interface RedactJsonOptions {
  /** Nesting depth walked; a deeper container becomes {@link UNINSPECTED}. Default 64. */
  maxDepth?: number;
  /** String leaves inspected; later strings become {@link UNINSPECTED}. Default 10 000. */
  maxStrings?: number;
  /** Containers and leaves visited (bounds shared-reference blow-up from non-JSON input). Default 100 000. */
  maxNodes?: number;
  /**
   * UTF-16 units inspected over all string leaves; the leaf that crosses it keeps its inspected prefix and
   * ends in {@link UNINSPECTED}, later leaves become it. Default {@link MAX_INSPECT_CHARS}.
   */
  maxChars?: number;
}

/** RFC 6901 escaping of one reference token. */
const pointerToken = (k: string) => k.replace(/~/g, '~0').replace(/\//g, '~1');

/**
 * Returns a redacted copy of `value` (the input is not mutated) and the findings with their JSON Pointer
 * paths; `uninspected` lists the paths replaced wholesale or cut short because a bound was reached or a
 * cycle found.
 */
export function redactJson(
  value: unknown,
  detect: (s: string) => Finding[],
  opts: RedactJsonOptions = {},
): { value: unknown; findings: Array<Finding & { path: string }>; uninspected: string[] } {
  const maxDepth = opts.maxDepth ?? 64;
  const maxStrings = opts.maxStrings ?? 10_000;
  const maxNodes = opts.maxNodes ?? 100_000;
  const maxChars = opts.maxChars ?? MAX_INSPECT_CHARS;
  const findings: Array<Finding & { path: string }> = [];
  const uninspected: string[] = [];
  const ancestors = new Set<object>();
  let strings = 0;
  let nodes = 0;
  let chars = 0;

  const giveUp = (path: string) => {
    uninspected.push(path);
    return UNINSPECTED;
  };

  const walk = (v: unknown, path: string, depth: number): unknown => {
    if (++nodes > maxNodes) return giveUp(path);
    if (typeof v === 'string') {
      if (++strings > maxStrings) return giveUp(path);
      const head = inspectablePrefix(v, maxChars - chars);
      if (head.length === 0 && v.length > 0) return giveUp(path);
      chars += head.length;
      const found = detect(head);
      for (const f of found) findings.push({ ...f, path });
      if (head.length === v.length)
        return found.length === 0 ? v : redactText(v, found, { maxChars: Infinity });
      uninspected.push(path);
      return redactText(head, found, { maxChars: Infinity }) + UNINSPECTED;
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
