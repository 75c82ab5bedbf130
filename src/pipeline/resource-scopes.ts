/**
 * Resource-specific scopes: a tool's `resourceScopes` templates
 * (`orders:read:user:{userId}`) filled with the call's validated arguments
 * name the resource the call touches, and the session token must carry a
 * scope that covers it. The hierarchy and wildcard rules live in
 * src/identity/scopes.ts, shared with token issuing.
 */
import { WardenError } from '../errors.js';
import { isToolScope, SCOPE_SEGMENT, scopeCovers } from '../identity/index.js';
import { formatPath } from './argument-rules.js';
import type { CallState, PipelineDeps, Step } from './types.js';

/** A filled template, or why the arguments cannot name a resource. */
export type FilledScope = { ok: true; scope: string } | { ok: false; message: string };

const PLACEHOLDER = /^\{([A-Za-z_][A-Za-z0-9_]*)\}$/;

/**
 * Fill `template`'s `{argument}` segments from `args`. A missing argument, a
 * non-scalar one, or a value that is not one plain scope segment (a `:` would
 * move the value into a deeper, broader-looking position; a `*` would be a
 * wildcard) cannot name a resource: the call is then refused.
 */
export function fillScopeTemplate(template: string, args: Readonly<Record<string, unknown>>): FilledScope {
  const out: string[] = [];
  for (const segment of template.split(':')) {
    const name = PLACEHOLDER.exec(segment)?.[1];
    if (name === undefined) {
      out.push(segment);
      continue;
    }
    const where = `argument "${formatPath([name])}"`;
    if (!Object.hasOwn(args, name))
      return { ok: false, message: `${where} is required: it names the resource` };
    const v = args[name];
    const text =
      typeof v === 'string' ? v : typeof v === 'number' && Number.isFinite(v) ? String(v) : undefined;
    if (text === undefined) {
      return { ok: false, message: `${where} must be a string or number: it names the resource` };
    }
    if (!SCOPE_SEGMENT.test(text)) {
      return {
        ok: false,
        message: `${where} cannot name a resource (expected 1–128 of A–Z a–z 0–9 _ . -)`,
      };
    }
    out.push(text);
  }
  return { ok: true, scope: out.join(':') };
}

/**
 * The resource scopes this call needs that the token does not cover (templates that cannot
 * be filled are left to the step, which refuses the arguments).
 */
export function uncoveredResourceScopes(
  templates: readonly string[],
  parameters: Readonly<Record<string, unknown>>,
  scopes: ReadonlySet<string>,
): string[] {
  const out: string[] = [];
  for (const template of templates) {
    const filled = fillScopeTemplate(template, parameters);
    if (!filled.ok) continue;
    const covered = [...scopes].some(
      (g) => !isToolScope(g) && !g.includes('*') && scopeCovers(g, filled.scope),
    );
    if (!covered) out.push(filled.scope);
  }
  return out;
}

/**
 * Step (after authorize): every resource scope the tool's templates name must
 * be covered by a scope of the session token and still by one of the agent's
 * patterns (read live from the registry, so narrowing an agent applies to
 * sessions already open). Outside its resource → 403 INSUFFICIENT_SCOPE naming
 * the scope that would have been needed.
 */
export function resourceScopes(deps: Pick<PipelineDeps, 'toolConfig'>): Step {
  return {
    name: 'resource-scopes',
    async run(state: CallState) {
      const { agent, tool, scopes, parameters } = state;
      if (!agent || !tool || !scopes || !parameters) {
        throw new WardenError('INTERNAL', 'Resource-scope check ran out of order');
      }
      const templates = deps.toolConfig?.(tool.name)?.resourceScopes ?? [];
      for (const template of templates) {
        const filled = fillScopeTemplate(template, parameters);
        if (!filled.ok) {
          throw new WardenError('INVALID_ARGUMENTS', filled.message, { rule: `scope.resource:${tool.name}` });
        }
        const required = filled.scope;
        // Tokens carry concrete scopes only (identity/scopes.ts); a '*' in one is never honoured here.
        const covering = [...scopes].find(
          (g) => !isToolScope(g) && !g.includes('*') && scopeCovers(g, required),
        );
        const stillAllowed = agent.scopes.some((p) => scopeCovers(p, required));
        if (covering === undefined || !stillAllowed) {
          throw new WardenError('INSUFFICIENT_SCOPE', 'The session token does not cover this resource', {
            rule: `scope.resource:${tool.name}`,
            detail:
              covering === undefined
                ? `no token scope covers ${required}`
                : `${required} is covered by the token (${covering}) but no longer by the agent's patterns`,
            // One challenge names every scope the token lacks (MCP authorization: the client can ask
            // for all at once); computed only on this refusal path.
            data: {
              requiredScopes:
                covering === undefined ? uncoveredResourceScopes(templates, parameters, scopes) : [required],
            },
          });
        }
        state.allowedBy.push(`scope.resource:${covering}`);
      }
    },
  };
}
