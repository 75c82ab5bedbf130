/**
 * The endpoint Slack calls when someone presses Approve or Deny
 * (`POST /notify/slack/interactions`). Nothing is decided before the request
 * is proven to come from Slack, fresh and unseen; refusals are audited. The
 * decision itself (who the Slack user is, may they decide, first one wins) is
 * the approval service's, through `decide`.
 */
import { z } from 'zod';
import type { AuditInput } from '../audit/index.js';
import { resolveSecret as resolveSecretRef, type SecretRef } from '../config/index.js';
import { errorBody, isWardenError, WardenError } from '../errors.js';
import { type Clock, type IdGenerator, randomId, systemClock } from '../util/clock.js';
import { readBodyText } from '../util/http-body.js';
import type { NotifyLog } from './attempt.js';
import { APPROVE_ACTION, DENY_ACTION, escapeMrkdwn } from './slack-message.js';
import {
  checkSlackSignature,
  checkSlackTimestamp,
  ReplayCache,
  SLACK_SIGNATURE_RULE,
} from './slack-signature.js';
import type { ChatDecide, ChatDecisionOutcome } from './types.js';

/** Interaction payloads are a few KB; anything near this is not Slack. */
const DEFAULT_MAX_BODY = 64 * 1024;
const BODY_SIZE_RULE = 'notify.slack-body-size';

export interface SlackInteractionsDeps {
  /** The signing secret: a reference (resolved per request, so a rotation needs no restart) or a resolver. */
  signingSecret: SecretRef | (() => Promise<string>);
  /** Callbacks whose timestamp is further than this from now, either way, are refused. */
  toleranceMs: number;
  decide: ChatDecide;
  audit: (input: AuditInput) => Promise<unknown>;
  clock?: Clock;
  log: NotifyLog;
  resolveSecret?: (ref: SecretRef) => Promise<string>;
  maxBodyBytes?: number;
  /** Signatures remembered for replay detection (oldest forgotten first). */
  replayCacheSize?: number;
  idGenerator?: IdGenerator;
  /**
   * Origins a payload's `response_url` may point to (Slack's own, `https://hooks.slack.com`,
   * plus the configured API's); the reply to the presser goes there, since Slack does not show
   * a block_actions response body. Absent = no follow-up post.
   */
  responseUrlOrigins?: readonly string[];
  fetch?: typeof fetch;
}

const payloadSchema = z.looseObject({
  type: z.string(),
  response_url: z.string().max(2000).optional(),
  user: z.looseObject({ id: z.string().min(1).max(64) }).optional(),
  actions: z
    .array(z.looseObject({ action_id: z.string().max(255), value: z.string().max(2000).optional() }))
    .optional(),
});

/** What the person who pressed the button is told, per refusal code. */
const REFUSAL_TEXT: Record<string, string> = {
  APPROVER_FORBIDDEN:
    'You may not decide Warden approvals: your Slack account is not linked to an operator with the approver role.',
  SELF_APPROVAL_FORBIDDEN: 'You may not approve a request made on your own behalf (separation of duties).',
  APPROVAL_ALREADY_DECIDED: 'This request was decided already; the first decision stands.',
  APPROVAL_EXPIRED: 'This request expired before your decision; the call was refused.',
  APPROVAL_NOT_FOUND: 'Warden has no such approval request.',
};

