/**
 * The calls running in this process, by agent and session, each with the
 * controller that aborts it: what the kill switch reaches for (issue #8). A
 * call registers once it is authenticated and leaves when it ends, so the
 * registry holds only live calls.
 *
 * Kills are remembered for a while (`recentMs`): a call that passed its token
 * check just before the kill was committed, and registers just after the
 * abort went out, is refused here instead of slipping through the gap.
 */
import { WardenError } from '../errors.js';

interface Entry {
  agentId: string;
  sessionId: string;
  controller: AbortController;
}

/** How long a kill is remembered against the verify-then-register race. */
const RECENT_MS = 30_000;

/** The abort reason every killed call carries: the faces turn it into a clean AGENT_KILLED error. */
export function killedError(scope: 'agent' | 'session', reason: string): WardenError {
  return scope === 'agent'
    ? new WardenError('AGENT_KILLED', 'The agent has been stopped by the kill switch', {
        rule: 'kill-switch.agent',
        detail: reason,
      })
    : new WardenError('SESSION_REVOKED', 'The session has been stopped by the kill switch', {
        rule: 'kill-switch.session',
        detail: reason,
      });
}

export class InFlightCalls {
  private readonly byAgent = new Map<string, Set<Entry>>();
  private readonly killedAgents = new Map<string, { at: number; reason: string }>();
  private readonly killedSessions = new Map<string, { at: number; reason: string }>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Number of calls running now. */
  get size(): number {
    let n = 0;
    for (const s of this.byAgent.values()) n += s.size;
    return n;
  }

  /** Calls of one agent running now. */
  countFor(agentId: string): number {
    return this.byAgent.get(agentId)?.size ?? 0;
  }

  /** Agents and sessions with calls running now (the store poller checks these). */
  live(): { agents: string[]; sessions: string[] } {
    const sessions = new Set<string>();
    for (const set of this.byAgent.values()) for (const e of set) sessions.add(e.sessionId);
    return { agents: [...this.byAgent.keys()], sessions: [...sessions] };
  }

  /**
   * Register a running call; returns the function that removes it. Throws the kill's error when
   * the agent or session was killed recently (the call must not start).
   */
  enter(agentId: string, sessionId: string, controller: AbortController): () => void {
    const killed = this.recent(this.killedAgents, agentId);
    if (killed) throw killedError('agent', killed.reason);
    const sessionKilled = this.recent(this.killedSessions, sessionId);
    if (sessionKilled) throw killedError('session', sessionKilled.reason);
    const entry: Entry = { agentId, sessionId, controller };
    let set = this.byAgent.get(agentId);
    if (!set) {
      set = new Set();
      this.byAgent.set(agentId, set);
    }
    set.add(entry);
    return () => {
      const s = this.byAgent.get(agentId);
      if (!s) return;
      s.delete(entry);
      if (s.size === 0) this.byAgent.delete(agentId);
    };
  }

  /** Abort every call of `agentId` and refuse new ones for a while; returns how many were aborted. */
  abortAgent(agentId: string, reason: string): number {
    this.remember(this.killedAgents, agentId, reason);
    const set = this.byAgent.get(agentId);
    if (!set) return 0;
    const error = killedError('agent', reason);
    let n = 0;
    for (const e of [...set]) {
      if (e.controller.signal.aborted) continue;
      e.controller.abort(error);
      n++;
    }
    return n;
  }

  /** Abort every call of one session and refuse new ones for a while; returns how many were aborted. */
  abortSession(sessionId: string, reason: string): number {
    this.remember(this.killedSessions, sessionId, reason);
    const error = killedError('session', reason);
    let n = 0;
    for (const set of this.byAgent.values()) {
      for (const e of [...set]) {
        if (e.sessionId !== sessionId || e.controller.signal.aborted) continue;
        e.controller.abort(error);
        n++;
      }
    }
    return n;
  }

  /** An agent was re-enabled: new calls may start again at once. */
  forgetAgent(agentId: string): void {
    this.killedAgents.delete(agentId);
  }

  private remember(map: Map<string, { at: number; reason: string }>, id: string, reason: string): void {
    const now = this.now();
    map.set(id, { at: now, reason });
    // Bounded: old kills are dropped as new ones arrive (the store refuses them anyway).
    for (const [k, v] of map) {
      if (now - v.at <= RECENT_MS && map.size <= 10_000) break;
      map.delete(k);
    }
  }

  private recent(
    map: Map<string, { at: number; reason: string }>,
    id: string,
  ): { at: number; reason: string } | undefined {
    if (map.size === 0) return undefined;
    const hit = map.get(id);
    if (!hit) return undefined;
    if (this.now() - hit.at > RECENT_MS) {
      map.delete(id);
      return undefined;
    }
    return hit;
  }
}
