/** Reads the pipeline's per-step histogram (`warden_pipeline_step_seconds`) out of /metrics text. */
export interface StepTiming {
  step: string;
  count: number;
  sumSeconds: number;
}

export function parseSteps(text: string): StepTiming[] {
  const out = new Map<string, StepTiming>();
  for (const line of text.split('\n')) {
    const m = /^warden_pipeline_step_seconds_(sum|count)\{step="([^"]+)"\} ([0-9.eE+-]+)$/.exec(line);
    if (!m) continue;
    const row = out.get(m[2]!) ?? { step: m[2]!, count: 0, sumSeconds: 0 };
    if (m[1] === 'sum') row.sumSeconds = Number(m[3]);
    else row.count = Number(m[3]);
    out.set(m[2]!, row);
  }
  return [...out.values()];
}
