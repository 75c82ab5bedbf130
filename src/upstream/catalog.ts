/**
 * An upstream's resources, resource templates and prompts (issue #10): listed
 * in full at connect and again when it says they changed, with the same bounds
 * as tools (a broken or hostile upstream cannot page us forever), and merged
 * across upstreams into what Warden publishes.
 */
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { AnySchema } from '@modelcontextprotocol/sdk/server/zod-compat.js';
import {
  ListPromptsResultSchema,
  ListResourcesResultSchema,
  ListResourceTemplatesResultSchema,
  type Prompt,
  type Resource,
  type ResourceTemplate,
} from '@modelcontextprotocol/sdk/types.js';
import { prefixedName } from './aggregate.js';

const MAX_PAGES = 100;
const MAX_ITEMS = 10_000;

/** What one upstream offers besides tools. */
export interface Catalog {
  resources: readonly Resource[];
  templates: readonly ResourceTemplate[];
  prompts: readonly Prompt[];
}

export const EMPTY_CATALOG: Catalog = { resources: [], templates: [], prompts: [] };

/** Lists what the upstream declared (resources, prompts); an undeclared kind is empty. */
export async function listCatalog(client: Client, timeout: number): Promise<Catalog> {
  const caps = client.getServerCapabilities() ?? {};
  const [resources, templates, prompts] = await Promise.all([
    caps.resources
      ? listAll<Resource>(client, 'resources/list', ListResourcesResultSchema, 'resources', timeout)
      : [],
    caps.resources
      ? listAll<ResourceTemplate>(
          client,
          'resources/templates/list',
          ListResourceTemplatesResultSchema,
          'resourceTemplates',
          timeout,
        ).catch(() => []) // templates are optional even when resources are declared
      : [],
    caps.prompts ? listAll<Prompt>(client, 'prompts/list', ListPromptsResultSchema, 'prompts', timeout) : [],
  ]);
  return { resources, templates, prompts };
}

async function listAll<T>(
  client: Client,
  method: string,
  schema: AnySchema,
  key: string,
  timeout: number,
): Promise<T[]> {
  const out: T[] = [];
  const cursors = new Set<string>();
  let cursor: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const res = (await client.request(
      { method, params: cursor === undefined ? {} : { cursor } } as never,
      schema,
      { timeout },
    )) as Record<string, unknown> & { nextCursor?: string };
    out.push(...((res[key] as T[] | undefined) ?? []));
    if (out.length > MAX_ITEMS) throw new Error(`${method}: more than ${MAX_ITEMS} items`);
    cursor = res.nextCursor;
    if (cursor === undefined) return out;
    if (cursors.has(cursor)) throw new Error(`${method} returned a cursor twice`);
    cursors.add(cursor);
  }
  throw new Error(`${method} did not end within ${MAX_PAGES} pages`);
}

/** A resource as published: where it really lives. */
export interface PublishedResource {
  resource: Resource;
  upstream: string;
}

export interface PublishedTemplate {
  template: ResourceTemplate;
  upstream: string;
  /** Matches the URIs the template expands to. */
  pattern: RegExp;
}

export interface PublishedPrompt {
  /** Public name: the upstream's, or `<upstream>__<name>` when two upstreams share it. */
  name: string;
  upstream: string;
  upstreamName: string;
  prompt: Prompt;
}

/** What Warden publishes, merged over upstreams; ambiguous URIs, templates and names are dropped (fail closed). */
export interface MergedCatalog {
  resources: Map<string, PublishedResource>;
  templates: PublishedTemplate[];
  prompts: Map<string, PublishedPrompt>;
  /** What was dropped as ambiguous, for the log. */
  conflicts: string[];
}