/** Build the Slack interactions handler (a web-standard `Request` → `Response` function). */
export function slackInteractions(deps: SlackInteractionsDeps): (req: Request) => Promise<Response> {
  if (!(deps.toleranceMs > 0))
    throw new WardenError('CONFIG_INVALID', 'slack: timestampTolerance must be positive');
  const clock = deps.clock ?? systemClock;
  const newId = deps.idGenerator ?? randomId;
  const maxBody = deps.maxBodyBytes ?? DEFAULT_MAX_BODY;
  const replays = new ReplayCache(deps.replayCacheSize);
  const resolve = deps.resolveSecret ?? ((ref: SecretRef) => resolveSecretRef(ref));
  const signingSecret = deps.signingSecret;
  const secretOf = typeof signingSecret === 'function' ? signingSecret : () => resolve(signingSecret);

  async function refuse(e: WardenError, traceId: string): Promise<Response> {
    deps.log.warn({ traceId, code: e.code }, 'slack callback refused');
    await deps
      .audit({
        traceId,
        event: 'REQUEST_REJECTED',
        actorType: 'SYSTEM',
        actorId: 'slack',
        result: 'denied',
        decision: {
          allowed: false,
          code: e.code,
          rule: e.rule ?? SLACK_SIGNATURE_RULE,
          reasons: [e.message],
        },
        data: { face: 'slack-interactions' },
      })
      .catch((err: unknown) =>
        deps.log.error({ traceId, err: (err as Error).message }, 'could not audit a refused slack callback'),
      );
    return json(errorBody(e, traceId), e.status);
  }

  return async function slackInteractionHandler(req: Request): Promise<Response> {
    const traceId = newId();
    const now = clock.now();
    let raw: string;
    try {
      const timestamp = req.headers.get('x-slack-request-timestamp');
      const signature = req.headers.get('x-slack-signature');
      if (signature === null) {
        throw new WardenError('SLACK_SIGNATURE_INVALID', 'The request is not signed by Slack', {
          rule: SLACK_SIGNATURE_RULE,
        });
      }
      const timestampMs = checkSlackTimestamp(timestamp, now, deps.toleranceMs);
      raw = await readBody(req, maxBody);
      let secret: string;
      try {
        secret = await secretOf();
      } catch (e) {
        // Our misconfiguration, not the caller's fault: logged (the message names the reference only).
        deps.log.error({ traceId, err: (e as Error).message }, 'slack signing secret unavailable');
        return json(errorBody(new WardenError('INTERNAL', 'Slack callbacks are unavailable'), traceId), 500);
      }
      checkSlackSignature(secret, timestamp as string, raw, signature);
      if (!replays.accept(signature, timestampMs + deps.toleranceMs, now)) {
        throw new WardenError('SLACK_REPLAYED', 'The request was received before', {
          rule: SLACK_SIGNATURE_RULE,
        });
      }
    } catch (e) {
      if (isWardenError(e)) return refuse(e, traceId);
      throw e;
    }
    return handlePayload(raw, traceId);
  };

  async function handlePayload(raw: string, traceId: string): Promise<Response> {
    const payload = parsePayload(raw);
    if (payload === undefined) {
      deps.log.warn({ traceId }, 'slack callback with a malformed payload');
      return json(
        errorBody(new WardenError('INVALID_REQUEST', 'Malformed interaction payload'), traceId),
        400,
      );
    }
    // Other interactions (shortcuts, modals) are not ours: acknowledge and do nothing.
    if (payload.type !== 'block_actions') return new Response(null, { status: 200 });
    const first = payload.actions?.[0];
    const action =
      first?.action_id === APPROVE_ACTION ? 'approve' : first?.action_id === DENY_ACTION ? 'deny' : undefined;
    if (action === undefined) return new Response(null, { status: 200 });
    const approvalId = first?.value;
    const slackUserId = payload.user?.id;
    if (!approvalId || approvalId.length > 128 || !slackUserId) {
      deps.log.warn({ traceId }, 'slack button press without an approval id or user');
      return json(
        errorBody(new WardenError('INVALID_REQUEST', 'Malformed interaction payload'), traceId),
        400,
      );
    }
    // Slack shows a block_actions reply only when it is posted to the payload's response_url.
    const reply = (text: string): Response => {
      const url = payload.response_url;
      const origins = deps.responseUrlOrigins ?? [];
      const origin = url === undefined ? undefined : URL.parse(url)?.origin;
      if (url !== undefined && origin !== undefined && origins.includes(origin)) {
        void (deps.fetch ?? fetch)(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ response_type: 'ephemeral', replace_original: false, text }),
          signal: AbortSignal.timeout(5_000),
          redirect: 'error',
        }).then(
          (r) => r.body?.cancel().catch(() => {}),
          (e: unknown) => deps.log.warn({ traceId, err: String(e) }, 'slack reply post failed'),
        );
      } else if (url !== undefined && deps.responseUrlOrigins !== undefined) {
        deps.log.warn({ traceId, origin }, 'slack reply URL outside the allowed origins: not posted');
      }
      return ephemeral(text);
    };
    let outcome: ChatDecisionOutcome;
    try {
      outcome = await deps.decide({ approvalId, slackUserId, action, traceId });
    } catch (e) {
      deps.log.error({ traceId, approvalId, err: (e as Error).message }, 'slack decision failed');
      return reply(`Warden could not record your decision; try again or use the CLI (trace ${traceId}).`);
    }
    deps.log.info(
      {
        traceId,
        approvalId,
        slackUserId,
        action,
        ok: outcome.ok,
        code: outcome.ok ? undefined : outcome.code,
      },
      'slack decision',
    );
    if (outcome.ok) {
      const a = outcome.approval;
      const verb =
        a.status === 'approved' ? 'approved' : a.status === 'denied' ? 'denied' : `recorded (${a.status})`;
      return reply(
        `You ${verb} the call to *${escapeMrkdwn(a.toolName)}* (request \`${escapeMrkdwn(a.id)}\`).`,
      );
    }
    const text = REFUSAL_TEXT[outcome.code] ?? escapeMrkdwn(outcome.message);
    return reply(`${text} (trace ${traceId})`);
  }
}

function parsePayload(raw: string): z.infer<typeof payloadSchema> | undefined {
  const field = new URLSearchParams(raw).get('payload');
  if (field === null) return undefined;
  try {
    return payloadSchema.safeParse(JSON.parse(field)).data;
  } catch {
    return undefined;
  }
}

/** The body as text, refusing more than `limit` bytes (the faces' reader, with this route's rule). */
async function readBody(req: Request, limit: number): Promise<string> {
  try {
    return await readBodyText(req, limit);
  } catch (e) {
    if (isWardenError(e, 'PAYLOAD_TOO_LARGE')) {
      throw new WardenError('PAYLOAD_TOO_LARGE', e.message, { rule: BODY_SIZE_RULE });
    }
    throw e;
  }
}

function json(body: unknown, status: number): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
}

/** A reply only the person who pressed the button sees; the original message stays as it is. */
function ephemeral(text: string): Response {
  return json({ response_type: 'ephemeral', replace_original: false, text }, 200);
}
