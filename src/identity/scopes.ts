/**
 * Resource scopes (DESIGN.md "Identity and credentials"): colon-separated
 * segments such as `orders:read:user:usr_abc123`. One grammar and one matching
 * rule serve issuing (may this agent hold that scope?) and enforcement (does
 * this token cover the scope a call needs?).
 *
 * Hierarchy: a scope covers itself and every scope below it, segment by
 * segment — `orders:read` covers `orders:read:user:usr_abc`, but not
 * `orders:readall` and not `orders`. In an agent's *patterns* `*` stands for
 * exactly one whole segment (never part of one, never zero segments), and the
 * hierarchy then extends the match downwards: `orders:read:user:*` covers
 * `orders:read:user:usr_abc` and `orders:read:user:usr_abc:notes`, but not
 * `orders:read:user` itself. Tokens carry concrete scopes only: a pattern is
 * what an agent *may request*, the token says which resource this session is for.
 *
 * Per-user scopes: a pattern segment `{user}` stands for the user a delegated
 * session acts for — `orders:read:user:{user}` lets a session for alice hold
 * `orders:read:user:alice` and nothing of bob's. A provider's user
 * (`corp:alice`) fills two segments (`orders:read:user:corp:alice`); a user id
 * with characters a scope segment may not have fills none (the pattern then
 * grants nothing). Without a user (the agent acting for itself) such a pattern
 * grants nothing.
 */
import type { Agent } from './types.js';

/** One literal segment: the characters an argument value may have to become part of a scope. */
export const SCOPE_SEGMENT = /^[A-Za-z0-9_.-]{1,128}$/;
/** Bounds that keep a token small (TokenService refuses tokens over 8 KiB). */
export const MAX_SCOPE_LENGTH = 256;
export const MAX_RESOURCE_SCOPES = 32;
/** The first segment reserved for tool scopes (`tool:<name>:execute`): never grantable through a pattern. */
const TOOL_NAMESPACE = 'tool';
/** The pattern segment that stands for the user a delegated session acts for. */
export const USER_SEGMENT = '{user}';
/** For "could any user hold this?" (before anyone has logged in): `{user}` matches one segment or more. */
export const ANY_USER = Symbol('any user');

/** True for a tool scope (`tool:<name>:execute`), which only an agent's allowed tools grant. */
export function isToolScope(scope: string): boolean {
  return scope.startsWith(`${TOOL_NAMESPACE}:`);
}

function checkSegments(value: string, wildcard: boolean): string | null {
  if (value.length > MAX_SCOPE_LENGTH) return `longer than ${MAX_SCOPE_LENGTH} characters`;
  const segments = value.split(':');
  if (segments.length < 2) return 'expected at least two segments, e.g. orders:read';
  const [first] = segments;
  if (first === TOOL_NAMESPACE) return '"tool:" scopes come from allowedTools, not from resource scopes';
  for (const [i, s] of segments.entries()) {
    if ((s === '*' || s === USER_SEGMENT) && wildcard && i > 0) continue;
    if (!SCOPE_SEGMENT.test(s)) {
      return s.includes('*')
        ? '"*" stands for one whole segment and not the first one (orders:read:user:*)'
        : `segment "${s.slice(0, 40)}" must be 1–128 of A–Z a–z 0–9 _ . -`;
    }
  }
  return null;
}

/** A problem with a scope pattern an agent may hold (`orders:read:user:*`), or null when it is valid. */
export function checkScopePattern(pattern: string): string | null {
  return checkSegments(pattern, true);
}

/** A problem with a concrete resource scope (no wildcard), or null when it is valid. */
export function checkResourceScope(scope: string): string | null {
  return checkSegments(scope, false);
}

/**
 * Whether `granted` covers `required`: each of its segments equals the
 * required one at the same position (`*` matches any one segment), and the
 * required scope may go deeper (the hierarchy).
 */
export function scopeCovers(granted: string, required: string): boolean {
  const g = granted.split(':');
  const r = required.split(':');
  if (g.length > r.length) return false;
  return g.every((s, i) => s === '*' || s === r[i]);
}

/**
 * An agent's patterns for a session acting for `user`: `{user}` replaced by the
 * user's id (each `:`-separated part a segment), or by `*` for ANY_USER; patterns
 * with `{user}` are dropped when there is no user or the id cannot be a segment.
 */
export function patternsFor(
  patterns: readonly string[],
  user: string | null | undefined | typeof ANY_USER,
): string[] {
  const out: string[] = [];
  for (const p of patterns) {
    if (!p.split(':').includes(USER_SEGMENT)) {
      out.push(p);
      continue;
    }
    if (user === ANY_USER) {
      out.push(
        p
          .split(':')
          .map((s) => (s === USER_SEGMENT ? '*' : s))
          .join(':'),
      );
      continue;
    }
    if (typeof user !== 'string' || !user.split(':').every((s) => SCOPE_SEGMENT.test(s))) continue;
    const expanded = p
      .split(':')
      .map((s) => (s === USER_SEGMENT ? user : s))
      .join(':');
    if (expanded.length <= MAX_SCOPE_LENGTH) out.push(expanded);
  }
  return out;
}

/** The result of checking requested scopes against what an agent may hold. */
export interface ScopeGrant {
  granted: string[];
  /** Requested scopes the agent may not hold (the request is refused when any are). */
  refused: string[];
}

/**
 * Scopes a new session gets. Tool scopes come from `toolScopes` (the agent's
 * allowed, non-denied tools); resource scopes must be concrete and covered by
 * one of the agent's patterns. Absent `requested` = every tool scope plus the
 * agent's wildcard-free patterns (those are outright grants; a wildcard needs
 * a request naming the resource).
 */
export function grantScopes(
  agent: Pick<Agent, 'scopes'>,
  toolScopes: readonly string[],
  requested: readonly string[] | undefined,
  /** The user the session acts for (fills `{user}` in patterns); see patternsFor. */
  user: string | null | typeof ANY_USER = null,
): ScopeGrant {
  const patterns = patternsFor(agent.scopes, user);
  if (requested === undefined) {
    const outright = patterns.filter((p) => !p.split(':').includes('*'));
    return { granted: [...toolScopes, ...outright.sort()], refused: [] };
  }
  const wanted = new Set(requested.filter((s) => s !== ''));
  const refused = [...wanted].filter((s) => isToolScope(s) && !toolScopes.includes(s));
  const resources: string[] = [];
  for (const scope of wanted) {
    if (isToolScope(scope)) continue;
    const ok =
      resources.length < MAX_RESOURCE_SCOPES &&
      checkResourceScope(scope) === null &&
      patterns.some((p) => scopeCovers(p, scope));
    (ok ? resources : refused).push(scope);
  }
  return { granted: [...toolScopes.filter((s) => wanted.has(s)), ...resources.sort()], refused };
}
