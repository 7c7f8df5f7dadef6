// What a stress run measured, and which of it breaks a guarantee.
import type { ProcessSample, Tick } from './instance';
import { type HandoffRecord, type PhaseFigures, type WindowLatency, handoffPhases, latencyByWindow } from './handoff-phases';
import { type LoadResult, WRITE_SPACING } from './load';

export interface RunData {
  handoffs: number;
  kills: number;
  timerDelayMs: number;
  /** The tick sequence of each process, in the order they served. */
  ticksByProcess: Tick[][];
  load: LoadResult;
  pathPolls: number;
  pathMissing: number;
  oldExits: Array<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Successor exec -> old process exit, per handoff, in ms. */
  latenciesMs: number[];
  /** Each handoff's window and its processes' timing lines. */
  handoffRecords: HandoffRecord[];
  /** A fresh instance and the last one, both idle (no client connected). */
  fresh: ProcessSample;
  last: ProcessSample;
}

export interface Report {
  handoffs: number;
  successorsKilled: number;
  requests: { answered: number; retried: number; failed: Record<string, number>; failureSamples: string[] };
  writes: { acknowledged: number; lost: number; lostSamples: string[] };
  ticks: { logged: number; gaps: number; repeated: number; samples: string[]; longestIntervalMs: number;
    longestAcrossHandoffMs: number; acrossHandoffP99Ms: number; acrossHandoffOver110Percent: number; timerDelayMs: number };
  path: { polls: number; missing: number };
  oldProcesses: { exited: number; notZero: number };
  descriptors: { fresh: number; last: number };
  threads: { fresh: number; last: number };
  rssKiB: { fresh: number; last: number };
  handoffLatencyMs: { p50: number; p99: number; max: number };
  /** Where the time of successor exec -> old process exit goes (see handoff-phases.ts). */
  handoffPhasesMs: PhaseFigures[];
  /** Answered requests that overlapped a handoff window, and the others. */
  requestLatencyMs: { inside: WindowLatency; outside: WindowLatency };
  violations: string[];
}

export function analyse(data: RunData): Report {
  const ticks = data.ticksByProcess.flat();
  const set = data.load.attempted;
  let gaps = 0;
  let repeated = 0;
  const samples: string[] = [];
  let longest = 0n;
  let longestAcross = 0n;
  const across: bigint[] = [];
  let index = 0;
  for (const [p, processTicks] of data.ticksByProcess.entries()) {
    for (const [i, tick] of processTicks.entries()) {
      if (index > 0) {
        const previous = ticks[index - 1];
        const interval = tick.at - previous.at;
        if (interval > longest) longest = interval;
        if (i === 0 && p > 0) {
          across.push(interval);
          if (interval > longestAcross) longestAcross = interval;
        }
        // Each value follows the one before, unless a client set it.
        if (tick.value !== previous.value + 1n && !set.has(tick.value)) {
          if (tick.value > previous.value) gaps++;
          else repeated++;
          if (samples.length < 10) samples.push(`${previous.value} -> ${tick.value} (process ${p})`);
        }
      }
      index++;
    }
  }

  // An acknowledged write is kept if a tick logged it, or if a later write
  // found it (plus a few ticks) as its "previous value".
  const logged = new Set(ticks.map((t) => t.value));
  const found = new Set(data.load.writes.map((w) => w.previous - (w.previous % WRITE_SPACING)));
  const lost = data.load.writes.filter((w) => !logged.has(w.value) && !found.has(w.value));

  const failed = Object.fromEntries(data.load.failures);
  const failedCount = [...data.load.failures.values()].reduce((a, b) => a + b, 0);
  const notZero = data.oldExits.filter((e) => e.code !== 0).length;
  const sorted = [...data.latenciesMs].sort((a, b) => a - b);
  const percentile = (p: number): number => (sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]);

  const violations: string[] = [];
  if (failedCount > 0) violations.push(`${failedCount} failed requests`);
  if (lost.length > 0) violations.push(`${lost.length} acknowledged writes lost`);
  if (gaps + repeated > 0) violations.push(`${gaps} tick gaps and ${repeated} repeated ticks`);
  if (data.pathMissing > 0) violations.push(`the socket path was missing ${data.pathMissing} times`);
  if (notZero > 0) violations.push(`${notZero} old processes did not exit 0`);
  if (data.last.fds > data.fresh.fds) violations.push(`descriptors grew from ${data.fresh.fds} to ${data.last.fds}`);
  if (data.last.threads > data.fresh.threads) violations.push(`threads grew from ${data.fresh.threads} to ${data.last.threads}`);
  if (data.oldExits.length !== data.handoffs) violations.push(`${data.oldExits.length} of ${data.handoffs} handoffs happened`);

  return {
    handoffs: data.handoffs,
    successorsKilled: data.kills,
    requests: { answered: data.load.answered, retried: data.load.retried, failed, failureSamples: data.load.failureSamples },
    writes: { acknowledged: data.load.writes.length, lost: lost.length, lostSamples: lost.slice(0, 10).map((w) => String(w.value)) },
    ticks: { logged: ticks.length, gaps, repeated, samples, longestIntervalMs: toMs(longest),
      longestAcrossHandoffMs: toMs(longestAcross), acrossHandoffP99Ms: toMs(percentileOf(across, 0.99)),
      acrossHandoffOver110Percent: across.filter((ns) => ns * 10n > BigInt(Math.round(data.timerDelayMs * 1e6)) * 11n).length,
      timerDelayMs: data.timerDelayMs },
    path: { polls: data.pathPolls, missing: data.pathMissing },
    oldProcesses: { exited: data.oldExits.length, notZero },
    descriptors: { fresh: data.fresh.fds, last: data.last.fds },
    threads: { fresh: data.fresh.threads, last: data.last.threads },
    rssKiB: { fresh: data.fresh.rssKiB, last: data.last.rssKiB },
    handoffLatencyMs: { p50: percentile(0.5), p99: percentile(0.99), max: sorted[sorted.length - 1] ?? 0 },
    handoffPhasesMs: handoffPhases(data.handoffRecords),
    requestLatencyMs: latencyByWindow(data.load.times, data.handoffRecords),
    violations,
  };
}

