/**
 * Block Kit messages for the Slack notifier. Everything an agent controls
 * (arguments, reasoning, ids, names) is escaped for mrkdwn, so an agent cannot
 * ping `<!channel>`, forge a link or break out of a code block, and is cut to
 * fit Slack's limits (3000 characters per section, 2000 per field, 150 per header).
 */
import type { Approval } from '../approvals/index.js';
import type { ApprovalNotifyEvent, OperatorConfig } from '../config/index.js';
import type { SecurityAlert } from './types.js';

/** A Block Kit block (shape per https://api.slack.com/reference/block-kit/blocks). */
export type SlackBlock = Record<string, unknown>;

/** What chat.postMessage / chat.update get besides channel and ts. */
export interface SlackMessage {
  /** Notification and screen-reader fallback (mrkdwn). */
  text: string;
  blocks: SlackBlock[];
}

/** Button action ids the interactions handler answers to. */
export const APPROVE_ACTION = 'warden_approve';
export const DENY_ACTION = 'warden_deny';

const SECTION_MAX = 3000;
const FIELD_MAX = 2000;
const HEADER_MAX = 150;
const REASONING_MAX = 1500;

/** Escape the three characters Slack's mrkdwn treats as control characters. */
export function escapeMrkdwn(s: string): string {
  return s.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

/** `raw` escaped, cut (whole characters and whole entities) so the result is at most `max` long. */
export function escapedWithin(raw: string, max: number): string {
  const full = escapeMrkdwn(raw);
  if (full.length <= max) return full;
  let out = '';
  for (const ch of raw) {
    const piece = escapeMrkdwn(ch);
    if (out.length + piece.length > max - 1) break;
    out += piece;
  }
  return `${out}…`;
}

function plainWithin(raw: string, max: number): string {
  if (raw.length <= max) return raw;
  return `${Array.from(raw)
    .slice(0, max - 1)
    .join('')}…`;
}

const plain = (text: string) => ({ type: 'plain_text', text, emoji: false });
const mrkdwn = (text: string) => ({ type: 'mrkdwn', text });

/** A Slack date token: rendered in the reader's time zone, with the ISO time as fallback. */
function slackDate(ms: number): string {
  return `<!date^${Math.floor(ms / 1000)}^{date_short_pretty} {time_secs}|${new Date(ms).toISOString()}>`;
}

/** Who decided, for people: a Slack mention when the operator has a Slack id, else their name. */
function decider(decidedBy: string | null, operators: OperatorConfig[]): string {
  if (decidedBy === null) return 'unknown';
  if (decidedBy === 'system:timeout') return 'timeout';
  const id = decidedBy.startsWith('operator:') ? decidedBy.slice('operator:'.length) : decidedBy;
  const op = operators.find((o) => o.id === id);
  // Slack user ids are validated at config load ([UW][A-Z0-9]+), so the mention needs no escaping.
  if (op?.slackUserId) return `<@${op.slackUserId}>`;
  return escapedWithin(op?.name ?? id, 200);
}

function field(label: string, value: string): { type: string; text: string } {
  return mrkdwn(`*${label}*\n${value}`);
}

function detailFields(a: Approval): SlackBlock {
  const risk = a.risk === a.configuredRisk ? a.risk : `${a.risk} (configured: ${a.configuredRisk})`;
  const fields = [
    field('Agent', `${escapedWithin(a.agentId, 400)} (${escapedWithin(a.agentType, 200)})`),
    field('Acting for', a.userId === null ? '—' : escapedWithin(a.userId, 400)),
    field('Risk', escapedWithin(risk, 100)),
    field('Rule', escapedWithin(a.rule, 400)),
    field('Trace id', `\`${codeSafe(escapedWithin(a.traceId, 200))}\``),
    field(
      a.kind === 'review' ? 'Flagged at' : 'Expires',
      slackDate(a.kind === 'review' ? a.createdAt : a.expiresAt),
    ),
  ];
  return { type: 'section', fields: fields.map((f) => ({ ...f, text: f.text.slice(0, FIELD_MAX) })) };
}

/** An id shown as inline code: a backtick would close the span, so it is shown as a look-alike. */
function codeSafe(s: string): string {
  return s.replaceAll('`', 'ˋ');
}

/** Text for a code block: a zero-width space after every backtick followed by another, so no ``` closes it. */
function blockSafe(s: string): string {
  return s.replace(/`(?=`)/g, '`\u200b');
}

function reasoningBlock(a: Approval): SlackBlock {
  const body =
    a.reasoning === null || a.reasoning.trim() === ''
      ? '_none given_'
      : escapedWithin(a.reasoning.trim(), REASONING_MAX)
          .split('\n')
          .map((line) => `>${line}`)
          .join('\n');
  return { type: 'section', text: mrkdwn(`*Agent's stated reasoning*\n${body}`) };
}

function argumentsBlock(a: Approval): SlackBlock {
  const title = '*Arguments* (redacted)\n```';
  const close = '```';
  let json: string;
  try {
    json = JSON.stringify(a.arguments, null, 2) ?? 'null';
  } catch {
    json = '(not serialisable)';
  }
  const room = SECTION_MAX - title.length - close.length - 1;
  return { type: 'section', text: mrkdwn(`${title}${escapedWithin(blockSafe(json), room)}${close}`) };
}

