// The journal's tick lines checked against the writes es-probe made: which
// values the service logged, in which order, and how many it should have
// logged but did not.
//
// A tick logs the counter's value, then adds one (src/ipc/shared-state.ts); a
// set_counter V makes the next tick log V, and its reply "previous value P"
// says what the counter was just before. es-probe's writes have one order
// (one in flight at a time) and grow (10^12 + j·10^6), and its writes log
// (`es-probe -l`) has each one's outcome. So between two consecutive tick
// lines a and b, with the applied writes W_1 < … < W_k in (a, b]:
//
//   no write:   the values a+1 … b-1 were ticked but not logged: b - a - 1 missing
//   writes:     (P_1 - a - 1) + Σ_{j>1} (P_j - W_{j-1}) + (b - W_k) missing
//
// and b must be above a (a value logged twice, or the counter going back,
// shows as b <= a, or as a term below zero: a write that found the counter
// at or below a value already logged). A write whose outcome is unknown (the
// connection failed after the request was sent) may or may not have been
// applied: the pair around it is counted as unmeasured, not guessed; except
// when the failure was ECONNRESET: an AF_UNIX stream socket closed with
// unread data makes its peer's next read fail with ECONNRESET (a clean
// close gives EOF: Linux unix_release_sock()), and es-probe has one request
// at a time on a connection, so the server never read that write.

/**
 * One tick line: the message is the counter alone. `pid`: the process that
 * wrote it (journald takes each line's sender from the stream's
 * credentials, so a reload's successor, which inherits the stream, shows
 * its own).
 */
export interface TickLine {
  monoUs: number;
  pid: number;
  value: number;
}

export type WriteRecord =
  | { value: number; outcome: 'acked'; previous: number }
  | { value: number; outcome: 'retry' | 'unsent' | 'unknown'; detail: string };

export interface TickPair {
  /** Index of the later line in the list. */
  index: number;
  from: number;
  to: number;
  /** Tick values ticked but never logged between the two; undefined when a write's outcome is unknown. */
  missing: number | undefined;
  /** The two lines come from different processes (a reload, a restart). */
  newProcess: boolean;
}

export interface TickReport {
  lines: number;
  /** Processes that logged ticks. */
  processes: number;
  firstValue: number | undefined;
  lastValue: number | undefined;
  /** Pairs where the order is broken: a value repeated or going back (to <= from), or inconsistent with a write. */
  disorder: Array<TickPair & { why: string }>;
  /** Pairs with ticks missing (missing > 0) or unmeasured (missing undefined). */
  gaps: TickPair[];
  /** Sum of the measured missing values. */
  missing: number;
  /** Pairs that could not be measured (a write of unknown outcome in between). */
  unmeasured: number;
  /** Each change of process (a reload, a restart), with what went missing there. */
  processChanges: TickPair[];
}

/**
 * Tick lines of `journalctl -u UNIT -o short-monotonic`:
 * `[ 8763.560728] host node[39]: 1234` (systemd's own lines and any other message are skipped).
 */
export function parseTickLines(journal: string): TickLine[] {
  const lines: TickLine[] = [];
  for (const line of journal.split('\n')) {
    const m = /^\[\s*(\d+)\.(\d{6})\] \S+ [^\s[]+\[(\d+)\]: (\d+)$/.exec(line);
    if (m === null || m[3] === '1') continue;
    lines.push({ monoUs: Number(m[1]) * 1e6 + Number(m[2]), pid: Number(m[3]), value: Number(m[4]) });
  }
  return lines;
}

/** es-probe's writes log (`-l FILE`). */
export function parseWritesLog(text: string): WriteRecord[] {
  const writes: WriteRecord[] = [];
  for (const line of text.split('\n')) {
    const [value, outcome, detail = ''] = line.trim().split(/\s+/);
    if (value === undefined || value === '' || outcome === undefined) continue;
    if (outcome === 'acked') writes.push({ value: Number(value), outcome, previous: Number(detail) });
    else if (outcome === 'retry' || outcome === 'unsent' || outcome === 'unknown') writes.push({ value: Number(value), outcome, detail });
    else throw new Error(`writes log: cannot read '${line}'`);
  }
  return writes;
}

export function checkTicks(lines: readonly TickLine[], writes: readonly WriteRecord[]): TickReport {
  // Only writes that may have changed the counter; sorted by value (= their order).
  const applied = writes.filter((w) => w.outcome === 'acked' || (w.outcome === 'unknown' && w.detail !== 'ECONNRESET'))
    .sort((x, y) => x.value - y.value);
  const report: TickReport = {
    lines: lines.length, processes: new Set(lines.map((l) => l.pid)).size,
    firstValue: lines[0]?.value, lastValue: lines.at(-1)?.value,
    disorder: [], gaps: [], missing: 0, unmeasured: 0, processChanges: [],
  };
  let w = 0;
  for (let i = 1; i < lines.length; i++) {
    const a = lines[i - 1]!.value;
    const b = lines[i]!.value;
    const pair: TickPair = { index: i, from: a, to: b, missing: 0, newProcess: lines[i]!.pid !== lines[i - 1]!.pid };
    if (b <= a) {
      report.disorder.push({ ...pair, why: b === a ? 'logged twice' : 'went back' });
      if (pair.newProcess) report.processChanges.push({ ...pair, missing: undefined });
      continue;
    }
    while (w < applied.length && applied[w]!.value <= a) w++;
    const between: WriteRecord[] = [];
    for (let j = w; j < applied.length && applied[j]!.value <= b; j++) between.push(applied[j]!);
    if (between.length === 0) {
      pair.missing = b - a - 1;
    } else if (between.some((x) => x.outcome !== 'acked')) {
      pair.missing = undefined;
    } else {
      let missing = 0;
      let floor = a + 1;
      let why: string | undefined;
      for (const x of between as Array<Extract<WriteRecord, { outcome: 'acked' }>>) {
        // The ticks from `floor` up to the write's previous value were not logged.
        if (x.previous < floor) why ??= `write ${x.value} found the counter at ${x.previous}, below ${floor}`;
        missing += Math.max(0, x.previous - floor);
        floor = x.value;
      }
      missing += b - floor;
      if (why !== undefined) report.disorder.push({ ...pair, why });
      pair.missing = missing;
    }
    if (pair.missing === undefined) report.unmeasured++;
    else report.missing += pair.missing;
    if (pair.missing !== 0) report.gaps.push(pair);
    if (pair.newProcess) report.processChanges.push(pair);
  }
  return report;
}

/** A short text of a report for assertion messages. */
export function describeTicks(report: TickReport): string {
  const show = (p: TickPair): string => `#${p.index} ${p.from}->${p.to}${p.missing === undefined ? ' (unmeasured)' : ` (${p.missing} missing)`}${p.newProcess ? ' [new process]' : ''}`;
  return `${report.lines} tick lines from ${report.processes} processes, values ${report.firstValue}..${report.lastValue}; ` +
    `disorder: ${report.disorder.slice(0, 10).map((d) => `${show(d)} ${d.why}`).join(', ') || 'none'}; ` +
    `missing ${report.missing} (gaps: ${report.gaps.slice(0, 10).map(show).join(', ') || 'none'}); unmeasured ${report.unmeasured}`;
}
