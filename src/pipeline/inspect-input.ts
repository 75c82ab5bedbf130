import {
  detectInjection,
  detectPii,
  detectSecrets,
  normalize,
  redactSecretsInJson,
} from '../inspect/index.js';
import type { CallState, PipelineDeps, Step } from './types.js';

/** The detectors' findings on a call's arguments: what policy sees as `context.detectors`. */
export interface ArgumentFindings {
  /** Heuristic injection score, 0–100. */
  injection?: number;
  /** The operator's classifier score, 0–100 (absent: not configured, or no opinion on failure in open mode). */
  classifier?: number;
  /** Secrets found. */
  secrets?: number;
  /** PII found. */
  pii?: number;
  /** The injection rules that fired, and the secret types found (for the audit entry; never values). */
  signals?: string[];
  secretTypes?: string[];
  /** Why the classifier gave no score (timeout, refused, bad answer), and what its fail mode made of it. */
  classifierError?: string;
}

/**
 * The findings as audit data. The audit log redacts values under secret-looking keys
 * (`secrets`, `AWS_ACCESS_KEY_ID`, `US_SSN` …), so counts and types are stored under neutral
 * names and types as values: `{ injection, classifier, pii, leaks, leakTypes, signals }`.
 */
export function auditDetectors(d: ArgumentFindings): Record<string, unknown> {
  return {
    ...(d.injection === undefined ? {} : { injection: d.injection }),
    ...(d.classifier === undefined ? {} : { classifier: d.classifier }),
    ...(d.pii === undefined ? {} : { pii: d.pii }),
    ...(d.secrets === undefined ? {} : { leaks: d.secrets }),
    ...(d.secretTypes ? { leakTypes: d.secretTypes } : {}),
    ...(d.signals ? { signals: d.signals } : {}),
    ...(d.classifierError ? { classifierError: d.classifierError } : {}),
  };
}

/** Arguments larger than this are inspected up to here (the body limit bounds them anyway). */
const MAX_ARGUMENT_TEXT = 256 * 1024;

/** Every key and string value of the arguments, one per line, in walk order. */
export function argumentText(
  value: unknown,
  out: string[] = [],
  budget = { left: MAX_ARGUMENT_TEXT },
): string {
  const push = (s: string) => {
    if (budget.left <= 0) return;
    out.push(s.length > budget.left ? s.slice(0, budget.left) : s);
    budget.left -= s.length + 1;
  };
  const walk = (v: unknown) => {
    if (typeof v === 'string') push(v);
    else if (Array.isArray(v)) for (const x of v) walk(x);
    else if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        push(k);
        walk(x);
      }
    }
  };
  walk(value);
  return out.join('\n');
}

const percent = (x: number) => Math.round(Math.min(1, Math.max(0, x)) * 100);

/**
 * Step: the arguments through the detectors (injection heuristics, the
 * operator's classifier, secrets, PII) before policy decides. Scores only:
 * this step never refuses a call; policy reads `context.detectors` and
 * decides what a score means.
 */
export function inspectInput(deps: Pick<PipelineDeps, 'inspection' | 'auditHmac'>): Step {
  return {
    name: 'inspect-input',
    async run(state: CallState) {
      const cfg = deps.inspection;
      // Run again on an approver's edited arguments: nothing from the first run may linger.
      state.auditParameters = undefined;
      state.shownParameters = undefined;
      if (!cfg || !state.parameters) return;
      const on = cfg.arguments;
      const classifier = cfg.classifier?.on.includes('arguments') ? cfg.classifier : undefined;
      if (!on.injection && !on.secrets && !on.pii && !classifier) return;
      const text = argumentText(state.parameters);
      const found: ArgumentFindings = {};
      if (text.length === 0) {
        if (on.injection) found.injection = 0;
        if (on.secrets) found.secrets = 0;
        if (on.pii) found.pii = 0;
        state.detectors = found;
        return;
      }
      const verdict = classifier?.classify(text, 'input');
      const normalized = normalize(text);
      if (on.injection) {
        const r = detectInjection(text, { source: 'input', normalized });
        found.injection = percent(r.score);
        if (r.signals.length > 0) found.signals = [...new Set(r.signals.map((s) => s.rule))];
      }
      if (on.secrets) {
        const secrets = await detectSecrets(text, { normalized });
        found.secrets = secrets.length;
        if (secrets.length > 0) {
          found.secretTypes = [...new Set(secrets.map((s) => s.type))];
          // The call goes on (or not) as policy decides; the audit log keeps the arguments without them.
          const hmac = deps.auditHmac;
          const redacted = await redactSecretsInJson(
            state.parameters,
            hmac ? { mark: (type, matched) => `[REDACTED:${type}:${hmac.of(matched)}]` } : {},
          );
          state.auditParameters = redacted.marked;
          state.shownParameters = redacted.value;
        }
      }
      if (on.pii) found.pii = detectPii(text, { normalized }).length;
      if (verdict) {
        const v = await verdict;
        if (v.ok) found.classifier = percent(v.score);
        else {
          found.classifierError = `${v.reason} (fail ${v.failMode})`;
          if (v.score !== null) found.classifier = percent(v.score);
        }
      }
      state.detectors = found;
    },
  };
}
