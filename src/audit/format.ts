/**
 * Human rendering of entries for `warden audit tail`. Values come from agents
 * (tool names, ids), so they are escaped: an ANSI or bidi control sequence in
 * a tool name must not repaint the operator's terminal.
 */
import type { AuditEntry } from './types.js';

/** Longest value shown before it is cut with an ellipsis. */
const MAX_VALUE = 120;
/** Width of the event column (the longest event names are 16 characters). */
const EVENT_WIDTH = 16;

// C0/C1 controls (incl. ESC and CSI), DEL, and the bidi / zero-width marks used to spoof text.
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point.
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g;

/** A value safe to print as `key=value`: plain tokens bare, anything else quoted and escaped. */
function show(v: string): string {
  const cut = v.length > MAX_VALUE ? v.slice(0, MAX_VALUE) : v;
  const more = cut === v ? '' : '…';
  if (/^[\x21-\x7e]+$/.test(cut) && !cut.includes('"')) return cut + more;
  return JSON.stringify(cut + more).replace(
    UNSAFE,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

function time(ts: number): string {
  const d = new Date(ts);
  return Number.isNaN(d.getTime()) ? `ts=${String(ts)}` : d.toISOString();
}

/** One line: ISO time, seq, event, agent (or actor), tool, result, decision code/rule, trace id. */
export function formatEntry(e: AuditEntry): string {
  const parts = [time(e.ts), `#${e.seq}`, show(String(e.event)).padEnd(EVENT_WIDTH)];
  if (e.agentId !== null) parts.push(`agent=${show(e.agentId)}`);
  else if (e.actorId !== null) parts.push(`actor=${show(`${e.actorType.toLowerCase()}:${e.actorId}`)}`);
  else parts.push(`actor=${show(e.actorType.toLowerCase())}`);
  if (e.toolName !== null) parts.push(`tool=${show(e.toolName)}`);
  if (e.result !== null) parts.push(`result=${show(e.result)}`);
  if (e.decision !== null) {
    parts.push(`decision=${e.decision.allowed ? 'allow' : 'deny'}`);
    if (e.decision.code !== undefined) parts.push(`code=${show(e.decision.code)}`);
    if (e.decision.rule !== undefined) parts.push(`rule=${show(e.decision.rule)}`);
  }
  if (e.latencyMs !== null) parts.push(`${e.latencyMs}ms`);
  parts.push(`trace=${show(e.traceId)}`);
  return parts.join(' ');
}
