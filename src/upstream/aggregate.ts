/**
 * Public tool names across upstreams. A tool keeps its upstream name unless
 * two upstreams expose the same name; then both become `<upstream>__<tool>`,
 * so neither silently shadows the other (a later upstream must not be able to
 * capture calls meant for an earlier one by declaring the same tool).
 */
import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import type { AggregatedTool } from './types.js';

/** Joins an upstream name and a tool name when names collide. */
export const COLLISION_SEPARATOR = '__';

/** The collision-prefixed public name of `tool` at `upstream`. */
export function prefixedName(upstream: string, tool: string): string {
  return `${upstream}${COLLISION_SEPARATOR}${tool}`;
}

export interface UpstreamTools {
  upstream: string;
  tools: readonly Tool[];
}

/** A public name that could not be given to anyone (it stays unpublished). */
export interface NameConflict {
  name: string;
  upstreams: string[];
}

/** Aggregates tool lists (in upstream order) into published tools; ambiguous names are dropped and reported. */
export function aggregateTools(lists: readonly UpstreamTools[]): {
  tools: AggregatedTool[];
  conflicts: NameConflict[];
} {
  const owners = new Map<string, Set<string>>();
  for (const { upstream, tools } of lists) {
    for (const t of tools) {
      const set = owners.get(t.name) ?? new Set<string>();
      set.add(upstream);
      owners.set(t.name, set);
    }
  }

  const candidates: AggregatedTool[] = [];
  for (const { upstream, tools } of lists) {
    const seen = new Set<string>();
    for (const t of tools) {
      if (seen.has(t.name)) continue; // an upstream listing a name twice: the first wins
      seen.add(t.name);
      const shared = (owners.get(t.name)?.size ?? 0) > 1;
      candidates.push(toAggregated(shared ? prefixedName(upstream, t.name) : t.name, upstream, t));
    }
  }

  // A prefixed name can still clash with a tool literally called `a__b`; such a
  // name is ambiguous, so it is published for no one (fail closed).
  const count = new Map<string, string[]>();
  for (const c of candidates) count.set(c.name, [...(count.get(c.name) ?? []), c.upstream]);
  const conflicts: NameConflict[] = [];
  for (const [name, ups] of count) if (ups.length > 1) conflicts.push({ name, upstreams: ups });
  const tools =
    conflicts.length === 0 ? candidates : candidates.filter((c) => count.get(c.name)?.length === 1);
  return { tools, conflicts };
}

function toAggregated(name: string, upstream: string, t: Tool): AggregatedTool {
  return {
    name,
    upstream,
    upstreamName: t.name,
    ...(t.title === undefined ? {} : { title: t.title }),
    ...(t.description === undefined ? {} : { description: t.description }),
    inputSchema: t.inputSchema as Record<string, unknown>,
    ...(t.outputSchema === undefined ? {} : { outputSchema: t.outputSchema as Record<string, unknown> }),
    ...(t.annotations === undefined ? {} : { annotations: t.annotations as Record<string, unknown> }),
  };
}
