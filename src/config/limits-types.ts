/** The resolved `limits:` section: rate limits and cost budgets (owned by src/limits/). */
import type { SecretRef } from './types.js';

export interface RateLimitConfig {
  /** What the counter is keyed by. */
  per: 'agent' | 'agent-tool' | 'session';
  /** For `agent-tool`: the tool (absent = every tool, one counter per tool). */
  tool?: string;
  /** Calls allowed per window. */
  points: number;
  durationMs: number;
}

export interface BudgetConfig {
  per: 'agent' | 'agent-tool';
  tool?: string;
  /** Cost units allowed per period (tools' `cost`). */
  amount: number;
  periodMs: number;
}

export interface LimitsConfig {
  store: 'memory' | 'redis';
  /** Redis URL (resolved; a ref in the file when it carries a password). */
  redisUrl?: string;
  /** What a call does when the counter store is unreachable: deny (default, fail closed) or allow. */
  onStoreDown: 'deny' | 'allow';
  rates: RateLimitConfig[];
  budgets: BudgetConfig[];
}

export type { SecretRef };
