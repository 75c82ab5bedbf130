/**
 * Slack notifier: chat.postMessage for requests and review flags (remembering
 * channel + ts in `notifier_messages`), chat.update of that message once the
 * request is decided. Slack answers most failures with HTTP 200 and
 * `{ok:false,error}`; the error code decides between retry and dead letter.
 */
import type { Kysely } from 'kysely';
import { z } from 'zod';
import type { SecretRef, SlackNotifierConfig } from '../config/index.js';
import type { Database } from '../store/index.js';
import { VERSION } from '../version.js';
import { type AttemptResult, discardBody, fetchFailure, httpResult, retryAfterMs } from './attempt.js';
import { supersede } from './outbox.js';
import type { SlackMessage } from './slack-message.js';

/** The target name of the Slack notifier in the outbox and in `notifier_messages`. */
export const SLACK_TARGET = 'slack';

/** Deliveries tried before a Slack notification is dead-lettered. */
export const SLACK_MAX_ATTEMPTS = 8;

/** Per-attempt timeout for Slack Web API calls. */
export const SLACK_TIMEOUT_MS = 10_000;

/**
 * Error codes no retry will cure: the token, the app's access or the message is
 * wrong (https://api.slack.com/methods/chat.postMessage#errors). Anything else
 * (ratelimited, internal_error, fatal_error, service_unavailable, unknown) is retried.
 */
const PERMANENT_ERRORS = new Set([
  'invalid_auth',
  'not_authed',
  'account_inactive',
  'token_revoked',
  'token_expired',
  'no_permission',
  'missing_scope',
  'not_allowed_token_type',
  'access_denied',
  'ekm_access_denied',
  'team_access_not_granted',
  'org_login_required',
  'two_factor_setup_required',
  'enterprise_is_restricted',
  'channel_not_found',
  'not_in_channel',
  'is_archived',
  'channel_type_not_supported',
  'restricted_action',
  'restricted_action_read_only_channel',
  'restricted_action_thread_only_channel',
  'restricted_action_non_threadable_channel',
  'invalid_blocks',
  'invalid_blocks_format',
  'invalid_arguments',
  'invalid_arg_name',
  'invalid_json',
  'json_not_object',
  'msg_too_long',
  'no_text',
  'method_deprecated',
  'deprecated_endpoint',
]);

/** chat.update errors after which a new message is the only way to show the outcome. */
const MESSAGE_GONE = new Set(['message_not_found', 'cant_update_message', 'edit_window_closed']);

const apiReply = z.looseObject({
  ok: z.boolean(),
  error: z.string().optional(),
  ts: z.string().optional(),
  channel: z.string().optional(),
});

/** The queued body for Slack: the message plus the channel it goes to. */
export interface SlackPayload extends SlackMessage {
  channel: string;
}

export interface SlackAttempt {
  config: SlackNotifierConfig;
  db: Kysely<Database>;
  row: { id: string; event: string; approvalId: string | null; payload: string };
  now: number;
  timeoutMs: number;
  resolveSecret: (ref: SecretRef) => Promise<string>;
  fetch: typeof fetch;
  signal: AbortSignal;
}

type CallResult = { result: AttemptResult; code?: string; reply?: z.infer<typeof apiReply> };

/** One Slack delivery: post, or update the message posted earlier for the same approval. */
export async function deliverSlack(a: SlackAttempt): Promise<AttemptResult> {
  let token: string;
  try {
    token = await a.resolveSecret(a.config.botToken);
  } catch (e) {
    return { ok: false, error: `secret unavailable: ${(e as Error).message}`, permanent: false };
  }
  const message = JSON.parse(a.row.payload) as SlackPayload;
  const call = (method: string, body: Record<string, unknown>) => callApi(a, token, method, body);

  if (a.row.event === 'approval.decided' && a.row.approvalId !== null) {
    const posted = await a.db
      .selectFrom('notifier_messages')
      .select(['channel', 'message_ts'])
      .where('approval_id', '=', a.row.approvalId)
      .where('target', '=', SLACK_TARGET)
      .executeTakeFirst();
    if (posted) {
      const updated = await call('chat.update', {
        channel: posted.channel,
        ts: posted.message_ts,
        text: message.text,
        blocks: message.blocks,
      });
      if (!(updated.code && MESSAGE_GONE.has(updated.code))) return updated.result;
    } else {
      // The request was never posted (Slack was down, or it is still retrying): post the outcome
      // instead, and drop the request so no buttons appear for a decided approval.
      await supersede(
        a.db,
        a.row.approvalId,
        SLACK_TARGET,
        ['approval.requested', 'review.flagged'],
        'superseded by approval.decided',
        a.now,
      );
    }
    return (await call('chat.postMessage', { ...message })).result;
  }

  const posted = await call('chat.postMessage', { ...message });
  if (posted.result.ok && a.row.approvalId !== null && posted.reply?.ts) {
    await a.db
      .insertInto('notifier_messages')
      .values({
        approval_id: a.row.approvalId,
        target: SLACK_TARGET,
        // chat.update wants the channel id Slack answered with (the config may name the channel).
        channel: posted.reply.channel ?? message.channel,
        message_ts: posted.reply.ts,
        created_at: a.now,
      })
      .onConflict((oc) =>
        oc.columns(['approval_id', 'target']).doUpdateSet((eb) => ({
          channel: eb.ref('excluded.channel'),
          message_ts: eb.ref('excluded.message_ts'),
        })),
      )
      .execute();
  }
  return posted.result;
}

async function callApi(
  a: SlackAttempt,
  token: string,
  method: string,
  body: Record<string, unknown>,
): Promise<CallResult> {
  let res: Response;
  try {
    res = await a.fetch(`${a.config.apiUrl}/${method}`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json; charset=utf-8',
        'user-agent': `warden/${VERSION}`,
      },
      body: JSON.stringify(body),
      redirect: 'manual',
      signal: AbortSignal.any([AbortSignal.timeout(a.timeoutMs), a.signal]),
    });
  } catch (e) {
    return { result: fetchFailure(e, a.timeoutMs) };
  }
  const retryAfter = retryAfterMs(res.headers.get('retry-after'), a.now);
  let parsed: z.infer<typeof apiReply> | undefined;
  try {
    parsed = apiReply.safeParse(await res.json()).data;
  } catch (e) {
    if (e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError'))
      return { result: fetchFailure(e, a.timeoutMs) };
    parsed = undefined;
  } finally {
    await discardBody(res);
  }
  if (res.status < 200 || res.status >= 300) {
    const result = httpResult(res.status, retryAfter);
    const code = parsed?.error;
    return {
      result: result.ok
        ? result
        : { ...result, error: `${method}: ${result.error}${code ? ` ${code}` : ''}` },
    };
  }
  if (parsed === undefined) {
    return { result: { ok: false, error: `${method}: unreadable reply`, permanent: false } };
  }
  if (parsed.ok) return { result: { ok: true }, reply: parsed };
  const code = parsed.error ?? 'unknown_error';
  return {
    code,
    reply: parsed,
    result: {
      ok: false,
      error: `${method}: ${code}`,
      permanent: PERMANENT_ERRORS.has(code),
      ...(retryAfter === undefined ? {} : { retryAfterMs: retryAfter }),
    },
  };
}
