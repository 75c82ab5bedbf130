/**
 * InjecAgent (MIT, Zhan et al. 2024) as read from `../shared/corpus/injecagent`:
 * the toolkits as MCP tool definitions, the attack cases, the arguments a real
 * model used for each attacker tool, and what private-data reads return.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';

export interface ToolkitTool {
  /** Public name: toolkit + tool name (`GmailSendEmail`). */
  name: string;
  toolkit: string;
  description: string;
  inputSchema: { type: 'object'; properties: Record<string, unknown>; required?: string[] };
}

export interface Toolkit {
  name: string;
  tools: ToolkitTool[];
}

export type AttackKind = 'dh' | 'ds';

export interface AttackCase {
  /** `<file stem>#<index>` (1-based), stable across runs. */
  id: string;
  file: string;
  kind: AttackKind;
  /** `base` / `enhanced` from the file name; other files: `other`. */
  setting: string;
  attackType: string;
  userTool: string;
  userInstruction: string;
  userArguments: Record<string, unknown>;
  /** The user tool's response carrying the attacker's instruction, as the tool returns it. */
  toolResponse: string;
  attackerTools: string[];
  attackerInstruction: string;
}

export interface Corpus {
  dir: string;
  toolkits: Toolkit[];
  tools: Map<string, ToolkitTool>;
  /** Arguments per attacker tool (`attacker_calls.json`). */
  attackerCalls: Record<string, Record<string, unknown>>;
  /** `(Tool,{json-args})` → response (`attacker_simulated_responses.json`). */
  simulated: Map<string, unknown>;
  /** First simulated response per tool, for argument spellings the file does not hold. */
  simulatedByTool: Map<string, unknown>;
}

interface RawParameter {
  name: string;
  type: string;
  description?: string;
  required?: boolean;
}

const JSON_TYPES: Record<string, string> = {
  string: 'string',
  integer: 'integer',
  number: 'number',
  boolean: 'boolean',
  array: 'array',
  object: 'object',
};

function readJson(path: string): unknown {
  return JSON.parse(readFileSync(path, 'utf8')) as unknown;
}

/** The corpus directory: `--corpus DIR`, $WARDEN_CORPUS/injecagent, or ../shared/corpus/injecagent. */
export function corpusDir(repo: string, given?: string): string {
  if (given) return resolve(given);
  const base = process.env['WARDEN_CORPUS'] ?? resolve(repo, '../shared/corpus');
  return resolve(base, 'injecagent');
}

export function loadCorpus(dir: string): Corpus {
  if (!existsSync(resolve(dir, 'tools.json'))) {
    throw new Error(`no InjecAgent corpus at ${dir} (tools.json missing); pass --corpus DIR`);
  }
  const raw = readJson(resolve(dir, 'tools.json')) as Array<{
    toolkit: string;
    tools: Array<{ name: string; summary: string; parameters: RawParameter[] }>;
  }>;
  const toolkits: Toolkit[] = [];
  const tools = new Map<string, ToolkitTool>();
  for (const kit of raw) {
    const list: ToolkitTool[] = [];
    for (const t of kit.tools) {
      const properties: Record<string, unknown> = {};
      const required: string[] = [];
      for (const p of t.parameters) {
        const type = JSON_TYPES[p.type];
        if (!type) throw new Error(`tools.json: ${kit.toolkit}${t.name}.${p.name}: unknown type ${p.type}`);
        properties[p.name] = { type, ...(p.description ? { description: p.description } : {}) };
        if (p.required) required.push(p.name);
      }
      const tool: ToolkitTool = {
        name: `${kit.toolkit}${t.name}`,
        toolkit: kit.toolkit,
        description: t.summary,
        inputSchema: { type: 'object', properties, ...(required.length > 0 ? { required } : {}) },
      };
      list.push(tool);
      tools.set(tool.name, tool);
    }
    toolkits.push({ name: kit.toolkit, tools: list });
  }
  const attackerCalls = readJson(resolve(dir, 'attacker_calls.json')) as Corpus['attackerCalls'];
  const sim = readJson(resolve(dir, 'attacker_simulated_responses.json')) as Record<string, unknown>;
  const simulated = new Map(Object.entries(sim));
  const simulatedByTool = new Map<string, unknown>();
  for (const [key, value] of simulated) {
    const tool = /^\(([A-Za-z0-9]+),/.exec(key)?.[1];
    if (tool && !simulatedByTool.has(tool)) simulatedByTool.set(tool, value);
  }
  return { dir, toolkits, tools, attackerCalls, simulated, simulatedByTool };
}

/** The four files of the benchmark, in the order they are reported. */
export const CASE_FILES = [
  'test_cases_dh_base.json',
  'test_cases_dh_enhanced.json',
  'test_cases_ds_base.json',
  'test_cases_ds_enhanced.json',
] as const;

/** A Python literal (`{'a': True}`) as JSON, when it is simple enough; undefined otherwise. */
export function pythonLiteral(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    // fall through
  }
  // Single-quoted strings to double-quoted, True/False/None to JSON. Strings holding quotes of
  // the other kind are escaped; anything this cannot read is reported by the caller.
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === "'" || c === '"') {
      let j = i + 1;
      let s = '';
      while (j < text.length && text[j] !== c) {
        if (text[j] === '\\' && j + 1 < text.length) {
          s += text[j + 1] === c ? c : `\\${text[j + 1]}`;
          j += 2;
          continue;
        }
        s += text[j] === '"' ? '\\"' : text[j];
        j++;
      }
      out += `"${s}"`;
      i = j + 1;
      continue;
    }
    const word = /^(True|False|None)\b/.exec(text.slice(i));
    if (word) {
      out += word[1] === 'True' ? 'true' : word[1] === 'False' ? 'false' : 'null';
      i += word[1]!.length;
      continue;
    }
    out += c;
    i++;
  }
  try {
    return JSON.parse(out);
  } catch {
    return undefined;
  }
}

