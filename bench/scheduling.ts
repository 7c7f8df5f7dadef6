// The ticker's timing under systemd, with and without real-time scheduling
// (npm run bench:scheduling; as root, under `flock -x /tmp/es-quiet.lock`):
// boots the test/systemd containers with early-service installed as a
// package does it, -d from a drop-in and, for the "fifo" rows,
// conf/examples/early-service.service.d/60-realtime.conf installed as an
// integrator would (/etc/systemd/system/early-service.service.d/); while 8
// clients hammer the socket, test/systemd/scenarios/scheduling.sh derives
// every tick's time in the window from the ticker thread's context switches
// (test/systemd/tools/es-page.c "ticks": no observer on a CPU) and measures
// the CPU. The last rows are the starvation checks: the
// ticker spinning through its whole period (--timer-spin = period) under
// SCHED_FIFO, on both CPUs and with the service confined to one
// (CPUAffinity=0). Prints the table, writes bench-results/scheduling.json.
//
//   node dist/bench/scheduling.js [--debian 12|13] [--seconds 10] [--rows 1,2,...]
import path from 'node:path';
import { printTable, writeJson } from './common';
import { type Debian, REPO, runScenario, SYSTEMD_OF } from '../test/systemd/harness';
import { serviceDropin } from '../test/systemd/product-dropin';

const REALTIME = path.join(REPO, 'conf/examples/early-service.service.d/60-realtime.conf');
const ES_PAGE = path.join(REPO, 'test/systemd/tools/es-page.c');

interface Config {
  delayMs: number;
  realtime: boolean;
  /** --timer-spin in µs (default: the product's). */
  spinUs?: number;
  /** CPUAffinity= for the service. */
  cpus?: string;
  /** More [Service] lines. */
  lines?: string[];
  clients: number;
}

const ROWS: Config[] = [
  { delayMs: 1, realtime: false, clients: 8 },
  { delayMs: 1, realtime: true, clients: 8 },
  { delayMs: 0.1, realtime: false, clients: 8 },
  { delayMs: 0.1, realtime: true, clients: 8 },
  // Starvation checks: a FIFO ticker that never sleeps.
  { delayMs: 0.1, realtime: true, spinUs: 100, clients: 8 },
  { delayMs: 0.1, realtime: true, cpus: '0', clients: 8 },
  { delayMs: 0.1, realtime: true, spinUs: 100, cpus: '0', clients: 8 },
  // A bound on a real-time thread that never blocks (RLIMIT_RTTIME): SIGXCPU, then SIGKILL.
  { delayMs: 0.1, realtime: true, lines: ['LimitRTTIME=200ms'], clients: 8 },
  { delayMs: 0.1, realtime: true, spinUs: 100, cpus: '0', lines: ['LimitRTTIME=200ms'], clients: 8 },
];

/** es-page's "ticks" summary. */
interface Ticks {
  ticks: number; expected: number; reconstructed: number; skipped: number; ticker_on_cpu: number; ticker_preempted: number;
  lost_records: number; err_p50_us: number; err_p99_us: number; err_p999_us: number; err_max_us: number;
  late_p50_us: number; late_p99_us: number; late_max_us: number;
}

