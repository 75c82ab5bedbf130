/** The resolved `limits:` section: rate limits and cost budgets (owned by src/limits/). */
import type { SecretRef } from './types.js';

export interface RateLimitConfig {
  /** What the counter is keyed by. */
  per: 'agent' | 'agent-tool' | 'session';
  /** For `agent-tool`: the tool (absent = every tool, one counter per tool). */
  tool?: string;
  /** Calls allowed per window. */
  points: number;
  /** Fixed window, whole seconds (in ms). */
  durationMs: number;
}

export interface BudgetConfig {
  per: 'agent' | 'agent-tool';
  tool?: string;
  /** Cost units allowed per period (tools' `cost`). */
  amount: number;
  /** Fixed period, whole seconds (in ms). */
  periodMs: number;
}

export interface LimitsConfig {
  store: 'memory' | 'redis';
  /** Redis URL (resolved; a ref in the file when it carries a password). */
  redisUrl?: string;
  /** A Redis command unanswered this long counts as the store being down (default 1 s). */
  redisTimeoutMs?: number;
  /** Prefix of every counter key (default `warden`): deployments sharing one Redis set different ones. */
  namespace?: string;
  /** What a call does when the counter store is unreachable: deny (default, fail closed) or allow. */
  onStoreDown: 'deny' | 'allow';
  rates: RateLimitConfig[];
  budgets: BudgetConfig[];
}

export type { SecretRef };
