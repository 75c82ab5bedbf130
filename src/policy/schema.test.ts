import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkParseSchema, schemaToText } from './cedar.js';
import { buildSchema } from './schema.js';

const text = (schema: Parameters<typeof schemaToText>[0]) => {
  const r = schemaToText(schema);
  if (r.type !== 'success') throw new Error(JSON.stringify(r.errors));
  return r.text;
};

describe('the Cedar schema', () => {
  it('parses, with the declared arguments as optional attributes', () => {
    const schema = buildSchema(
      new Map([
        ['order-id', 'string'],
        ['in', 'integer'],
      ]),
    );
    expect(checkParseSchema(schema).type).toBe('success');
    expect(text(schema)).toMatch(/"in"\?: __cedar::Long,\s+"order-id"\?: __cedar::String/);
  });

  it('is the schema docs/policies.md shows', () => {
    const doc = readFileSync(new URL('../../docs/policies.md', import.meta.url), 'utf8');
    const block = /```cedarschema\n([\s\S]*?)```/.exec(doc)?.[1];
    expect(block).toBeDefined();
    const shown = buildSchema(
      new Map([
        ['amountCents', 'integer'],
        ['orderId', 'string'],
      ]),
    );
    // Built from JSON, types print fully qualified (`__cedar::String`); the doc writes them short.
    const plain = (t: string) => t.replaceAll('__cedar::', '');
    expect(plain(text(block!))).toBe(plain(text(shown)));
  });
});
