/** "Did you mean …?": the nearest known word to a misspelt one. */

/** Optimal-string-alignment distance: edits plus adjacent transpositions ("levle" → "level" is 1). */
function editDistance(a: string, b: string): number {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  const d: number[][] = Array.from({ length: x.length + 1 }, (_, i) =>
    Array.from({ length: y.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= x.length; i++) {
    for (let j = 1; j <= y.length; j++) {
      const row = d[i]!;
      const cost = x[i - 1] === y[j - 1] ? 0 : 1;
      row[j] = Math.min(d[i - 1]![j]! + 1, row[j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && x[i - 1] === y[j - 2] && x[i - 2] === y[j - 1]) {
        row[j] = Math.min(row[j]!, d[i - 2]![j - 2]! + 1);
      }
    }
  }
  return d[x.length]![y.length]!;
}

/** The candidate closest to `word`, if it is close enough to be a typo of it. */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  const key = word;
  let best: string | undefined;
  let bestD = Math.max(1, Math.min(3, Math.floor(key.length / 3)));
  for (const k of candidates) {
    const d = editDistance(key, k);
    if (d <= bestD && k !== key) {
      best = k;
      bestD = d;
    }
  }
  return best;
}
