import { isWardenError, WardenError } from '../errors.js';
import type { CallState, PipelineDeps, Step } from './types.js';

/** Step 1: the bearer token must verify and name a live session of a usable agent. */
export function authenticate(deps: Pick<PipelineDeps, 'tokens' | 'sessions' | 'audit'>): Step {
  const verify = auditedVerify(deps);
  return {
    name: 'authenticate',
    async run(state: CallState) {
      const { token, traceId } = state.request;
      if (!token)
        throw new WardenError('UNAUTHENTICATED', 'A bearer token is required', {
          rule: 'auth.token-required',
        });
      const pre = state.request.verified;
      if (pre) {
        // Verified moments ago in this request; the session guard still re-checks expiry and revocation.
        state.agent = pre.agent;
        state.session = pre.session;
        state.scopes = new Set(pre.scopes);
      } else {
        const { agent, session, claims } = await verify(token, traceId);
        state.agent = agent;
        state.session = session;
        state.scopes = new Set(claims.scope.split(' ').filter(Boolean));
      }
      state.allowedBy.push('auth.token-valid');
    },
  };
}

/** Token verification that writes SESSION_EXPIRED (once per session) when a token has expired. */
export function auditedVerify(deps: Pick<PipelineDeps, 'tokens' | 'sessions' | 'audit'>) {
  return async function verify(token: string, traceId: string) {
    try {
      return await deps.tokens.verify(token);
    } catch (e) {
      if (isWardenError(e, 'TOKEN_EXPIRED')) await auditExpiry(deps, e, traceId);
      throw e;
    }
  };
}

async function auditExpiry(deps: Pick<PipelineDeps, 'sessions' | 'audit'>, e: WardenError, traceId: string) {
  const sessionId = typeof e.data?.sessionId === 'string' ? e.data.sessionId : undefined;
  const agentId = typeof e.data?.agentId === 'string' ? e.data.agentId : undefined;
  if (!sessionId) return;
  if (!(await deps.sessions.markExpiryLogged(sessionId).catch(() => false))) return;
  await deps.audit
    .append({
      traceId,
      event: 'SESSION_EXPIRED',
      actorType: 'AI_AGENT',
      actorId: agentId ?? null,
      agentId: agentId ?? null,
      sessionId,
      decision: {
        allowed: false,
        code: 'TOKEN_EXPIRED',
        rule: 'auth.token-expired',
        reasons: ['session token expired'],
      },
    })
    .catch(() => {});
}