const fixed = (ms: number): string => ms.toFixed(1).padStart(9);

const toMs = (ns: bigint): number => Math.round(Number(ns) / 1e4) / 100;

function percentileOf(values: bigint[], p: number): bigint {
  const sorted = [...values].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return sorted.length === 0 ? 0n : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

export function formatReport(report: Report): string {
  const failed = Object.entries(report.requests.failed).map(([k, v]) => `${k} ${v}`).join(', ') || '0';
  const rows: Array<[string, string]> = [
    ['handoffs', `${report.handoffs} (successors killed on purpose: ${report.successorsKilled})`],
    ['requests answered', String(report.requests.answered)],
    ['requests asked to retry', String(report.requests.retried)],
    ['requests failed', failed],
    ['writes acknowledged / lost', `${report.writes.acknowledged} / ${report.writes.lost}`],
    ['ticks logged', String(report.ticks.logged)],
    ['tick gaps / repeated', `${report.ticks.gaps} / ${report.ticks.repeated}`],
    ['longest tick interval', `${report.ticks.longestIntervalMs} ms (period ${report.ticks.timerDelayMs} ms)`],
    ['interval across a handoff', `p99 ${report.ticks.acrossHandoffP99Ms} ms, max ${report.ticks.longestAcrossHandoffMs} ms, ` +
      `${report.ticks.acrossHandoffOver110Percent} over 1.1 periods`],
    ['socket path missing', `${report.path.missing} of ${report.path.polls} polls`],
    ['old processes exited / not 0', `${report.oldProcesses.exited} / ${report.oldProcesses.notZero}`],
    ['descriptors fresh / last', `${report.descriptors.fresh} / ${report.descriptors.last}`],
    ['threads fresh / last', `${report.threads.fresh} / ${report.threads.last}`],
    ['RSS fresh / last', `${(report.rssKiB.fresh / 1024).toFixed(1)} / ${(report.rssKiB.last / 1024).toFixed(1)} MiB`],
    ['handoff latency p50 / p99 / max', `${report.handoffLatencyMs.p50.toFixed(1)} / ${report.handoffLatencyMs.p99.toFixed(1)} / ` +
      `${report.handoffLatencyMs.max.toFixed(1)} ms (successor exec -> old exit)`],
    ...(['inside', 'outside'] as const).map((where): [string, string] => {
      const l = report.requestLatencyMs[where];
      return [`request latency ${where} handoffs`, `p50 ${l.p50} / p99 ${l.p99} / max ${l.max} ms (${l.requests} requests)`];
    }),
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  const lines = rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`);
  if (report.handoffPhasesMs.length > 0) {
    lines.push('  where a handoff\'s time goes (ms)                                   p50      p99      max');
    for (const { phase, p50, p99, max } of report.handoffPhasesMs) {
      lines.push(`    ${phase.padEnd(66)}${fixed(p50)}${fixed(p99)}${fixed(max)}`);
    }
  }
  for (const sample of [...report.requests.failureSamples, ...report.ticks.samples]) lines.push(`    ${sample}`);
  lines.push(report.violations.length === 0 ? 'stress: OK, no violation' : `stress: VIOLATIONS: ${report.violations.join('; ')}`);
  return lines.join('\n');
}
