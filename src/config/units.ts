/** Units used in the config file: sizes and human-readable durations. */

const SIZE_UNITS = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 } as const;

/** Parse "1mb", "512kb", "100b" (1024-based, case-insensitive) or a number of bytes into bytes. */
export function parseSize(input: string | number): number {
  if (typeof input === 'number') {
    if (!Number.isSafeInteger(input) || input < 0) throw new TypeError(`invalid size: ${input}`);
    return input;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)\s*$/i.exec(input);
  if (!m) throw new TypeError(`invalid size "${input}": expected e.g. 100b, 512kb, 1mb`);
  const unit = SIZE_UNITS[m[2]!.toLowerCase() as keyof typeof SIZE_UNITS];
  return Math.round(Number(m[1]) * unit);
}

const DURATION_UNITS: [string, number][] = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1000],
];

/** Milliseconds as the largest exact unit: 900000 → "15m", 1500 → "1500ms". */
export function formatDuration(ms: number): string {
  for (const [unit, size] of DURATION_UNITS) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
