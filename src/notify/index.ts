/** Notifiers (issue #5): the outbox-backed Slack and webhook notifiers and the Slack button endpoint. */
export { type AttemptResult, backoffDelay, type NotifyLog } from './attempt.js';
export {
  createNotifications,
  type Notifications,
  type NotificationsDeps,
} from './notifications.js';
export type { OutboxEntry, OutboxStatus } from './outbox.js';
export { SLACK_MAX_ATTEMPTS, SLACK_TARGET, SLACK_TIMEOUT_MS } from './slack.js';
export { type SlackInteractionsDeps, slackInteractions } from './slack-interactions.js';
export {
  APPROVE_ACTION,
  DENY_ACTION,
  escapeMrkdwn,
  type SlackBlock,
  type SlackMessage,
  slackMessage,
} from './slack-message.js';
export { SLACK_SIGNATURE_RULE, slackSignature } from './slack-signature.js';
export type {
  ApprovalNotifyEvent,
  ChatDecide,
  ChatDecisionOutcome,
  Notifier,
  NotifyEvent,
  SecurityAlert,
} from './types.js';
export { type WebhookEnvelope, webhookBody } from './webhook.js';
export {
  signWebhook,
  verifyWebhook,
  type WebhookHeaders,
  type WebhookVerification,
} from './webhook-signature.js';
