import { expect, it } from 'vitest';
import { GENESIS_HASH } from '../store/index.js';
import { formatEntry } from './format.js';
import type { AuditEntry } from './types.js';

const base: AuditEntry = {
  seq: 42,
  id: 'aud_1',
  ts: Date.UTC(2026, 10, 25, 12, 0, 0),
  prevHash: GENESIS_HASH,
  hash: 'a'.repeat(64),
  traceId: 'tr_abc',
  event: 'TOOL_DENIED',
  actorType: 'AI_AGENT',
  actorId: null,
  agentId: 'demo-support',
  agentType: 'customer-support',
  sessionId: 'ses_1',
  triggerUserId: null,
  triggerSource: null,
  toolName: 'delete_account',
  parameters: null,
  reasoning: null,
  decision: { allowed: false, code: 'TOOL_DENIED', rule: 'deny-destructive', reasons: ['denied tool'] },
  result: 'denied',
  latencyMs: 3,
  data: null,
};

it('renders one line with time, seq, event, agent, tool, result, decision and trace', () => {
  expect(formatEntry(base)).toBe(
    '2026-11-25T12:00:00.000Z #42 TOOL_DENIED      agent=demo-support tool=delete_account result=denied ' +
      'decision=deny code=TOOL_DENIED rule=deny-destructive 3ms trace=tr_abc',
  );
});

it('names a human or system actor when there is no agent', () => {
  const line = formatEntry({
    ...base,
    event: 'AGENT_DISABLED',
    actorType: 'HUMAN',
    actorId: 'alice',
    agentId: null,
    toolName: null,
    decision: null,
    result: null,
    latencyMs: null,
  });
  expect(line).toBe('2026-11-25T12:00:00.000Z #42 AGENT_DISABLED   actor=human:alice trace=tr_abc');
  expect(formatEntry({ ...base, actorType: 'SYSTEM', agentId: null, actorId: null })).toContain(
    'actor=system',
  );
});

it('escapes terminal control and bidi characters from agent-supplied values', () => {
  const line = formatEntry({ ...base, toolName: 'evil\u001b[2J\u009b31m\u202Etxt.exe', agentId: 'a b' });
  for (const c of ['\u001b', '\u009b', '\u202e']) expect(line).not.toContain(c);
  expect(line).toContain('tool="evil\\u001b[2J\\u009b31m\\u202etxt.exe"');
  expect(line).toContain('agent="a b"');
  expect(line.split('\n')).toHaveLength(1);
});

it('cuts very long values and survives a bad timestamp', () => {
  const line = formatEntry({ ...base, toolName: 't'.repeat(500), ts: Number.NaN });
  expect(line).toContain(`tool=${'t'.repeat(120)}…`);
  expect(line.startsWith('ts=NaN #42')).toBe(true);
});
