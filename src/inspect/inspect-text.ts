/**
 * Every detector over one text, as `warden inspect` reports it (DESIGN.md's
 * contract): findings with kind, type, offsets into the original and a score,
 * and the text with PII and secrets redacted.
 */
import { detectInjection, INJECTION_THRESHOLD } from './injection.js';
import { normalize } from './normalize.js';
import { detectPii } from './pii.js';
import { redactText } from './redact.js';
import { detectSecrets } from './secrets.js';

/** One finding as `warden inspect` prints it. */
export interface InspectFinding {
  kind: 'injection' | 'pii' | 'secret';
  type: string;
  start: number;
  end: number;
  score: number;
}

export interface Inspection {
  findings: InspectFinding[];
  /** The text with each PII and secret span replaced by `[REDACTED:<TYPE>]`. */
  redacted: string;
}

const round = (x: number) => Math.round(x * 1000) / 1000;

/** Runs the injection, PII and secrets detectors over `text`. */
export async function inspectText(
  text: string,
  opts: { source?: 'input' | 'tool-result' } = {},
): Promise<Inspection> {
  const normalized = normalize(text);
  const [secrets, pii] = [await detectSecrets(text, { normalized }), detectPii(text, { normalized })];
  const injection = detectInjection(text, { source: opts.source ?? 'input', normalized });
  const findings: InspectFinding[] = [];
  if (injection.score >= INJECTION_THRESHOLD) {
    // Each signal that contributed, with the text's overall score: policy acts on the score.
    for (const s of injection.signals) {
      findings.push({
        kind: 'injection',
        type: s.rule,
        start: s.start,
        end: s.end,
        score: round(injection.score),
      });
    }
  }
  for (const f of pii)
    findings.push({ kind: 'pii', type: f.type, start: f.start, end: f.end, score: round(f.score) });
  for (const f of secrets) {
    findings.push({ kind: 'secret', type: f.type, start: f.start, end: f.end, score: round(f.score) });
  }
  findings.sort((a, b) => a.start - b.start || a.end - b.end);
  const redacted = redactText(
    text,
    findings.filter((f) => f.kind !== 'injection'),
  );
  return { findings, redacted };
}
