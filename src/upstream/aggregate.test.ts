import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, it } from 'vitest';
import { aggregateTools, prefixedName } from './aggregate.js';

const tool = (name: string, extra: Partial<Tool> = {}): Tool => ({
  name,
  inputSchema: { type: 'object' },
  ...extra,
});

describe('aggregateTools', () => {
  it('keeps upstream names when they are unique, in upstream order', () => {
    const { tools, conflicts } = aggregateTools([
      {
        upstream: 'desk',
        tools: [tool('lookup_order', { description: 'd', title: 'T' }), tool('issue_refund')],
      },
      { upstream: 'crm', tools: [tool('find_contact')] },
    ]);
    expect(conflicts).toEqual([]);
    expect(tools.map((t) => [t.name, t.upstream, t.upstreamName])).toEqual([
      ['lookup_order', 'desk', 'lookup_order'],
      ['issue_refund', 'desk', 'issue_refund'],
      ['find_contact', 'crm', 'find_contact'],
    ]);
    expect(tools[0]).toMatchObject({ description: 'd', title: 'T', inputSchema: { type: 'object' } });
  });

  it('prefixes BOTH tools when two upstreams share a name, and only those', () => {
    const { tools } = aggregateTools([
      { upstream: 'a', tools: [tool('search'), tool('only_a')] },
      { upstream: 'b', tools: [tool('search')] },
    ]);
    expect(tools.map((t) => t.name)).toEqual(['a__search', 'only_a', 'b__search']);
    expect(tools.find((t) => t.name === 'b__search')?.upstreamName).toBe('search');
    expect(prefixedName('a', 'search')).toBe('a__search');
  });

  it('publishes an ambiguous name for no one (a literal a__search next to a collision)', () => {
    const { tools, conflicts } = aggregateTools([
      { upstream: 'a', tools: [tool('search')] },
      { upstream: 'b', tools: [tool('search')] },
      { upstream: 'c', tools: [tool('a__search'), tool('fine')] },
    ]);
    expect(conflicts).toEqual([{ name: 'a__search', upstreams: ['a', 'c'] }]);
    expect(tools.map((t) => t.name)).toEqual(['b__search', 'fine']);
  });

  it('keeps the first of duplicate names listed by one upstream', () => {
    const { tools } = aggregateTools([
      { upstream: 'a', tools: [tool('x', { description: 'first' }), tool('x', { description: 'second' })] },
    ]);
    expect(tools).toHaveLength(1);
    expect(tools[0]?.description).toBe('first');
  });
});
