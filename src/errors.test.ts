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

  it('wraps store failures (SQLite locked, PostgreSQL gone) as STORE_UNAVAILABLE, not INTERNAL', () => {
    const busy = Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' });
    const gone = Object.assign(new Error('terminating connection due to administrator command'), {
      code: '57P01',
    });
    const cut = new Error('Connection terminated unexpectedly');
    const wrapped = new Error('claim failed', {
      cause: Object.assign(new Error('x'), { code: 'ECONNREFUSED' }),
    });
    for (const err of [busy, gone, cut, wrapped]) {
      const e = toWardenError(err);
      expect(e.code).toBe('STORE_UNAVAILABLE');
      expect(e.status).toBe(503);
      expect(e.message).toBe('The store is unavailable');
    }
    // A constraint violation is the request's (or a bug), not the store being down.
    const dup = Object.assign(new Error('UNIQUE constraint failed'), {
      code: 'SQLITE_CONSTRAINT_PRIMARYKEY',
    });
    expect(toWardenError(dup).code).toBe('INTERNAL');
    expect(toWardenError(Object.assign(new Error('dup'), { code: '23505' })).code).toBe('INTERNAL');
  });
});