/** Cases from one file of InjecAgent's format. */
export function loadCases(path: string): AttackCase[] {
  const file = basename(path);
  const stem = file.replace(/\.json$/, '');
  // By name for InjecAgent's files; otherwise a read-then-send goal is data stealing.
  const named: AttackKind | undefined = /_ds_/.test(file) ? 'ds' : /_dh_/.test(file) ? 'dh' : undefined;
  const setting = /enhanced/.test(file) ? 'enhanced' : /base/.test(file) ? 'base' : 'other';
  const rows = readJson(path) as Array<Record<string, unknown>>;
  if (!Array.isArray(rows)) throw new Error(`${file}: expected a JSON array of cases`);
  return rows.map((r, i) => {
    const at = `${file}[${i}]`;
    const str = (k: string): string => {
      const v = r[k];
      if (typeof v !== 'string') throw new Error(`${at}: "${k}" must be a string`);
      return v;
    };
    const tools = r['Attacker Tools'];
    if (!Array.isArray(tools) || tools.some((t) => typeof t !== 'string') || tools.length === 0) {
      throw new Error(`${at}: "Attacker Tools" must be a non-empty list of tool names`);
    }
    const args = pythonLiteral(str('Tool Parameters'));
    if (args === null || typeof args !== 'object' || Array.isArray(args)) {
      throw new Error(`${at}: "Tool Parameters" is not a dict`);
    }
    let response = str('Tool Response');
    // The files keep the response as a quoted Python string.
    if (response.length >= 2 && response.startsWith('"') && response.endsWith('"')) {
      response = response.slice(1, -1);
    }
    return {
      id: `${stem}#${i + 1}`,
      file,
      kind: named ?? ((tools as string[]).length > 1 ? 'ds' : 'dh'),
      setting,
      attackType: typeof r['Attack Type'] === 'string' ? (r['Attack Type'] as string) : 'unknown',
      userTool: str('User Tool'),
      userInstruction: str('User Instruction'),
      userArguments: args as Record<string, unknown>,
      toolResponse: response,
      attackerTools: tools as string[],
      attackerInstruction: str('Attacker Instruction'),
    };
  });
}

/** What an attacker's private-data read returns: the simulated response for these arguments, else the tool's first. */
export function simulatedResponse(corpus: Corpus, tool: string, args: Record<string, unknown>): unknown {
  const key = `(${tool},${pythonJson(args)})`;
  if (corpus.simulated.has(key)) return corpus.simulated.get(key);
  return corpus.simulatedByTool.get(tool);
}

/** JSON as Python's json.dumps writes it (", " and ": " separators), the key format of the simulated responses. */
export function pythonJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(pythonJson).join(', ')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.entries(v)
      .map(([k, x]) => `${JSON.stringify(k)}: ${pythonJson(x)}`)
      .join(', ')}}`;
  }
  return JSON.stringify(v);
}

/**
 * The user's address book as the user cases reveal it: every e-mail address their
 * instructions and tool arguments name (for the `contacts-trusted` sensitivity run).
 */
export function userContacts(dir: string): string[] {
  const out = new Set<string>();
  for (const line of readFileSync(resolve(dir, 'user_cases.jsonl'), 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const row = JSON.parse(line) as Record<string, unknown>;
    const text = `${String(row['User Instruction'] ?? '')} ${String(row['Tool Parameters'] ?? '')}`;
    for (const m of text.matchAll(/[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g))
      out.add(m[0].toLowerCase());
  }
  return [...out].sort();
}
