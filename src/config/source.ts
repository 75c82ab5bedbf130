/**
 * The YAML side of loading: parse keeping source positions, and find the
 * line:column of the node a path points to, so every message can name it.
 */
import { type Document, isAlias, isMap, isNode, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';

/** A 1-based line and column. */
export interface Position {
  line: number;
  col: number;
}

/** A parsed YAML file and what is needed to map offsets back to positions. */
export interface YamlSource {
  doc: Document.Parsed;
  lineCounter: LineCounter;
}

/** A YAML syntax error or warning with its position. */
export interface YamlProblem extends Position {
  message: string;
}

/** Parse YAML text; syntax errors and warnings come back with their positions instead of throwing. */
export function parseYaml(text: string): YamlSource & { errors: YamlProblem[]; warnings: YamlProblem[] } {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, {
    lineCounter,
    prettyErrors: false,
    uniqueKeys: true,
    // `<<: *anchor` lets operators share upstream settings; aliases stay capped at load (maxAliasCount).
    merge: true,
  });
  const at = (e: { pos: [number, number]; message: string }): YamlProblem => ({
    ...lineCounter.linePos(e.pos[0]),
    message: e.message,
  });
  return { doc, lineCounter, errors: doc.errors.map(at), warnings: doc.warnings.map(at) };
}

function startOf(node: unknown): number | undefined {
  return isNode(node) ? node.range?.[0] : undefined;
}

/**
 * The position of the node at `path`; when the path runs out (a missing key),
 * the deepest node that exists. `atKey` points at the last key rather than its value.
 */
export function locate(src: YamlSource, path: readonly PropertyKey[], atKey = false): Position {
  const { doc } = src;
  let node: unknown = doc.contents;
  let offset = startOf(node) ?? 0;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
      if (pair === undefined) break;
      const keyStart = startOf(pair.key);
      const valueStart = startOf(pair.value);
      if ((atKey && i === path.length - 1) || valueStart === undefined) {
        offset = keyStart ?? offset;
        break;
      }
      node = pair.value;
      offset = valueStart;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg];
      const start = startOf(item);
      if (start === undefined) break;
      node = item;
      offset = start;
    } else {
      break;
    }
  }
  return src.lineCounter.linePos(offset);
}
