/**
 * `warden agents register --scope` and `warden token issue --scope`, run in
 * process (commander with the real services on a temp SQLite store).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { registerAgents } from './agents.js';
import { registerToken } from './token.js';

let dir: string;
let config: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'warden-cli-scopes-'));
  config = join(dir, 'warden.yaml');
  writeFileSync(
    config,
    ['dataDir: data', 'store: { url: "sqlite:warden.db" }', 'log: { level: silent }', ''].join('\n'),
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => {
  process.exitCode = undefined;
  vi.restoreAllMocks();
});

/** Run one command line; returns what it printed and the exit code it set. */
async function run(...args: string[]): Promise<{ out: string; err: string; code: number }> {
  let out = '';
  let err = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    out += String(chunk);
    return true;
  });
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    err += String(chunk);
    return true;
  });
  const program = new Command().exitOverride();
  registerAgents(program);
  registerToken(program);
  await program.parseAsync([...args, '--config', config], { from: 'user' });
  vi.restoreAllMocks();
  const code = Number(process.exitCode ?? 0);
  process.exitCode = undefined;
  return { out, err, code };
}

describe('CLI scope options', () => {
  it('agents register --scope stores the patterns; token issue --scope grants a covered resource scope', async () => {
    const reg = await run(
      'agents',
      'register',
      '--id',
      'cli-reader',
      '--type',
      'support',
      '--owner',
      'qa',
      '--expires',
      '1d',
      '--allow',
      'lookup_order',
      '--scope',
      'orders:read:order:*,tickets:create:org:org_1',
      '--json',
    );
    expect(reg.code, reg.err).toBe(0);
    expect((JSON.parse(reg.out) as { scopes: string[] }).scopes).toEqual([
      'orders:read:order:*',
      'tickets:create:org:org_1',
    ]);

    const issued = await run(
      'token',
      'issue',
      '--agent',
      'cli-reader',
      '--scope',
      'tool:lookup_order:execute orders:read:order:ORD-4F8K2P1Z',
      '--json',
    );
    expect(issued.code, issued.err).toBe(0);
    expect((JSON.parse(issued.out) as { scopes: string[] }).scopes).toEqual([
      'tool:lookup_order:execute',
      'orders:read:order:ORD-4F8K2P1Z',
    ]);
  });

  it('token issue --scope outside the agent patterns fails with INVALID_REQUEST and prints no token', async () => {
    const r = await run('token', 'issue', '--agent', 'cli-reader', '--scope', 'orders:read');
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toBe('warden: INVALID_REQUEST: A requested scope is not allowed for this agent\n');
  });

  it('agents register refuses a malformed pattern', async () => {
    const r = await run(
      'agents',
      'register',
      '--id',
      'cli-bad',
      '--type',
      't',
      '--owner',
      'o',
      '--expires',
      '1d',
      '--scope',
      'orders:read:user:usr_*',
    );
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^warden: INVALID_REQUEST: Invalid agent: scopes\.0: scope pattern/);
  });
});
