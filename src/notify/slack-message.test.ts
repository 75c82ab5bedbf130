import { describe, expect, it } from 'vitest';
import { approvalFixture } from './fixtures/receiver.js';
import { escapedWithin, escapeMrkdwn, slackMessage } from './slack-message.js';

type Block = { type: string; text?: { type: string; text: string }; fields?: Array<{ text: string }> };

/** Every text Slack would render as mrkdwn in a message. */
function mrkdwnTexts(blocks: Block[]): string[] {
  return blocks.flatMap((b) => [
    ...(b.text?.type === 'mrkdwn' ? [b.text.text] : []),
    ...(b.fields ?? []).map((f) => f.text),
  ]);
}

describe('Slack messages', () => {
  it('escapes &, < and > (and nothing else)', () => {
    expect(escapeMrkdwn('a & <b> *c*')).toBe('a &amp; &lt;b&gt; *c*');
  });

  it('cuts escaped text to a length without splitting an entity', () => {
    const cut = escapedWithin('<<<<<<<<<<', 10);
    expect(cut).toBe('&lt;&lt;…');
    expect(cut.length).toBeLessThanOrEqual(10);
    expect(escapedWithin('short', 10)).toBe('short');
  });

  it('neutralises agent-controlled mentions, links and code fences', () => {
    const evil = '<!channel> see <https://evil.example|your bank> & ```break````` `` `';
    const m = slackMessage(
      'approval.requested',
      approvalFixture({
        agentId: '<@U0BOSS>',
        userId: '<!here>',
        reasoning: evil,
        arguments: { note: evil },
        rule: '<!everyone>',
      }),
      [],
    );
    const all = [m.text, ...mrkdwnTexts(m.blocks as Block[])].join('\n');
    expect(all).not.toMatch(/<[!@#](?!date\^)/); // our own date tokens only
    expect(all).not.toContain('<https://');
    expect(all).toContain('&lt;!channel&gt;');
    // The arguments' code block opens once and closes once: a value cannot end it early.
    const args = mrkdwnTexts(m.blocks as Block[]).find((t) => t.startsWith('*Arguments*'))!;
    expect(args.match(/```/g)).toHaveLength(2);
  });

  it('keeps every section under Slack limits however large the arguments and reasoning', () => {
    const big = 'x&'.repeat(10_000);
    const m = slackMessage(
      'approval.requested',
      approvalFixture({ arguments: { blob: big }, reasoning: big, agentId: 'a'.repeat(5000) }),
      [],
    );
    for (const b of m.blocks as Block[]) {
      if (b.text) expect(b.text.text.length).toBeLessThanOrEqual(b.type === 'header' ? 150 : 3000);
      for (const f of b.fields ?? []) expect(f.text.length).toBeLessThanOrEqual(2000);
    }
    const args = mrkdwnTexts(m.blocks as Block[]).find((t) => t.startsWith('*Arguments*'))!;
    expect(args.endsWith('…```')).toBe(true);
  });

  it('shows the details an approver needs', () => {
    const m = slackMessage(
      'approval.requested',
      approvalFixture({ risk: 'critical', configuredRisk: 'high', reasoning: 'line one\nline two' }),
      [],
    );
    const texts = mrkdwnTexts(m.blocks as Block[]).join('\n');
    for (const s of [
      'agent-billing (claude)',
      '*Acting for*\nalice',
      'critical (configured: high)',
      'risk.high-requires-approval',
      'trace-0001-abcd',
      '<!date^',
      '>line one\n>line two',
      '"orderId": "A-1"',
    ]) {
      expect(texts).toContain(s);
    }
  });

  it('names who decided, by Slack mention when the operator has one', () => {
    const ops = [
      { id: 'alice', roles: ['approver' as const], slackUserId: 'U0ALICE' },
      { id: 'bob', name: 'Bob <B>', roles: ['approver' as const] },
    ];
    const decided = (decidedBy: string) =>
      mrkdwnTexts(
        slackMessage('approval.decided', approvalFixture({ status: 'denied', decidedBy }), ops)
          .blocks as Block[],
      )[0];
    expect(decided('operator:alice')).toContain('*Denied* by <@U0ALICE>');
    expect(decided('operator:bob')).toContain('*Denied* by Bob &lt;B&gt;');
    expect(decided('operator:carol')).toContain('*Denied* by carol');
  });
});
