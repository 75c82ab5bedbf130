import { describe, expect, it } from 'vitest';
import { type Catalog, mergeCatalogs, routeUri, templatePattern } from './catalog.js';

const catalog = (c: Partial<Catalog>): Catalog => ({ resources: [], templates: [], prompts: [], ...c });
const res = (uri: string) => ({ uri, name: uri });
const tpl = (uriTemplate: string) => ({ uriTemplate, name: uriTemplate });
const prompt = (name: string) => ({ name });

describe('templatePattern', () => {
  it('matches what simple, reserved and query expansions produce, and nothing across segments', () => {
    const simple = templatePattern('kb://articles/{id}')!;
    expect(simple.test('kb://articles/42')).toBe(true);
    expect(simple.test('kb://articles/42/../../etc')).toBe(false);
    expect(simple.test('kb://articles/')).toBe(false);
    expect(templatePattern('file:///{+path}')!.test('file:///a/b/c.txt')).toBe(true);
    const query = templatePattern('search://docs{?q,lang}')!;
    expect(query.test('search://docs')).toBe(true);
    expect(query.test('search://docs?q=x&lang=en')).toBe(true);
    // Regex characters in the literal parts are literal.
    expect(templatePattern('a.b://{x}')!.test('aXb://y')).toBe(false);
  });

  it('refuses templates it cannot read (unrouteable rather than guessed)', () => {
    for (const t of ['kb://{', 'kb://{a b}', 'kb://{;x}', 'kb://{=x}'])
      expect(templatePattern(t), t).toBeUndefined();
  });
});

describe('mergeCatalogs and routeUri', () => {
  const merged = mergeCatalogs([
    {
      upstream: 'a',
      catalog: catalog({
        resources: [res('kb://a/readme'), res('kb://shared')],
        templates: [tpl('kb://a/{id}'), tpl('kb://both/{id}')],
        prompts: [prompt('summarize'), prompt('only_a')],
      }),
    },
    {
      upstream: 'b',
      catalog: catalog({
        resources: [res('kb://shared')],
        templates: [tpl('kb://both/{id}'), tpl('kb://b/{+rest}')],
        prompts: [prompt('summarize')],
      }),
    },
  ]);

  it('publishes unique URIs and templates, drops the ones two upstreams claim, and prefixes shared prompt names', () => {
    expect([...merged.resources.keys()]).toEqual(['kb://a/readme']);
    expect(merged.templates.map((t) => t.template.uriTemplate).sort()).toEqual([
      'kb://a/{id}',
      'kb://b/{+rest}',
    ]);
    expect([...merged.prompts.keys()].sort()).toEqual(['a__summarize', 'b__summarize', 'only_a']);
    expect(merged.prompts.get('b__summarize')).toMatchObject({ upstream: 'b', upstreamName: 'summarize' });
    expect(merged.conflicts.sort()).toEqual([
      'resource kb://shared (a, b)',
      'resource template kb://both/{id} (a, b)',
    ]);
  });

  it('routes a URI to the upstream that lists it or whose one template matches; ambiguous or unknown: none', () => {
    expect(routeUri(merged, 'kb://a/readme')).toEqual({ upstream: 'a', via: 'resource' });
    expect(routeUri(merged, 'kb://a/7')).toMatchObject({ upstream: 'a', via: 'template' });
    expect(routeUri(merged, 'kb://b/x/y')).toMatchObject({ upstream: 'b', via: 'template' });
    expect(routeUri(merged, 'kb://shared')).toBeUndefined();
    expect(routeUri(merged, 'kb://both/1')).toBeUndefined();
    expect(routeUri(merged, 'file:///etc/passwd')).toBeUndefined();
  });
});
