/**
 * Config rules → counters: each rate or budget rule gets a rule id (named in
 * denials and the audit log), a store key prefix derived from its definition,
 * and a key per subject (agent, session, agent × tool).
 */
import { createHash } from 'node:crypto';
import type { BudgetConfig, RateLimitConfig } from '../config/limits-types.js';

/** Budgets are counted in integer micro-units: Redis counters are integers, and 0.1 + 0.2 ≠ 0.3. */
export const COST_UNITS_PER_COST = 1_000_000;

/** A cost (tools' `cost`, budgets' `amount`) as integer micro-units. */
export function toCostUnits(cost: number): number {
  return Number.isFinite(cost) && cost > 0 ? Math.round(cost * COST_UNITS_PER_COST) : 0;
}

/** Who a call is, as far as counters care. */
export interface LimitSubject {
  agentId: string;
  sessionId: string;
  /** The resolved tool's public name (absent for the caller-level checks). */
  tool?: string;
}

/** One rule as the limiter runs it. */
export interface CompiledRule {
  kind: 'rate' | 'budget';
  /** `limits.rate:<per>[:tool]` or `limits.budget:<per>[:tool]` (with `#n` when ids would repeat). */
  id: string;
  per: 'agent' | 'agent-tool' | 'session';
  tool: string | undefined;
  /** The configured limit: calls (rates) or cost units (budgets). */
  limit: number;
  /** The limit in store points: calls, or cost micro-units. */
  points: number;
  windowSeconds: number;
  /** Store key prefix: `<namespace>:<kind>:<hash of the definition>`. */
  keyPrefix: string;
}

/** Whether `rule` counts this call. Caller-level rules (agent, session) need no tool; agent × tool ones do. */
export function applies(rule: CompiledRule, subject: LimitSubject): boolean {
  if (rule.per !== 'agent-tool') return true;
  if (subject.tool === undefined) return false;
  return rule.tool === undefined || rule.tool === subject.tool;
}

/** The counter key of `subject` under `rule` (each part encoded, so no id can forge another's key). */
export function subjectKey(rule: CompiledRule, subject: LimitSubject): string {
  const enc = encodeURIComponent;
  if (rule.per === 'session') return enc(subject.sessionId);
  if (rule.per === 'agent') return enc(subject.agentId);
  return `${enc(subject.agentId)}:${enc(subject.tool ?? '')}`;
}

/**
 * The key prefix hashes the rule's definition: a changed limit starts fresh
 * counters, and two configurations sharing one Redis never read each other's
 * counts unless their rules (and namespace) are the same — which is exactly how
 * replicas of one deployment share a global limit.
 */
function keyPrefix(namespace: string, kind: 'rate' | 'budget', definition: unknown): string {
  const hash = createHash('sha256').update(JSON.stringify(definition)).digest('hex').slice(0, 16);
  return `${namespace}:${kind}:${hash}`;
}

function baseId(kind: 'rate' | 'budget', per: string, tool: string | undefined): string {
  return `limits.${kind}:${per}${tool === undefined ? '' : `:${tool}`}`;
}

/** Compile the configured rates and budgets (ids made unique, so a denial names one rule). */
export function compileRules(
  namespace: string,
  rates: readonly RateLimitConfig[],
  budgets: readonly BudgetConfig[],
): CompiledRule[] {
  const out: CompiledRule[] = [];
  for (const r of rates) {
    out.push({
      kind: 'rate',
      id: baseId('rate', r.per, r.tool),
      per: r.per,
      tool: r.tool,
      limit: r.points,
      points: r.points,
      windowSeconds: Math.max(1, Math.ceil(r.durationMs / 1000)),
      keyPrefix: keyPrefix(namespace, 'rate', [r.per, r.tool ?? null, r.points, r.durationMs]),
    });
  }
  for (const b of budgets) {
    out.push({
      kind: 'budget',
      id: baseId('budget', b.per, b.tool),
      per: b.per,
      tool: b.tool,
      limit: b.amount,
      points: toCostUnits(b.amount),
      windowSeconds: Math.max(1, Math.ceil(b.periodMs / 1000)),
      keyPrefix: keyPrefix(namespace, 'budget', [b.per, b.tool ?? null, b.amount, b.periodMs]),
    });
  }
  const seen = new Map<string, number>();
  for (const r of out) seen.set(r.id, (seen.get(r.id) ?? 0) + 1);
  const nth = new Map<string, number>();
  for (const r of out) {
    if ((seen.get(r.id) ?? 0) < 2) continue;
    const n = (nth.get(r.id) ?? 0) + 1;
    nth.set(r.id, n);
    r.id = `${r.id}#${n}`;
  }
  return out;
}
