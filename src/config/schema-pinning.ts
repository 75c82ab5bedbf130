/**
 * The `pinning:` section (issue #7): how a tool seen for the first time is
 * approved. A changed definition of an approved tool is always quarantined,
 * whatever the mode (docs/pinning.md).
 */
import { z } from 'zod';

/** `auto`: a first sight is approved unless its definition reads as an injection; `operator`: an operator approves each. */
export const PINNING_MODES = ['auto', 'operator'] as const;

export const pinningSchema = z
  .strictObject({
    mode: z.enum(PINNING_MODES).default('auto'),
  })
  .prefault({});

/** The resolved `pinning:` section. */
export type PinningConfig = z.output<typeof pinningSchema>;

/** The section's default (the embedded default config uses it). */
export const DEFAULT_PINNING: PinningConfig = { mode: 'auto' };
