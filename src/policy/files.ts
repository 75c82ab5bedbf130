/**
 * Plain `.cedar` policy files: split into policies (keeping where each one
 * starts, so later validation errors still point into the file), named, and
 * turned into `file:line:col: problem` messages when they do not parse.
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import type { DetailedError, PolicyJson } from '@cedar-policy/cedar-wasm/nodejs';
import { policySetTextToParts, policyToJson } from './cedar.js';

/** Where a policy came from, so a problem can be reported at its source. */
export type PolicyOrigin =
  | { kind: 'file'; file: string; text: string; start: number }
  | { kind: 'rule'; index: number }
  | { kind: 'builtin' };

/** One policy read from a file. */
export interface FilePolicy {
  id: string;
  text: string;
  json: PolicyJson;
  origin: PolicyOrigin & { kind: 'file' };
}

/** 1-based line and column of character index `index` in `text`. */
export function lineCol(text: string, index: number): { line: number; col: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < index && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, col: index - lineStart + 1 };
}

/** Cedar reports UTF-8 byte offsets; JavaScript strings index UTF-16 units. */
export function byteToCharIndex(text: string, byteOffset: number): number {
  return Buffer.from(text, 'utf8').subarray(0, byteOffset).toString('utf8').length;
}

/** A Cedar error as one line: message, then the label and help when they add something. */
export function describeCedarError(e: DetailedError): string {
  const label = e.sourceLocations?.find((l) => l.label)?.label;
  return [e.message, label ? `(${label})` : '', e.help ? `— ${e.help}` : ''].filter(Boolean).join(' ');
}

/** `file:line:col` of byte offset `byteOffset` inside a policy that starts at char `origin.start` of its file. */
export function fileLocation(
  origin: PolicyOrigin & { kind: 'file' },
  policyText: string,
  byteOffset: number,
): string {
  const { line, col } = lineCol(origin.text, origin.start + byteToCharIndex(policyText, byteOffset));
  return `${origin.file}:${line}:${col}`;
}

/**
 * Read and split one file. Policies are named by their `@id("…")` annotation,
 * else `<file name>#<n>` (1-based, in file order).
 */
export async function readCedarFile(
  path: string,
  shown: string,
): Promise<{ policies: FilePolicy[]; errors: string[] }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'read error';
    return { policies: [], errors: [`${shown}: cannot read the policy file (${code})`] };
  }
  const parts = policySetTextToParts(text);
  if (parts.type === 'failure') {
    return {
      policies: [],
      errors: parts.errors.map((e) => {
        const at = e.sourceLocations?.[0];
        const where = at ? lineCol(text, byteToCharIndex(text, at.start)) : { line: 1, col: 1 };
        return `${shown}:${where.line}:${where.col}: ${describeCedarError(e)}`;
      }),
    };
  }
  const errors: string[] = [];
  for (const t of parts.policy_templates) {
    const { line, col } = lineCol(text, Math.max(0, text.indexOf(t)));
    errors.push(`${shown}:${line}:${col}: policy templates (?principal, ?resource) are not supported`);
  }
  const located = locateParts(text, parts.policies);
  const name = basename(path);
  const policies: FilePolicy[] = [];
  located.forEach((p, i) => {
    const json = policyToJson(p.text);
    const origin = { kind: 'file' as const, file: shown, text, start: p.start };
    if (json.type === 'failure') {
      // Parsed a moment ago as part of the file; report rather than assume.
      const { line, col } = lineCol(text, p.start);
      errors.push(`${shown}:${line}:${col}: ${json.errors.map(describeCedarError).join('; ')}`);
      return;
    }
    const id = json.json.annotations?.['id'];
    policies.push({
      id: typeof id === 'string' ? id : `${name}#${i + 1}`,
      text: p.text,
      json: json.json,
      origin,
    });
  });
  return { policies, errors };
}

/**
 * Where each part starts in `text`, in file order. Parts hold the exact source
 * text but come back sorted by Cedar's internal ids (`policy0`, `policy1`,
 * `policy10`, … as strings), so file order is recovered from that sort and
 * each part found after the previous one — linear, where searching the whole
 * file for each part is quadratic (minutes for a 20,000-policy file).
 */
function locateParts(text: string, parts: readonly string[]): Array<{ text: string; start: number }> {
  const ids = parts.map((_, i) => `policy${i}`).sort();
  const inFileOrder: string[] = new Array(parts.length);
  ids.forEach((id, k) => {
    inFileOrder[Number(id.slice('policy'.length))] = parts[k]!;
  });
  const out: Array<{ text: string; start: number }> = [];
  let cursor = 0;
  for (const p of inFileOrder) {
    const at = text.indexOf(p, cursor);
    if (at === -1) return locateSlowly(text, parts);
    out.push({ text: p, start: at });
    cursor = at + p.length;
  }
  return out;
}

/** The order-free fallback, should Cedar ever order parts differently. */
function locateSlowly(text: string, parts: readonly string[]): Array<{ text: string; start: number }> {
  const used = new Set<number>();
  const located = parts.map((p) => {
    let at = text.indexOf(p);
    while (at !== -1 && used.has(at)) at = text.indexOf(p, at + 1);
    used.add(at);
    return { text: p, start: Math.max(0, at) };
  });
  return located.sort((a, b) => a.start - b.start);
}
