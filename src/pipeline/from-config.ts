/** The pipeline's ports from a configuration: the one place the gateway's wiring is written. */
import type { WardenConfig } from '../config/types.js';
import type { PipelineDeps } from './types.js';

/** The pipeline's ports as the gateway wires them (the benchmarks build theirs here too, so what they measure is what runs). */
export function pipelineDepsFor(
  config: WardenConfig,
  parts: Pick<
    Required<PipelineDeps>,
    'tokens' | 'sessions' | 'tools' | 'audit' | 'clock' | 'limiter' | 'policy' | 'metrics'
  > &
    Pick<PipelineDeps, 'log' | 'approvals'>,
): PipelineDeps & Pick<Required<PipelineDeps>, 'tokens' | 'sessions'> {
  return {
    ...parts,
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
