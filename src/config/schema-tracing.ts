/**
 * The `tracing:` section (issue #8): OpenTelemetry spans per tool call and per
 * pipeline step, off by default. The SDK is loaded only when this is on, and
 * a gateway told to trace that cannot load it refuses to start (docs/monitoring.md).
 */
import { z } from 'zod';
import { httpUrlField } from './fields.js';

/** `otlp-http`: OTLP/HTTP (JSON) to a collector; `console`: each span printed on stdout (trying it out). */
export const TRACE_EXPORTERS = ['otlp-http', 'console'] as const;

export const tracingSchema = z
  .strictObject({
    enabled: z.boolean().default(false),
    exporter: z.enum(TRACE_EXPORTERS).default('otlp-http'),
    /**
     * The collector's OTLP/HTTP traces URL (e.g. http://collector:4318/v1/traces). Absent: the
     * exporter's own default, which honours OTEL_EXPORTER_OTLP_TRACES_ENDPOINT. Shown in errors:
     * put credentials in OTEL_EXPORTER_OTLP_HEADERS, never in the URL.
     */
    endpoint: httpUrlField(true).optional(),
    serviceName: z.string().min(1).max(200).default('warden'),
    /** Share of calls recorded, decided on the trace id; a caller's sampled flag does not override it. */
    sampleRatio: z.number().min(0).max(1).default(1),
  })
  .prefault({});

/** The resolved `tracing:` section. */
export type TracingConfig = z.output<typeof tracingSchema>;

/** The keys of the section, for "did you mean …?" hints. */
export const TRACING_KEYS = Object.keys(tracingSchema.unwrap().shape);

/** The section's default (the embedded default config uses it): off. */
export const DEFAULT_TRACING: TracingConfig = {
  enabled: false,
  exporter: 'otlp-http',
  serviceName: 'warden',
  sampleRatio: 1,
};
