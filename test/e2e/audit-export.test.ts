/**
 * Issue #9, export for SIEMs: the real `warden audit export` process reads a
 * real store and writes JSON Lines — every entry exactly as stored, seq
 * consecutive across pages — to stdout or atomically to a file; bad flags exit
 * 2 with a readable message and leave no file behind.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AuditEntry, type AuditInput, AuditLog } from '../../src/audit/index.js';
import type { Store } from '../../src/store/index.js';
import { describeResult, runWarden, STACK_FRAME } from '../helpers/cli-process.js';
import { makeTarget } from '../helpers/dialects.js';

const N = 2_345;

function input(i: number): AuditInput {
  return {
    traceId: `export-${i}`,
    event: i % 5 === 0 ? 'TOOL_DENIED' : 'TOOL_CALL',
    actorType: i % 7 === 0 ? 'HUMAN' : 'AI_AGENT',
    agentId: i % 2 === 0 ? 'agent-even' : 'agent-odd',
    toolName: 'lookup_order',
    parameters: { i },
  };
}

describe('warden audit export', () => {
  const target = makeTarget('sqlite');
  const dir = mkdtempSync(join(tmpdir(), 'warden-export-'));
  const config = join(dir, 'warden.yaml');
  let store: Store;

  beforeAll(async () => {
    store = await target.open();
    const log = new AuditLog(store);
    for (let from = 1; from <= N; from += 500) {
      await log.appendMany(Array.from({ length: Math.min(500, N - from + 1) }, (_, k) => input(from + k)));
    }
    writeFileSync(config, `dataDir: data\nstore:\n  url: ${target.url}\n`);
  }, 60_000);
  afterAll(async () => {
    await store?.close();
    await target.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  const warden = (args: string[]) => runWarden(['audit', 'export', '-c', config, ...args], { cwd: dir });

  it('writes every entry as one JSON line on stdout, seq consecutive across pages, as stored', async () => {
    const r = await warden([]);
    expect(r.code, describeResult(r)).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(N);
    const entries = lines.map((l) => JSON.parse(l) as AuditEntry);
    entries.forEach((e, i) => {
      expect(e.seq).toBe(i + 1);
      if (i > 0) expect(e.prevHash).toBe(entries[i - 1]!.hash);
    });
    expect(entries[6]!.actorType).toBe('HUMAN');
    expect(entries[0]!.actorType).toBe('AI_AGENT');
    const [stored] = await new AuditLog(store).read({ afterSeq: 1233, limit: 1 });
    expect(lines[1233]).toBe(JSON.stringify(stored));
    expect(r.stderr).toContain(`exported ${N} entries (seq 1..${N})`);
  });

  it('filters and writes to a file atomically, with a JSON summary', async () => {
    const out = join(dir, 'denied.jsonl');
    const r = await warden([
      '--event',
      'TOOL_DENIED',
      '--agent',
      'agent-even',
      '--after-seq',
      '100',
      '--since',
      '1d',
      '--out',
      out,
      '--json',
    ]);
    expect(r.code, describeResult(r)).toBe(0);
    const seqs = readFileSync(out, 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => (JSON.parse(l) as AuditEntry).seq);
    const expected = Array.from({ length: N }, (_, i) => i + 1).filter((i) => i > 100 && i % 10 === 0);
    expect(seqs).toEqual(expected);
    expect(JSON.parse(r.stdout)).toMatchObject({
      entries: expected.length,
      firstSeq: 110,
      lastSeq: expected.at(-1),
      headSeq: N,
      out,
    });
    // Nothing but the file itself is left in the directory (no temp file).
    expect(readdirSync(dir).filter((f) => f.includes('denied'))).toEqual(['denied.jsonl']);
  });

  it('--help explains the flags with examples', async () => {
    const r = await runWarden(['audit', 'export', '--help'], { cwd: dir });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('--since <time>');
    expect(r.stdout).toContain('warden audit export --since 24h --out audit-today.jsonl');
  });

  it('an empty range exports nothing and says so', async () => {
    const r = await warden(['--until', '2001-01-01']);
    expect(r.code, describeResult(r)).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('exported 0 entries');
  });

  it('bad flags exit 2 with a readable message and leave no file', async () => {
    const out = join(dir, 'never.jsonl');
    const cases: Array<[string[], RegExp]> = [
      [['--since', 'yesterday', '--out', out], /INVALID_REQUEST: --since: expected an ISO 8601 date-time/],
      [['--until', '2025-01-01T10:00:00'], /add Z or an offset/],
      [['--format', 'csv'], /--format: "csv" is not supported; the only format is jsonl/],
      [['--after-seq', '-3'], /--after-seq: expected a whole number/],
      [['--event', 'tool call'], /--event: "tool call" is not an event name/],
      [['--since', '1d', '--until', '2d'], /--since must be before --until/],
    ];
    for (const [args, message] of cases) {
      const r = await warden(args);
      expect(r.code, describeResult(r)).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(STACK_FRAME);
      expect(r.stdout).toBe('');
    }
    expect(existsSync(out)).toBe(false);
  });
});
