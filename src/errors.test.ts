import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_STATUS, errorBody, toWardenError, WardenError } from './errors.js';

describe('errors', () => {
  it('every code is documented in docs/errors.md with its status', () => {
    const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
    for (const [code, status] of Object.entries(ERROR_STATUS)) {
      expect(doc, code).toMatch(new RegExp(`\\|\\s*\`${code}\`\\s*\\|\\s*${status}\\s*\\|`));
    }
  });

  it('serialises public fields only', () => {
    const e = new WardenError('TOOL_DENIED', 'denied', { rule: 'r1', detail: 'secret detail' });
    const body = errorBody(e, 'trace-1');
    expect(body).toEqual({
      error: { code: 'TOOL_DENIED', message: 'denied', traceId: 'trace-1', rule: 'r1' },
    });
    expect(JSON.stringify(body)).not.toContain('secret detail');
  });

  it('wraps unknown errors as INTERNAL with a fixed message', () => {
    const e = toWardenError(new Error('db password is hunter2'));
    expect(e.code).toBe('INTERNAL');
    expect(e.message).toBe('Internal error');
    expect(e.status).toBe(500);
  });
});
