// Where a handoff's time goes, from the two processes' "Handoff timing" lines
// (src/supervisor/timeline.ts), and what clients saw during it: request
// latency inside handoff windows (successor exec -> old process exit) against
// outside them.
import { parseTimeline } from '../supervisor/timeline';

/** One handoff of a run: the two processes' timing lines and the window, in hrtime ns. */
export interface HandoffRecord {
  successorLine: string | undefined;
  donorLine: string | undefined;
  startedAtNs: bigint;
  oldExitedAtNs: bigint;
}

export interface PhaseFigures {
  phase: string;
  p50: number;
  p99: number;
  max: number;
}

/** Requests as the load saw them: when each began (hrtime ns) and how long its answer took (ms). */
export interface RequestTimes {
  startNs: number[];
  latencyMs: number[];
}

export interface WindowLatency {
  requests: number;
  p50: number;
  p99: number;
  max: number;
}

/**
 * The phases of successor exec -> old process exit, in the order they happen.
 * The donor's moments count from the request, which the successor sends at
 * its "asked" moment: the two timelines meet there.
 */
const PHASES: Array<{ phase: string; from: [Side, string] | 'start'; to: [Side, string] }> = [
  { phase: "successor: node's start", from: 'start', to: ['successor', 'node ready'] },
  { phase: 'successor: modules', from: ['successor', 'node ready'], to: ['successor', 'modules loaded'] },
  { phase: 'successor: ticker thread', from: ['successor', 'modules loaded'], to: ['successor', 'ticker ready'] },
  { phase: 'successor: connect, ask', from: ['successor', 'ticker ready'], to: ['successor', 'asked'] },
  { phase: 'donor: settle connections', from: ['donor', 'start'], to: ['donor', 'settled'] },
  { phase: 'donor: wait past the next tick', from: ['donor', 'settled'], to: ['donor', 'past the tick'] },
  { phase: 'donor: freeze, flush its log', from: ['donor', 'past the tick'], to: ['donor', 'log flushed'] },
  { phase: 'transfer (records sent)', from: ['donor', 'log flushed'], to: ['donor', 'sent'] },
  { phase: 'commit (donor hears it)', from: ['donor', 'sent'], to: ['donor', 'committed'] },
  { phase: 'donor: drain its clients and stop its ticker (at once)', from: ['donor', 'committed'], to: ['donor', 'ended'] },
];

type Side = 'successor' | 'donor';

/** Per phase: p50, p99, max over the handoffs whose lines were both found; plus the total and the rest. */
export function handoffPhases(records: HandoffRecord[]): PhaseFigures[] {
  const columns = new Map<string, number[]>();
  const push = (phase: string, ms: number): void => {
    if (!columns.has(phase)) columns.set(phase, []);
    columns.get(phase)!.push(ms);
  };
  for (const record of records) {
    if (record.successorLine === undefined || record.donorLine === undefined) continue;
    const successor = parseTimeline(record.successorLine);
    const donor = parseTimeline(record.donorLine);
    const asked = successor.get('asked');
    if (asked === undefined) continue;
    // Both on the successor's clock (ms since its start): the donor's origin is "asked".
    const at = ([side, moment]: [Side, string]): number | undefined => {
      if (side === 'successor') return successor.get(moment);
      if (moment === 'start') return asked;
      const value = donor.get(moment);
      return value === undefined ? undefined : asked + value;
    };
    let known = 0;
    for (const { phase, from, to } of PHASES) {
      const end = at(to);
      const begin = from === 'start' ? 0 : at(from);
      if (end === undefined || begin === undefined) continue;
      push(phase, end - begin);
      known += end - begin;
    }
    const total = Number(record.oldExitedAtNs - record.startedAtNs) / 1e6;
    push('the rest: exec until node\'s clock, old process\'s last lines and exit', total - known);
    push('total: successor exec -> old process exit', total);
  }
  return [...columns.entries()].map(([phase, values]) => ({ phase, ...figures(values) }));
}

/** Latency of the requests that overlapped a handoff window, and of the others. */
export function latencyByWindow(times: RequestTimes, records: HandoffRecord[]): { inside: WindowLatency; outside: WindowLatency } {
  const windows = records.map((r) => [Number(r.startedAtNs), Number(r.oldExitedAtNs)] as const).sort((a, b) => a[0] - b[0]);
  const inside: number[] = [];
  const outside: number[] = [];
  for (let i = 0; i < times.startNs.length; i++) {
    const start = times.startNs[i];
    const end = start + times.latencyMs[i] * 1e6;
    const overlaps = windows.some(([from, to]) => start <= to && end >= from);
    (overlaps ? inside : outside).push(times.latencyMs[i]);
  }
  return { inside: { requests: inside.length, ...figures(inside) }, outside: { requests: outside.length, ...figures(outside) } };
}

function figures(values: number[]): { p50: number; p99: number; max: number } {
  const sorted = Float64Array.from(values).sort();
  const at = (p: number): number => (sorted.length === 0 ? NaN : round(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]));
  return { p50: at(0.5), p99: at(0.99), max: sorted.length === 0 ? NaN : round(sorted[sorted.length - 1]) };
}

const round = (ms: number): number => Math.round(ms * 100) / 100;
