/**
 * Validation of agent declarations (config, admin API, CLI) before they reach
 * the registry: ids that are safe as OAuth client_ids, tool names that are
 * valid inside scope tokens, CIDRs that parse, and public keys that really are
 * public and of an algorithm Warden accepts.
 */
import ipaddr from 'ipaddr.js';
import type { JWK } from 'jose';
import { z } from 'zod';
import { checkScopePattern, MAX_RESOURCE_SCOPES } from './scopes.js';
import type { Agent, AgentInput } from './types.js';

/** Agent ids become OAuth client_ids, JWT `sub`s and URL segments: keep them plain. */
const AGENT_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** A tool name sits inside a scope token (`tool:<name>:execute`), so it must be scope-safe (RFC 6749 §3.3). */
const SCOPE_SAFE = /^[\x21\x23-\x5B\x5D-\x7E]{1,200}$/;
/** Members that only a private or symmetric JWK has (RFC 7518 §6, RFC 8037 §2). */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k', 'priv'] as const;

const text = z.string().trim().min(1).max(200);
const toolName = z
  .string()
  .regex(SCOPE_SAFE, 'tool names must be non-empty and contain no spaces, quotes or backslashes');
const scopePattern = z.string().superRefine((value, ctx) => {
  const problem = checkScopePattern(value);
  if (problem !== null) ctx.addIssue({ code: 'custom', message: `scope pattern ${problem}` });
});
const cidr = z.string().refine((value) => {
  try {
    ipaddr.parseCIDR(value);
    return true;
  } catch {
    return false;
  }
}, 'not a CIDR range (e.g. 10.0.0.0/8)');

const agentInputSchema = z.object({
  id: z.string().regex(AGENT_ID, 'agent ids are 1-128 of A-Z a-z 0-9 . _ - and start with a letter or digit'),
  type: text,
  version: text,
  environment: text,
  owner: text,
  expiresAt: z.number().int().positive(),
  maxConcurrentSessions: z.number().int().min(1).max(10_000),
  allowedTools: z.array(toolName).max(10_000),
  deniedTools: z.array(toolName).max(10_000),
  scopes: z
    .array(scopePattern)
    .max(MAX_RESOURCE_SCOPES * 4)
    .default(() => []),
  publicJwk: z.unknown().nullable().optional(),
  delegation: z
    .object({
      clients: z
        .array(
          z.string().refine((c) => c === '*' || c === 'dynamic' || isClientIdUrl(c), {
            message: 'expected "dynamic", "*" or an https:// client ID metadata document URL',
          }),
        )
        .min(1)
        .max(100),
      users: z
        .array(
          z.string().refine((u) => u === '*' || /^[\x21-\x7e]{1,256}$/.test(u), {
            message: 'expected a user id, "<provider>:*" or "*"',
          }),
        )
        .min(1)
        .max(1000)
        .default(() => ['*']),
    })
    .strict()
    .nullable()
    .optional(),
  constraints: z
    .object({
      maxToolCalls: z.number().int().min(1).optional(),
      allowedCidrs: z.array(cidr).optional(),
    })
    .strict()
    .default({}),
});

/** The result of checking an agent declaration: the normalised input, or the first problem found. */
export type AgentInputCheck =
  | { ok: true; value: AgentInput & Pick<Agent, 'scopes' | 'delegation'> }
  | { ok: false; problem: string };

/** Checks and normalises an agent declaration (trims text, keeps only a key's public members). */
export function checkAgentInput(input: unknown): AgentInputCheck {
  const parsed = agentInputSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? issue.path.join('.') : 'agent';
    return { ok: false, problem: `${where}: ${issue?.message ?? 'invalid'}` };
  }
  const v = parsed.data;
  let publicJwk: JWK | null = null;
  if (v.publicJwk !== undefined && v.publicJwk !== null) {
    const key = checkPublicJwk(v.publicJwk);
    if (typeof key === 'string') return { ok: false, problem: `publicJwk: ${key}` };
    publicJwk = key;
  }
  const constraints: AgentInput['constraints'] = {};
  if (v.constraints.maxToolCalls !== undefined) constraints.maxToolCalls = v.constraints.maxToolCalls;
  if (v.constraints.allowedCidrs !== undefined) constraints.allowedCidrs = [...v.constraints.allowedCidrs];
  return {
    ok: true,
    value: {
      id: v.id,
      type: v.type,
      version: v.version,
      environment: v.environment,
      owner: v.owner,
      expiresAt: v.expiresAt,
      maxConcurrentSessions: v.maxConcurrentSessions,
      allowedTools: [...new Set(v.allowedTools)],
      deniedTools: [...new Set(v.deniedTools)],
      scopes: [...new Set(v.scopes)].sort(),
      publicJwk,
      constraints,
      delegation: v.delegation
        ? { clients: [...new Set(v.delegation.clients)], users: [...new Set(v.delegation.users)] }
        : null,
    },
  };
}

/** An https URL usable as a client ID metadata document's address (a path, no fragment, no credentials). */
export function isClientIdUrl(value: string): boolean {
  const url = URL.parse(value);
  return (
    url !== null &&
    url.protocol === 'https:' &&
    url.pathname !== '/' &&
    url.hash === '' &&
    url.username === '' &&
    url.password === '' &&
    url.href === value
  );
}

/**
 * A public Ed25519 (OKP) or P-256 (EC) JWK, reduced to its public members; a
 * string describing the problem otherwise. Private or symmetric material is
 * refused outright: a registry must never hold an agent's secret.
 */
export function checkPublicJwk(value: unknown): JWK | string {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'must be a JWK object';
  const jwk = value as Record<string, unknown>;
  for (const member of PRIVATE_MEMBERS) {
    if (member in jwk) return 'must be a public key (private or symmetric key material found)';
  }
  const str = (name: string): string | undefined => {
    const v = jwk[name];
    return typeof v === 'string' && v.length > 0 ? v : undefined;
  };
  const alg = jwk.alg;
  if (alg !== undefined && alg !== 'EdDSA' && alg !== 'Ed25519' && alg !== 'ES256') {
    return 'alg must be EdDSA, Ed25519 or ES256';
  }
  const out: JWK = {};
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519' && str('x')) {
    if (alg === 'ES256') return 'alg ES256 does not match an Ed25519 key';
    Object.assign(out, { kty: 'OKP', crv: 'Ed25519', x: str('x') });
  } else if (jwk.kty === 'EC' && jwk.crv === 'P-256' && str('x') && str('y')) {
    if (alg !== undefined && alg !== 'ES256') return `alg ${String(alg)} does not match a P-256 key`;
    Object.assign(out, { kty: 'EC', crv: 'P-256', x: str('x'), y: str('y') });
  } else {
    return 'must be an Ed25519 (kty OKP) or P-256 (kty EC) public key';
  }
  if (typeof alg === 'string') out.alg = alg;
  const kid = str('kid');
  if (kid !== undefined) out.kid = kid;
  if (jwk.use !== undefined && jwk.use !== 'sig') return 'use must be "sig" when present';
  if (jwk.use === 'sig') out.use = 'sig';
  return out;
}
