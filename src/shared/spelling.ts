/**
 * Edit distance where an insertion, a deletion, a substitution or a swap of two neighbours (`histroy`) each
 * cost one (optimal string alignment).
 */
export function editDistance(a: string, b: string): number {
  const rows: number[][] = [Array.from({ length: b.length + 1 }, (_, j) => j)];
  for (let i = 1; i <= a.length; i += 1) {
    const row = [i];
    for (let j = 1; j <= b.length; j += 1) {
      const above = rows[i - 1] as number[];
      let best = Math.min(
        (above[j] as number) + 1,
        (row[j - 1] as number) + 1,
        (above[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, ((rows[i - 2] as number[])[j - 2] as number) + 1);
      }
      row.push(best);
    }
    rows.push(row);
  }
  return (rows[a.length] as number[])[b.length] as number;
}

/**
 * The candidates a slip of the keyboard away from `word` (at most a quarter of its length in edits, at least
 * one), closest first, compared as `normalize` makes them.
 */
export function closeSpellings(
  word: string,
  candidates: string[],
  normalize: (text: string) => string = (text) => text,
): string[] {
  const wanted = normalize(word);
  return candidates
    .map((name) => ({ name, distance: editDistance(wanted, normalize(name)) }))
    .filter(({ distance }) => distance <= Math.max(1, Math.floor(wanted.length / 4)))
    .sort((a, b) => a.distance - b.distance || a.name.localeCompare(b.name))
    .map(({ name }) => name);
}
