/** The pipeline's ports from a configuration: the one place the gateway's wiring is written. */
import type { WardenConfig } from '../config/types.js';
import type { ClassifierVerdict } from '../inspect/index.js';
import type { PipelineDeps } from './types.js';

/** The pipeline's ports as the gateway wires them (the benchmarks build theirs here too, so what they measure is what runs). */
export function pipelineDepsFor(
  config: WardenConfig,
  parts: Pick<
    Required<PipelineDeps>,
    'tokens' | 'sessions' | 'tools' | 'audit' | 'clock' | 'limiter' | 'policy' | 'metrics'
  > &
    Pick<
      PipelineDeps,
      'log' | 'approvals' | 'alert' | 'inFlight' | 'tracer' | 'breakers' | 'auditHmac' | 'auditHealth'
    > & {
      /** The operator's injection classifier, built from `inspection.classifier` (headers resolved). */
      classifier?: { classify(text: string, source: 'input' | 'tool-result'): Promise<ClassifierVerdict> };
    },
): PipelineDeps & Pick<Required<PipelineDeps>, 'tokens' | 'sessions'> {
  const { classifier, ...ports } = parts;
  const inspection = config.inspection;
  return {
    ...ports,
    inspection: {
      arguments: inspection.arguments,
      results: inspection.results,
      ...(classifier && inspection.classifier
        ? { classifier: { on: inspection.classifier.on, classify: classifier.classify } }
        : {}),
    },
    riskOf: (tool: string) => config.tools[tool]?.risk ?? 'low',
    // Own keys only: a tool named "constructor" must not find Object.prototype's.
    toolConfig: (tool: string) => (Object.hasOwn(config.tools, tool) ? config.tools[tool] : undefined),
    limits: { maxJsonDepth: config.server.maxJsonDepth },
    approvalSettings: {
      mode: config.approvals.mode,
      progressIntervalMs: config.approvals.progressIntervalMs,
    },
  };
}
