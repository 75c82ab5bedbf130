import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isWardenError } from '../errors.js';
import { resolveHeaderSecret, resolveSecret } from './secrets.js';

const dir = mkdtempSync(join(tmpdir(), 'warden-secrets-'));

async function rejection(p: Promise<unknown>): Promise<Error> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(isWardenError(e, 'CONFIG_INVALID')).toBe(true);
  return e as Error;
}

describe('resolveSecret', () => {
  it('reads an env ref from the given environment', async () => {
    await expect(resolveSecret({ env: 'TOKEN' }, { TOKEN: 'abc' })).resolves.toBe('abc');
  });

  it('names a missing or empty variable', async () => {
    const e = await rejection(resolveSecret({ env: 'TOKEN' }, { OTHER: 'do-not-leak' }));
    expect(e.message).toBe('secret reference {env: TOKEN}: environment variable TOKEN is not set');
    await rejection(resolveSecret({ env: 'TOKEN' }, { TOKEN: '' }));
  });

  it('reads a file ref and trims it', async () => {
    const file = join(dir, 'token');
    writeFileSync(file, '  s3cret\n');
    await expect(resolveSecret({ file })).resolves.toBe('s3cret');
  });

  it('names an unreadable or empty file without its contents', async () => {
    const missing = join(dir, 'missing');
    const e = await rejection(resolveSecret({ file: missing }));
    expect(e.message).toBe(`secret reference {file: ${missing}}: cannot read the file (ENOENT)`);
    const empty = join(dir, 'empty');
    writeFileSync(empty, '\n\n');
    expect((await rejection(resolveSecret({ file: empty }))).message).toContain('the file is empty');
  });

  it('prefixes header secrets', async () => {
    await expect(resolveHeaderSecret({ env: 'T', prefix: 'Bearer ' }, { T: 'tok' })).resolves.toBe(
      'Bearer tok',
    );
    await expect(resolveHeaderSecret({ env: 'T' }, { T: 'tok' })).resolves.toBe('tok');
  });
});
