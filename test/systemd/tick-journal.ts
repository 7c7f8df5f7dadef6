// Reading the ticks back from a unit's journal (`journalctl -u UNIT -o cat`):
// a tick line is the counter's value alone; the service's drop notice says
// how many lines its log queue could not take.

/** The tick values, in journal order. */
export function tickValues(journal: string): number[] {
  return journal.split('\n').filter((l) => /^\d+$/.test(l)).map(Number);
}

/** Places where the sequence of ticks does not go on by exactly one. */
export interface Break {
  /** The tick before the break and the one after it, in journal order. */
  after: number;
  next: number;
}

/** Every place where a tick is not its predecessor + 1 (a gap, a repeat, a step back). */
export function sequenceBreaks(values: number[]): Break[] {
  const breaks: Break[] = [];
  for (let i = 1; i < values.length; i++) {
    if (values[i] !== values[i - 1]! + 1) breaks.push({ after: values[i - 1]!, next: values[i]! });
  }
  return breaks;
}

/**
 * Whether the journal holds every value from `first` to `last` exactly once
 * and in order; if not, what is wrong (for the assertion's message).
 */
export function windowProblem(values: number[], first: number, last: number): string | undefined {
  const inWindow = values.filter((v) => v >= first && v <= last);
  const expected = last - first + 1;
  const misplaced = inWindow.findIndex((v, i) => v !== first + i);
  if (inWindow.length === expected && misplaced < 0) return undefined;
  const present = new Set(inWindow);
  let missing = 0;
  for (let v = first; v <= last; v++) if (!present.has(v)) missing++;
  return `${inWindow.length} tick lines for the ${expected} values ${first}..${last}: ${missing} missing, `
    + `${inWindow.length - present.size} repeated, first out of place at index ${misplaced}`
    + ` (breaks: ${JSON.stringify(sequenceBreaks(inWindow).slice(0, 5))})`;
}

/** The service's "N log lines dropped: the log queue was full" notices, in journal order, with their line index. */
export function dropNotices(journal: string): Array<{ line: number; count: number }> {
  const notices: Array<{ line: number; count: number }> = [];
  journal.split('\n').forEach((l, line) => {
    const m = /^(\d+) log lines dropped: the log queue was full(?: \(.*\))?$/.exec(l);
    if (m) notices.push({ line, count: Number(m[1]) });
  });
  return notices;
}

/**
 * Checks that every gap in the ticks is reported where it happened: the
 * service says "N log lines dropped" just before the first tick line its
 * queue took again, with N the size of the gap. Returns what does not add
 * up: a gap with no notice or a different count (a silent loss), or a
 * notice with no gap after it.
 */
export function unaccountedDrops(journal: string): string[] {
  const problems: string[] = [];
  let previous: number | undefined;
  let reported = 0;
  for (const line of journal.split('\n')) {
    // "N log lines dropped … (M of them warnings or errors)": N - M tick lines.
    const notice = /^(\d+) log lines dropped: the log queue was full(?: \((\d+) of them (?:a warning or an error|warnings or errors)\))?$/.exec(line);
    if (notice) {
      reported += Number(notice[1]) - Number(notice[2] ?? 0);
      continue;
    }
    if (!/^\d+$/.test(line)) continue;
    const value = Number(line);
    const gap = previous === undefined ? 0 : value - previous - 1;
    if (gap !== reported) problems.push(`ticks ${previous} -> ${value}: ${gap} missing, ${reported} reported`);
    previous = value;
    reported = 0;
  }
  if (reported > 0) problems.push(`${reported} reported after the last tick ${previous}`);
  return problems;
}
