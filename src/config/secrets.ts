/**
 * Resolving secret references. Messages name the reference (variable or file),
 * never the secret, so they are safe to log and to show an operator.
 */
import { readFile } from 'node:fs/promises';
import { WardenError } from '../errors.js';
import type { SecretRef } from './types.js';

/** `{env: NAME}` / `{file: PATH}` as written, for messages. */
export function describeRef(ref: SecretRef): string {
  return 'env' in ref ? `{env: ${ref.env}}` : `{file: ${ref.file}}`;
}

/** The secret a reference points to: the variable's value, or the file's contents trimmed. */
export async function resolveSecret(ref: SecretRef, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  if ('env' in ref) {
    const value = env[ref.env];
    if (value === undefined || value === '') {
      throw new WardenError(
        'CONFIG_INVALID',
        `secret reference ${describeRef(ref)}: environment variable ${ref.env} is not set`,
      );
    }
    return value;
  }
  let text: string;
  try {
    text = await readFile(ref.file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'read error';
    throw new WardenError(
      'CONFIG_INVALID',
      `secret reference ${describeRef(ref)}: cannot read the file (${code})`,
      {
        cause: e,
      },
    );
  }
  const value = text.trim();
  if (value === '')
    throw new WardenError('CONFIG_INVALID', `secret reference ${describeRef(ref)}: the file is empty`);
  return value;
}

/** A header value from its reference: the optional prefix (e.g. "Bearer ") followed by the secret. */
export async function resolveHeaderSecret(
  ref: SecretRef & { prefix?: string },
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  return (ref.prefix ?? '') + (await resolveSecret(ref, env));
}
