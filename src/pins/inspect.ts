/**
 * Tool definitions are text the agent's model reads as instructions from its
 * own side ("tool poisoning"): every string in one (description, title,
 * parameter descriptions, enum values, defaults, annotations, keys) is scored
 * by the injection detector, as a tool result would be. A flagged definition
 * is never approved automatically; an operator looks at it first.
 */
import { detectInjection, INJECTION_THRESHOLD } from '../inspect/index.js';
import type { ToolDefinition } from './hash.js';

/** One detector hit: where in the definition, which rule. */
export interface DefinitionSignal {
  /** Path of the string, e.g. `description` or `inputSchema.properties.path.description`; `*` = all text joined. */
  where: string;
  rule: string;
}

/** The detector's view of one definition. */
export interface DefinitionInspection {
  /** The highest score of any string (or of all of them joined), in [0, 1]. */
  score: number;
  /** True when the score reaches INJECTION_THRESHOLD, or the definition was too big to inspect (fail closed). */
  flagged: boolean;
  signals: DefinitionSignal[];
  /** Set when the definition holds more text than is inspected: it is flagged unread. */
  truncated?: true;
}

/** Text beyond this is not scanned, and the definition is flagged instead (an honest tool needs far less). */
export const MAX_INSPECTED_CHARS = 256 * 1024;
/** Bounds the walk of a hostile schema. */
const MAX_STRINGS = 10_000;

/** Scores every string of `def` for injection. */
export function inspectDefinition(def: ToolDefinition): DefinitionInspection {
  const strings: Array<{ where: string; text: string }> = [];
  let chars = 0;
  let truncated = false;
  const add = (where: string, text: string) => {
    if (text.trim() === '') return;
    if (strings.length >= MAX_STRINGS || chars + text.length > MAX_INSPECTED_CHARS) {
      truncated = true;
      return;
    }
    chars += text.length;
    strings.push({ where, text });
  };
  const walk = (value: unknown, where: string, depth: number): void => {
    if (truncated) return;
    if (typeof value === 'string') {
      add(where, value);
      return;
    }
    if (typeof value !== 'object' || value === null) return;
    if (depth > 64) {
      truncated = true;
      return;
    }
    if (Array.isArray(value)) {
      for (const [i, v] of value.entries()) walk(v, `${where}[${i}]`, depth + 1);
      return;
    }
    for (const [k, v] of Object.entries(value)) {
      const path = where === '' ? k : `${where}.${k}`;
      // Property names are read by the model too (`ignore_previous_instructions: string`).
      add(`${path} (key)`, k);
      walk(v, path, depth + 1);
    }
  };
  walk(def, '', 0);

  let score = 0;
  const signals: DefinitionSignal[] = [];
  for (const { where, text } of strings) {
    const r = detectInjection(text, { source: 'tool-result' });
    score = Math.max(score, r.score);
    for (const s of r.signals) signals.push({ where, rule: s.rule });
  }
  // Instructions split over several fields score only when read together, as the model reads them.
  const joined = detectInjection(strings.map((s) => s.text).join('\n'), { source: 'tool-result' });
  if (joined.score > score) {
    score = joined.score;
    for (const s of joined.signals) signals.push({ where: '*', rule: s.rule });
  }
  return {
    score,
    flagged: truncated || score >= INJECTION_THRESHOLD,
    signals,
    ...(truncated ? { truncated: true as const } : {}),
  };
}