function contextBlock(a: Approval): SlackBlock {
  const tail = a.kind === 'review' ? 'review' : 'approval request';
  return { type: 'context', elements: [mrkdwn(`Warden ${tail} \`${codeSafe(escapedWithin(a.id, 200))}\``)] };
}

function decisionButtons(a: Approval): SlackBlock {
  const tool = escapedWithin(a.toolName, 150);
  return {
    type: 'actions',
    block_id: 'warden_decision',
    elements: [
      { type: 'button', action_id: APPROVE_ACTION, text: plain('Approve'), style: 'primary', value: a.id },
      {
        type: 'button',
        action_id: DENY_ACTION,
        text: plain('Deny'),
        style: 'danger',
        value: a.id,
        confirm: {
          title: plain('Deny this request?'),
          text: mrkdwn(`The agent's call to *${tool}* will be refused.`),
          confirm: plain('Deny'),
          deny: plain('Cancel'),
          style: 'danger',
        },
      },
    ],
  };
}

const OUTCOME: Record<string, string> = {
  approved: 'Approved',
  denied: 'Denied',
  expired: 'Expired',
  reviewed: 'Reviewed',
};

function outcomeBlock(a: Approval, operators: OperatorConfig[]): SlackBlock {
  const outcome = OUTCOME[a.status] ?? a.status;
  const when = a.decidedAt === null ? '' : ` at ${slackDate(a.decidedAt)}`;
  let line: string;
  if (a.status === 'expired') {
    line = `*Expired*: nobody decided before ${slackDate(a.expiresAt)}; the call was refused.`;
  } else {
    const via = a.decidedVia === null ? '' : ` via ${a.decidedVia}`;
    const verdict = a.verdict === null ? '' : ` (verdict: ${a.verdict})`;
    line = `*${outcome}*${verdict} by ${decider(a.decidedBy, operators)}${via}${when}.`;
  }
  if (a.argumentPatch !== null && Object.keys(a.argumentPatch).length > 0) {
    const keys = Object.keys(a.argumentPatch).join(', ');
    line += `\nApproved with edited arguments: ${escapedWithin(keys, 500)}.`;
  }
  if (a.comment !== null && a.comment.trim() !== '') {
    line += `\n${escapedWithin(a.comment.trim(), 1500)
      .split('\n')
      .map((l) => `>${l}`)
      .join('\n')}`;
  }
  return { type: 'section', text: mrkdwn(line.slice(0, SECTION_MAX)) };
}

/** The message for `event` about `approval`. */
/** A security alert as a Slack message: no buttons, the summary, and where it happened. */
export function alertMessage(a: SecurityAlert & { suppressedBefore?: number }): SlackMessage {
  const fields = [
    `*Severity*\n${a.severity}`,
    `*Kind*\n${escapedWithin(a.kind, 100)}`,
    ...(a.agentId ? [`*Agent*\n${escapedWithin(a.agentId, 200)}`] : []),
    ...(a.tool ? [`*Tool*\n${escapedWithin(a.tool, 200)}`] : []),
    ...(a.sessionId ? [`*Session*\n${escapedWithin(a.sessionId, 200)}`] : []),
    `*Trace*\n${escapedWithin(a.traceId, 200)}`,
  ];
  const note =
    a.suppressedBefore && a.suppressedBefore > 0
      ? [
          {
            type: 'context',
            elements: [mrkdwn(`${a.suppressedBefore} similar alerts were suppressed before this one`)],
          },
        ]
      : [];
  return {
    text: `Security alert: ${escapedWithin(a.summary, 300)}`,
    blocks: [
      { type: 'header', text: plain(plainWithin(`Security alert (${a.severity})`, HEADER_MAX)) },
      { type: 'section', text: mrkdwn(escapedWithin(a.summary, 2000)) },
      { type: 'section', fields: fields.map(mrkdwn) },
      ...note,
    ],
  };
}

export function slackMessage(
  event: ApprovalNotifyEvent,
  a: Approval,
  operators: OperatorConfig[],
): SlackMessage {
  const tool = escapedWithin(a.toolName, 200);
  const agent = escapedWithin(a.agentId, 200);
  if (event === 'approval.requested') {
    return {
      text: `Approval needed: ${tool} requested by ${agent}`,
      blocks: [
        { type: 'header', text: plain(plainWithin(`Approval needed: ${a.toolName}`, HEADER_MAX)) },
        detailFields(a),
        reasoningBlock(a),
        argumentsBlock(a),
        decisionButtons(a),
        contextBlock(a),
      ],
    };
  }
  if (event === 'review.flagged') {
    return {
      text: `Flagged for review: ${tool} called by ${agent}`,
      blocks: [
        { type: 'header', text: plain(plainWithin(`Flagged for review: ${a.toolName}`, HEADER_MAX)) },
        detailFields(a),
        reasoningBlock(a),
        argumentsBlock(a),
        contextBlock(a),
      ],
    };
  }
  const outcome = OUTCOME[a.status] ?? a.status;
  return {
    text: `${outcome}: ${tool} for ${agent}`,
    blocks: [
      { type: 'header', text: plain(plainWithin(`${outcome}: ${a.toolName}`, HEADER_MAX)) },
      outcomeBlock(a, operators),
      detailFields(a),
      contextBlock(a),
    ],
  };
}
