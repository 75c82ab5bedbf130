/** CLI output helpers: JSON for machines, plain lines for people, errors without stacks. */
import { isWardenError } from '../errors.js';

/** Print `value` as pretty JSON on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Print a readable error (code and message, never a stack) and set the exit code. */
export function reportError(e: unknown, json = false): void {
  const code = isWardenError(e) ? e.code : 'INTERNAL';
  const message = e instanceof Error ? e.message : String(e);
  if (json) process.stdout.write(`${JSON.stringify({ error: { code, message } })}\n`);
  else process.stderr.write(`warden: ${code}: ${message}\n`);
  if (process.env.WARDEN_DEBUG && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
  process.exitCode = 2;
}

/** Format epoch ms as ISO-8601. */
export function iso(ms: number | null | undefined): string {
  return ms === null || ms === undefined ? '-' : new Date(ms).toISOString();
}
