/** The corpus's JSON Lines files: one JSON value per non-blank line. */
import { readFileSync } from 'node:fs';

/** The rows of the JSON Lines file at `path`. */
export function readJsonl<T>(path: string): T[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as T);
}