function argument(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function label(c: Config): string {
  return [c.realtime ? 'fifo 20' : 'other (shipped)', c.spinUs !== undefined ? `spin ${c.spinUs} µs` : '',
    c.cpus !== undefined ? `CPUAffinity=${c.cpus}` : '', ...(c.lines ?? [])].filter(Boolean).join(', ');
}

async function measure(debian: Debian, c: Config, seconds: number): Promise<Record<string, string | number>> {
  const args = ['-d', String(c.delayMs), ...(c.spinUs !== undefined ? ['--timer-spin', String(c.spinUs)] : [])];
  const extra = [...(c.cpus !== undefined ? [`CPUAffinity=${c.cpus}`] : []), ...(c.lines ?? [])];
  const dropins = [{ unit: 'early-service.service', file: serviceDropin('70-bench.conf', args, extra) }];
  if (c.realtime) dropins.push({ unit: 'early-service.service', file: REALTIME });
  const run = await runScenario({
    debian, scenario: 'scheduling', dropins, cPrograms: [ES_PAGE],
    env: { ES_SECONDS: String(seconds), ES_CLIENTS: String(c.clients) },
    timeoutSec: seconds + 150,
  });
  const f = run.facts;
  if (run.exitCode !== 0 || f.sched_rt_runtime_us === undefined) {
    throw new Error(`the run failed (exit ${run.exitCode}; ${run.out})\n${run.harnessOutput}`);
  }
  // No sample: the service was gone before the window ended (a starved main thread misses
  // its watchdog pings; systemd aborts it): the row says so.
  let s: Ticks | undefined;
  try {
    s = run.readJson<Ticks>('ticks.json');
  } catch {
    s = undefined;
  }
  const threads = run.readText('threads.tsv').trim().split('\n').slice(1).map((l) => l.split('\t'))
    .map(([tid, policy, prio, cpu]) => ({ tid, policy: Number(policy), prio: Number(prio), cpu: Number(cpu) }));
  const main = threads.find((t) => t.tid === f.main_tid);
  // The ticker: the busiest thread but the main one (node names every thread "node").
  const ticker = threads.filter((t) => t.tid !== f.main_tid).sort((a, b) => b.cpu - a.cpu)[0];
  const probe = c.clients > 0 ? run.readJson<{ answered: number; failed: number; latencyUs: { p99: number; max: number } }>('probe.json') : undefined;
  const windowTicks = Number(f.counter_last) - Number(f.counter_first) + 1;
  return {
    systemd: SYSTEMD_OF[debian], rate: `${1000 / c.delayMs} Hz`, scheduling: label(c),
    policy: `${main?.policy === 1 ? 'FIFO' : main?.policy === 0 ? 'OTHER' : main?.policy}/${main?.prio}`,
    'ticks / expected': s ? `${s.ticks} / ${Math.round(s.expected)}` : '-', 'achieved %': s ? Number((100 * s.ticks / s.expected).toFixed(2)) : '-',
    'err p50 (µs)': s?.err_p50_us ?? '-', 'err p99 (µs)': s?.err_p99_us ?? '-', 'err p99.9 (µs)': s?.err_p999_us ?? '-',
    'err max (µs)': s?.err_max_us ?? '-', 'late p99 (µs)': s?.late_p99_us ?? '-',
    // The derivation's check: ticks it placed against the counter's advance.
    'derived / counted': s ? `${s.reconstructed} / ${s.ticks}` : '-', 'ticker preempted': s?.ticker_preempted ?? '-',
    'service CPU': Number(threads.reduce((sum, t) => sum + t.cpu, 0).toFixed(2)),
    'ticker CPU': ticker?.cpu ?? NaN, 'main CPU': main?.cpu ?? NaN,
    'journald CPU': Number(f.journald_cpu), 'machine CPU': Number(f.machine_cpu),
    'requests/s': probe ? Math.round(probe.answered / (seconds + 3)) : 0,
    'req p99/max (ms)': probe ? `${probe.latencyUs.p99 / 1000} / ${(probe.latencyUs.max / 1000).toFixed(1)}` : '-',
    'failed req': probe?.failed ?? 0,
    'journal: window ticks / breaks': `${f.journal_window_ticks}/${windowTicks} / ${f.journal_window_breaks}`,
    'main timerslack (ns)': f.main_timerslack_ns ?? '?',
    'rt runtime/period (µs)': `${f.sched_rt_runtime_us}/${f.sched_rt_period_us}`,
    'unit after': `${f.active_state_after ?? '?'}, result ${f.unit_result ?? '?'}, ${f.n_restarts ?? '?'} restarts`,
    run: run.out,
  };
}

async function main(): Promise<void> {
  // es-page records context switches with perf_event_open, which systemd-nspawn's own seccomp
  // filter refuses (EPERM); this turns that filter off (libsystemd's SYSTEMD_SECCOMP, read by
  // nspawn on the host only: the container's systemd still applies the units' SystemCallFilter=).
  process.env.SYSTEMD_SECCOMP = '0';
  const debians: Debian[] = argument('--debian') ? [Number(argument('--debian')) as Debian] : [12, 13];
  const seconds = Number(argument('--seconds') ?? 10);
  const picked = argument('--rows')?.split(',').map((n) => ROWS[Number(n) - 1]!) ?? ROWS;
  const rows: Array<Record<string, string | number>> = [];
  for (const debian of debians) {
    for (const c of picked) {
      process.stdout.write(`systemd ${SYSTEMD_OF[debian]}: -d ${c.delayMs}, ${label(c)}, ${c.clients} clients...\n`);
      const row = await measure(debian, c, seconds);
      rows.push(row);
      const { run: _, ...shown } = row;
      process.stdout.write(`  ${JSON.stringify(shown)}\n`);
    }
  }
  printTable(`Scheduling for timers: ${seconds} s windows, 8 clients hammering (persistent, no pause), `
    + "tick times from the ticker's context switches", rows.map(({ run: _, ...r }) => r));
  process.stdout.write(`\nresults: ${writeJson('scheduling', { seconds, rows })}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