export function mergeCatalogs(lists: ReadonlyArray<{ upstream: string; catalog: Catalog }>): MergedCatalog {
  const conflicts: string[] = [];
  // Resources: a URI names one thing; two upstreams claiming it is ambiguous, so neither gets it.
  const byUri = new Map<string, PublishedResource[]>();
  for (const { upstream, catalog } of lists) {
    for (const resource of catalog.resources) {
      const list = byUri.get(resource.uri) ?? [];
      if (!list.some((p) => p.upstream === upstream)) list.push({ resource, upstream });
      byUri.set(resource.uri, list);
    }
  }
  const resources = new Map<string, PublishedResource>();
  for (const [uri, list] of byUri) {
    if (list.length === 1) resources.set(uri, list[0]!);
    else conflicts.push(`resource ${uri} (${list.map((p) => p.upstream).join(', ')})`);
  }
  const byTemplate = new Map<string, PublishedTemplate[]>();
  for (const { upstream, catalog } of lists) {
    for (const template of catalog.templates) {
      const pattern = templatePattern(template.uriTemplate);
      if (!pattern) continue;
      const list = byTemplate.get(template.uriTemplate) ?? [];
      if (!list.some((p) => p.upstream === upstream)) list.push({ template, upstream, pattern });
      byTemplate.set(template.uriTemplate, list);
    }
  }
  const templates: PublishedTemplate[] = [];
  for (const [t, list] of byTemplate) {
    if (list.length === 1) templates.push(list[0]!);
    else conflicts.push(`resource template ${t} (${list.map((p) => p.upstream).join(', ')})`);
  }
  // Prompts: named like tools (collisions prefixed with the upstream).
  const owners = new Map<string, Set<string>>();
  for (const { upstream, catalog } of lists) {
    for (const p of catalog.prompts) owners.set(p.name, (owners.get(p.name) ?? new Set()).add(upstream));
  }
  const candidates = new Map<string, PublishedPrompt[]>();
  for (const { upstream, catalog } of lists) {
    const seen = new Set<string>();
    for (const prompt of catalog.prompts) {
      if (seen.has(prompt.name)) continue;
      seen.add(prompt.name);
      const name =
        (owners.get(prompt.name)?.size ?? 0) > 1 ? prefixedName(upstream, prompt.name) : prompt.name;
      candidates.set(name, [
        ...(candidates.get(name) ?? []),
        { name, upstream, upstreamName: prompt.name, prompt },
      ]);
    }
  }
  const prompts = new Map<string, PublishedPrompt>();
  for (const [name, list] of candidates) {
    if (list.length === 1) prompts.set(name, list[0]!);
    else conflicts.push(`prompt ${name} (${list.map((p) => p.upstream).join(', ')})`);
  }
  return { resources, templates, prompts, conflicts };
}

/**
 * Where a URI is read: a listed resource, or else the one template it matches.
 * A URI matching templates of two upstreams is ambiguous (undefined), like an unknown one.
 */
export function routeUri(
  merged: MergedCatalog,
  uri: string,
): { upstream: string; via: 'resource' | 'template'; template?: string } | undefined {
  const listed = merged.resources.get(uri);
  if (listed) return { upstream: listed.upstream, via: 'resource' };
  const matches = merged.templates.filter((t) => t.pattern.test(uri));
  const upstreams = new Set(matches.map((m) => m.upstream));
  if (upstreams.size !== 1) return undefined;
  return { upstream: matches[0]!.upstream, via: 'template', template: matches[0]!.template.uriTemplate };
}

/**
 * A regular expression for the URIs an RFC 6570 template expands to. Simple
 * `{var}` expansions match one path segment's characters (no `/`, `?`, `#`);
 * reserved `{+var}` and `{#var}` match anything; query forms `{?a,b}` and
 * `{&a}` match an optional query part. Anything else makes the template unusable
 * for routing (undefined): better unreadable than routed by a guess.
 */
export function templatePattern(template: string): RegExp | undefined {
  if (template.length > 2_000) return undefined;
  let re = '^';
  let i = 0;
  while (i < template.length) {
    const open = template.indexOf('{', i);
    if (open < 0) {
      re += escapeRegExp(template.slice(i));
      break;
    }
    re += escapeRegExp(template.slice(i, open));
    const close = template.indexOf('}', open);
    if (close < 0) return undefined;
    const expr = template.slice(open + 1, close);
    const op = /^[+#?&/.;]/.test(expr) ? expr[0] : '';
    const names = (op ? expr.slice(1) : expr).split(',');
    if (names.some((n) => !/^[A-Za-z0-9_.%]+\*?$/.test(n))) return undefined;
    if (op === '') re += '[^/?#]+';
    else if (op === '+' || op === '#') re += '.+';
    else if (op === '?' || op === '&') re += '(?:[?&][^#]*)?';
    else if (op === '/') re += '(?:/[^?#]*)?';
    else return undefined;
    i = close + 1;
  }
  return new RegExp(`${re}$`);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
