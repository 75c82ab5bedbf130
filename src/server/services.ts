/**
 * The store-backed services the gateway and the offline CLI commands share,
 * built in one place so both audit the same way.
 */
import { AuditLog, loadAuditHmacKey } from '../audit/index.js';
import type { WardenConfig } from '../config/types.js';
import { AgentRegistry, KeyManager, SessionStore, TokenService } from '../identity/index.js';
import { openStore } from '../store/index.js';
import { type Clock, systemClock } from '../util/clock.js';

export interface ServiceOptions {
  clock?: Clock;
  pgSchema?: string;
  /** SQLite: the busy timeout (tests of lock outages; default 5 s). */
  sqliteBusyTimeoutMs?: number;
  /** Base URL of the gateway (issuer = `<url>/oauth`, audience = `<url>`); default config.server.publicUrl. */
  publicUrl?: string;
}

/** Open the store and build audit, agents, sessions, keys and tokens over it. */
export async function openServices(config: WardenConfig, options: ServiceOptions = {}) {
  const clock = options.clock ?? systemClock;
  const store = await openStore(config.store.url, {
    ...(options.pgSchema ? { pgSchema: options.pgSchema } : {}),
    ...(options.sqliteBusyTimeoutMs === undefined
      ? {}
      : { sqliteBusyTimeoutMs: options.sqliteBusyTimeoutMs }),
  });
  const publicUrl = (options.publicUrl ?? config.server.publicUrl).replace(/\/+$/, '');
  const issuer = `${publicUrl}/oauth`;
  const audience = publicUrl;
  // The same key in the gateway and the offline commands: one value, one HMAC, one log (issue #9).
  let hmac: Awaited<ReturnType<typeof loadAuditHmacKey>>;
  try {
    hmac = await loadAuditHmacKey(config.audit.hmac.key);
  } catch (e) {
    await store.close();
    throw e;
  }
  const audit = new AuditLog(store, { clock, hmac });
  const agents = new AgentRegistry(store, clock);
  const sessions = new SessionStore(store, clock);
  const keys = new KeyManager(store, {
    alg: config.tokens.alg,
    rotateAfterMs: config.tokens.rotateAfterMs,
    tokenTtlMs: config.tokens.ttlMs,
    clock,
  });
  const tokens = new TokenService({
    store,
    agents,
    sessions,
    keys,
    config: { issuer, audience, tokens: config.tokens, maxTokenLength: config.server.headerLimitBytes },
    clock,
    onSessionCreated: async (s, agent) => {
      const operator = s.issuedVia === 'operator';
      await audit.append({
        traceId: `session-${s.id}`,
        event: 'SESSION_CREATED',
        actorType: operator ? 'HUMAN' : 'AI_AGENT',
        actorId: operator ? `operator:${process.env.USER ?? 'unknown'}` : agent.id,
        agentId: agent.id,
        agentType: agent.type,
        sessionId: s.id,
        triggerUserId: s.userId,
        result: 'success',
        data: {
          issuedVia: s.issuedVia,
          ...(s.userId === null ? {} : { actingFor: s.userId }),
          expiresAt: new Date(s.expiresAt).toISOString(),
          scopes: s.scopes,
          maxToolCalls: s.maxToolCalls,
          allowedCidrs: s.allowedCidrs,
          clientIp: s.clientIp,
        },
      });
    },
  });
  return { clock, store, audit, hmac, agents, sessions, keys, tokens, issuer, audience, publicUrl };
}

/** What openServices returns. */
export type Services = Awaited<ReturnType<typeof openServices>>;

/** Bring config-declared agents into the registry, auditing new ones. */
export async function syncAgents(s: Services, config: WardenConfig): Promise<void> {
  const synced = await s.agents.syncFromConfig(config.agents);
  for (const id of [...synced.created, ...synced.updated]) {
    await s.audit.append({
      traceId: `config-${s.clock.now()}`,
      event: synced.created.includes(id) ? 'AGENT_REGISTERED' : 'AGENT_UPDATED',
      actorType: 'SYSTEM',
      actorId: 'config',
      agentId: id,
      data: { source: config.source ?? 'embedded-default' },
    });
  }
}
