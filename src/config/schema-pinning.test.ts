import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { embeddedDefault } from './defaults.js';
import { loadConfig } from './load.js';
import { pinningSchema } from './schema-pinning.js';

function issues(value: unknown): string[] {
  const r = pinningSchema.safeParse(value);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('pinning: schema', () => {
  it('defaults to auto, in the file and in the embedded default', () => {
    expect(pinningSchema.parse(undefined)).toEqual({ mode: 'auto' });
    expect(embeddedDefault({ cwd: '/tmp', now: 0 }).pinning).toEqual({ mode: 'auto' });
  });

  it('takes operator, and refuses anything else', () => {
    expect(issues({ mode: 'operator' })).toEqual([]);
    expect(issues({ mode: 'off' })).toHaveLength(1);
    expect(issues({ mod: 'operator' })).toHaveLength(1);
  });

  it('loads from a file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-pinning-'));
    try {
      const file = join(dir, 'warden.yaml');
      writeFileSync(file, 'pinning:\n  mode: operator\n');
      expect((await loadConfig(file)).config.pinning).toEqual({ mode: 'operator' });
      writeFileSync(file, 'pinning:\n  mode: never\n');
      await expect(loadConfig(file)).rejects.toThrow(/pinning\.mode/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
