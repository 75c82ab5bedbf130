/**
 * `context.session.toolsUsed`: the tools each session has been authorized to
 * call, kept in this process. A bounded cache, not a record: with several
 * replicas, or after eviction, a session can look like it used fewer tools than
 * it did. Over-counting is the safe side for the forbid-style policies this
 * feeds ("no bulk_message after reading orders"), so a tool is noted when it is
 * authorized, even if a later step refuses it. Session taint (issue #7) is the
 * durable, shared version of this.
 */

const MAX_SESSIONS = 10_000;
const MAX_TOOLS_PER_SESSION = 256;

/** Per-session tool use, least recently used sessions evicted first. */
export class SessionActivity {
  private readonly sessions = new Map<string, Set<string>>();

  constructor(private readonly maxSessions = MAX_SESSIONS) {}

  /** The tools `sessionId` has used so far (in first-use order). */
  toolsUsed(sessionId: string): readonly string[] {
    const used = this.sessions.get(sessionId);
    return used ? [...used] : [];
  }

  /** Note that `sessionId` was authorized to call `tool`. */
  note(sessionId: string, tool: string): void {
    let used = this.sessions.get(sessionId);
    if (used) this.sessions.delete(sessionId);
    else used = new Set();
    if (used.size < MAX_TOOLS_PER_SESSION) used.add(tool);
    this.sessions.set(sessionId, used);
    if (this.sessions.size > this.maxSessions) {
      const oldest = this.sessions.keys().next().value;
      if (oldest !== undefined) this.sessions.delete(oldest);
    }
  }
}
