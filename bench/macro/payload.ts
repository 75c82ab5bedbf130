/** The echo tool's result text: `size` bytes of printable ASCII, built once per size. */
const cache = new Map<number, string>();

export function payload(size: number): string {
  let s = cache.get(size);
  if (s === undefined) {
    const unit = 'The quick brown fox jumps over the lazy dog. 0123456789 ';
    s = unit.repeat(Math.ceil(size / unit.length)).slice(0, size);
    cache.set(size, s);
  }
  return s;
}

/** The echo tool's definition, shared by both upstreams so Warden sees the same schema. */
export const ECHO_TOOL = {
  name: 'echo',
  description: 'Returns `size` bytes of text (benchmark tool).',
  inputSchema: {
    type: 'object',
    properties: {
      size: { type: 'integer', minimum: 1, maximum: 1048576 },
      tag: { type: 'string', maxLength: 64 },
    },
    required: ['size'],
    additionalProperties: false,
  },
} as const;

/** Parse `--name value` from argv. */
export function arg(name: string, fallback?: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i === -1 ? fallback : process.argv[i + 1];
}

/** Tell the parent process (when forked) or stdout that we listen on `port`. */
export function announce(port: number): void {
  if (process.send) process.send({ ready: true, port });
  else process.stdout.write(`listening on ${port}\n`);
}
