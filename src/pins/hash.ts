/**
 * What a pin covers: the parts of an upstream tool's definition an agent reads
 * (name, title, description, schemas, annotations), and their hash. The name is
 * the upstream's, not the public one, so a collision prefix appearing or going
 * away (another upstream adding a tool of the same name) is not a "change".
 */
import { canonicalJson, sha256Hex } from '../audit/index.js';
import type { AggregatedTool } from '../upstream/index.js';

/** The pinned parts of a tool's definition, as JSON. */
export interface ToolDefinition {
  name: string;
  title?: string;
  description?: string;
  inputSchema: Record<string, unknown>;
  outputSchema?: Record<string, unknown>;
  annotations?: Record<string, unknown>;
}

/** The pinned parts of `tool` (absent fields stay absent, so they hash as absent). */
export function definitionOf(tool: AggregatedTool): ToolDefinition {
  return {
    name: tool.upstreamName,
    ...(tool.title === undefined ? {} : { title: tool.title }),
    ...(tool.description === undefined ? {} : { description: tool.description }),
    inputSchema: tool.inputSchema,
    ...(tool.outputSchema === undefined ? {} : { outputSchema: tool.outputSchema }),
    ...(tool.annotations === undefined ? {} : { annotations: tool.annotations }),
  };
}

/** SHA-256 hex of the RFC 8785 (JCS) text of `def`: key order and whitespace never change it. */
export function definitionHash(def: ToolDefinition): string {
  const text = canonicalJson(def);
  if (text === null) throw new TypeError('a tool definition cannot be null');
  return sha256Hex(text);
}

// The pool builds new tool objects only when an upstream's list changes, so hashing once per object is enough.
const hashes = new WeakMap<AggregatedTool, string>();

/** The definition hash of `tool`, memoised per object (the hot path checks it on every call). */
export function toolHash(tool: AggregatedTool): string {
  let h = hashes.get(tool);
  if (h === undefined) {
    h = definitionHash(definitionOf(tool));
    hashes.set(tool, h);
  }
  return h;
}
