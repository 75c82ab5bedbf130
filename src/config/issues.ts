/**
 * Turns zod issues into one plain sentence per problem ("expected …, got …"),
 * each tied to the path of the offending YAML node. Values under secret-bearing
 * paths are described by type only, never echoed.
 */

import type { z } from 'zod';
import { closest } from './closest.js';
import { describeValue, isSensitivePath } from './describe.js';
import { KNOWN_KEYS } from './schema.js';

/** One problem in the file: where (a path into the document) and what. */
export interface ConfigIssue {
  path: PropertyKey[];
  message: string;
  /** Point at the key itself rather than its value (unknown keys). */
  atKey?: boolean;
}

const TYPE_NAMES: Record<string, string> = {
  object: 'a mapping',
  array: 'a list',
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
};

/** The value at `path` inside `root`, or undefined. */
export function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v = root;
  for (const seg of path) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<PropertyKey, unknown>)[seg];
  }
  return v;
}

/** `agents[0].publicKey.kty`-style rendering of a path. */
export function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(top level)';
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(String(seg))) out += out === '' ? String(seg) : `.${String(seg)}`;
    else out += `[${JSON.stringify(String(seg))}]`;
  }
  return out;
}

/** The known key closest to a misspelt one, if it is close enough to be a typo. */
export function suggestKey(key: string): string | undefined {
  return closest(key, KNOWN_KEYS);
}

function got(root: unknown, path: readonly PropertyKey[]): string {
  return describeValue(valueAt(root, path), isSensitivePath(path));
}

function expectedName(expected: string): string {
  return TYPE_NAMES[expected] ?? expected;
}

/** One or more ConfigIssues for a zod issue; `root` is the raw parsed document (for "got" values). */
export function fromZodIssue(
  issue: z.core.$ZodIssue,
  root: unknown,
  prefix: PropertyKey[] = [],
): ConfigIssue[] {
  const path = [...prefix, ...issue.path];
  const one = (message: string): ConfigIssue[] => [{ path, message }];
  switch (issue.code) {
    case 'invalid_type': {
      const v = valueAt(root, path);
      if (v === undefined) {
        const what = issue.expected === 'nonoptional' ? '' : ` (expected ${expectedName(issue.expected)})`;
        return one(`missing required key${what}`);
      }
      return one(`expected ${expectedName(issue.expected)}, got ${got(root, path)}`);
    }
    case 'invalid_value':
      return one(
        `expected ${issue.values.map((x) => JSON.stringify(x)).join(' | ')}, got ${got(root, path)}`,
      );
    case 'invalid_format':
      return one(`${issue.message}, got ${got(root, path)}`);
    case 'unrecognized_keys':
      return issue.keys.map((key) => {
        const hint = suggestKey(key);
        return {
          path: [...path, key],
          atKey: true,
          message: `unknown key "${key}"${hint === undefined ? '' : ` (did you mean "${hint}"?)`}`,
        };
      });
    case 'too_small': {
      if (issue.origin === 'string') return one('must not be empty');
      if (issue.origin === 'array') return one(`expected at least ${issue.minimum} item(s)`);
      const bound = issue.inclusive === false ? 'more than' : 'at least';
      return one(`expected ${bound} ${issue.minimum}, got ${got(root, path)}`);
    }
    case 'too_big': {
      const bound = issue.inclusive === false ? 'less than' : 'at most';
      return one(`expected ${bound} ${issue.maximum}, got ${got(root, path)}`);
    }
    case 'invalid_union': {
      if (issue.discriminator !== undefined && 'options' in issue && Array.isArray(issue.options)) {
        const opts = issue.options.map((o: unknown) => JSON.stringify(o)).join(' | ');
        return one(`expected ${opts}, got ${got(root, path)}`);
      }
      const types = issue.errors.flatMap((branch) =>
        branch.flatMap((b) =>
          b.code === 'invalid_type' && b.path.length === 0 ? [expectedName(b.expected)] : [],
        ),
      );
      if (types.length === issue.errors.length && types.length > 0) {
        return one(`expected ${[...new Set(types)].join(' or ')}, got ${got(root, path)}`);
      }
      return one(`does not match any allowed form, got ${got(root, path)}`);
    }
    case 'invalid_key': {
      const key = JSON.stringify(String(path[path.length - 1]));
      return issue.issues.map((inner) => ({
        path,
        atKey: true,
        message: `invalid key ${key}: ${inner.message}`,
      }));
    }
    default:
      return one(issue.message);
  }
}
