/**
 * Obligations: what an allowed call must still satisfy, read from the Cedar
 * annotations of the policies that determined the decision. `@approval` and
 * `@risk` have meaning here; any other annotation is carried along for later
 * steps. Obligations only ever tighten: risk is raised, never lowered.
 */
import type { RiskClass } from '../config/types.js';

/** What the determining policies ask of an allowed call. */
export type Obligations = { approval?: 'required' | string; risk?: RiskClass } & Record<string, string>;

/** Risk classes in increasing order of caution. */
export const RISK_ORDER: Readonly<Record<RiskClass, number>> = { low: 0, medium: 1, high: 2, critical: 3 };

/** Annotations that describe a policy rather than oblige a call. */
const DESCRIPTIVE = new Set(['id', 'description', 'obligation']);

/** The higher of two risk classes. */
export function maxRisk(a: RiskClass, b: RiskClass): RiskClass {
  return RISK_ORDER[b] > RISK_ORDER[a] ? b : a;
}

/**
 * Merge the annotations of the determining policies (in id order, so the result
 * does not depend on Cedar's ordering): the highest risk wins, `approval` is
 * required as soon as one policy asks, other keys keep the first value.
 */
export function mergeObligations(annotations: ReadonlyArray<Readonly<Record<string, string>>>): Obligations {
  const out: Obligations = {};
  for (const a of annotations) {
    for (const [k, v] of Object.entries(a)) {
      if (DESCRIPTIVE.has(k)) continue;
      if (k === 'risk') {
        if (v in RISK_ORDER) out.risk = out.risk ? maxRisk(out.risk, v as RiskClass) : (v as RiskClass);
      } else if (k === 'approval') {
        out.approval = out.approval === 'required' || v === 'required' ? 'required' : (out.approval ?? v);
      } else if (!(k in out)) {
        out[k] = v;
      }
    }
  }
  return out;
}

/**
 * The risk class a call runs under: the tool's configured class raised by the
 * obligations. Any approval obligation makes the call at least high risk (a
 * human must look), whatever the value names.
 */
export function effectiveRisk(configured: RiskClass, obligations: Obligations | undefined): RiskClass {
  if (!obligations) return configured;
  let risk = configured;
  if (obligations.risk !== undefined && obligations.risk in RISK_ORDER)
    risk = maxRisk(risk, obligations.risk);
  if (obligations.approval !== undefined) risk = maxRisk(risk, 'high');
  return risk;
}
