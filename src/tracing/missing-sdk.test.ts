import { describe, expect, it, vi } from 'vitest';
import { DEFAULT_TRACING } from '../config/schema-tracing.js';
import { isWardenError } from '../errors.js';
import { startTracing } from './index.js';

// What an install with --omit=optional looks like from here: the SDK side cannot be imported.
vi.mock('./sdk.js', () => {
  throw new Error("Cannot find package '@opentelemetry/sdk-trace-base'");
});

describe('tracing without the SDK', () => {
  it('refuses to start traced, naming the cause and the way out', async () => {
    const e = await startTracing({ ...DEFAULT_TRACING, enabled: true }).catch((err: unknown) => err);
    expect(isWardenError(e, 'CONFIG_INVALID')).toBe(true);
    expect((e as Error).message).toMatch(
      /tracing\.enabled is true but the OpenTelemetry SDK could not be loaded/,
    );
    expect((e as Error).message).toMatch(/--omit=optional/);
  });

  it('is not needed while tracing is off', async () => {
    expect(await startTracing(DEFAULT_TRACING)).toBeUndefined();
  });
});
