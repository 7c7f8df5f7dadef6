// `early-service stress --chaos N`: a fault campaign. While clients hammer
// the socket with reads and writes, N faults (src/stress/chaos-faults.ts) hit
// the service at random moments of every state of every role; after each one
// the campaign waits for the outcome and checks the guarantees, and at the end
// it checks the whole history:
//
//   - exactly one process serves after every fault, and it answers;
//   - processes that are done have ended (no second ticker);
//   - the serving process's threads, descriptors (other than client sockets)
//     and memory stay those of a fresh process;
//   - the state file is valid after every fault;
//   - tick values are consecutive in each process and across processes,
//     except where a fault explains it: after a crash the restart resumes from
//     the state file (back by at most one save interval), after the state file
//     was destroyed and a crash it starts from 0; a jump to a value a client
//     set is a write, not a gap;
//   - no request fails and no acknowledged write is lost, except while the
//     service is down because a fault ended it (a crash, a stop) until the
//     restart serves.
//
// The report counts the faults injected per kind and the violations (each
// with the fault that came before it); the exit status is 1 on any violation.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseState } from '../supervisor/state-file';
import { FAULTS, type Random, random } from './chaos-faults';
import { type Start, World, stateFileText } from './chaos-world';
import { Load, type LoadResult, WRITE_SPACING } from './load';
import { PathPoller } from './path-poller';

export interface ChaosOptions {
  faults: number;
  clients: number;
  timerDelayMs: number;
  seed: number;
  json?: string;
}

const HANDOFF_TIMEOUT_MS = 1000;
const SAVE_INTERVAL_MS = 100;
/** How long after a fault the state file may take to be valid again (a replaced file is rewritten by the next save). */
const STATE_FILE_GRACE_MS = 5000;

export interface ChaosReport {
  seed: number;
  faults: number;
  byKind: Record<string, { injected: number; violations: number }>;
  restarts: number;
  requests: { answered: number; retried: number; failed: number; failedWhileDown: number };
  writes: { acknowledged: number; lost: number; lostWhileDown: number };
  ticks: { logged: number; processes: number; replays: number };
  pathMissing: number;
  violations: Array<{ kind: string; what: string }>;
}

export async function chaos(options: ChaosOptions): Promise<number> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'early-service-chaos-'));
  const socketPath = path.join(dir, 'early-service.sock');
  const stateFile = path.join(dir, 'counter');
  const world = new World(socketPath, stateFile, ['-d', String(options.timerDelayMs), '--state-file', stateFile,
    '--state-save-interval', String(SAVE_INTERVAL_MS), '--handoff-timeout', String(HANDOFF_TIMEOUT_MS)], HANDOFF_TIMEOUT_MS);
  const r: Random = random(options.seed);
  const kinds = Object.keys(FAULTS);
  const byKind: ChaosReport['byKind'] = Object.fromEntries(kinds.map((k) => [k, { injected: 0, violations: 0 }]));
  const started = Date.now();

  await world.begin();
  const poller = new PathPoller(socketPath);
  const load = new Load(socketPath, options.clients);
  // Warm: the thread pool and every descriptor a serving process keeps exist
  // once it has saved a few times and served the clients for a while.
  await sleep(1500);
  await world.checkResources('start');
  try {
    for (let i = 0; i < options.faults; i++) {
      const kind = r.pick(kinds);
      byKind[kind]!.injected++;
      const before = world.violations.length;
      trace(`fault ${i + 1}: ${kind}`);
      await FAULTS[kind]!(world, r);
      await world.settle(kind);
      trace(`settled: pid ${world.server.instance.pid} serves (${world.server.start})`);
      await world.checkResources(kind);
      const valid = (): boolean => {
        const text = stateFileText(stateFile);
        return text !== undefined && parseState(text).kind === 'loaded';
      };
      if (!valid()) {
        // A save comes every SAVE_INTERVAL_MS, one at a time, each fsync()ed
        // twice: on this shared machine one can take a second or more.
        for (const until = Date.now() + STATE_FILE_GRACE_MS; !valid() && Date.now() < until;) await sleep(SAVE_INTERVAL_MS);
        if (!valid()) world.violation(kind, `the state file is not valid ${STATE_FILE_GRACE_MS} ms after the fault settled`);
      }
      byKind[kind]!.violations += world.violations.length - before;
      progress(i + 1, options.faults, world.violations.length, started);
    }
  } catch (error) {
    world.violation('campaign', `the run stopped: ${(error as Error).stack ?? String(error)}`);
  }
  const result = await load.stop();
  await sleep(3 * options.timerDelayMs + 300);
  await poller.stop();
  await world.end();
  fs.rmSync(dir, { recursive: true, force: true });

  const report = analyse(world, result, options, byKind, poller.missingAt, poller.missing);
  process.stdout.write(`${formatChaosReport(report)}\n`);
  if (options.json !== undefined) fs.writeFileSync(options.json, `${JSON.stringify(report, null, 2)}\n`);
  return report.violations.length === 0 ? 0 : 1;
}

/** The history against the guarantees, with what each fault explains. */
export function analyse(world: World, load: LoadResult, options: ChaosOptions,
  byKind: ChaosReport['byKind'], missingAt: number[], missingCount: number): ChaosReport {
  const violations = [...world.violations];
  const inWindow = (at: number): boolean => world.windows.some((w) => at >= w.from && at <= w.to);

  // Ticks, all processes merged in the order they were logged.
  const set = load.attempted;
  const members = world.service;
  const ticks = members.flatMap((m, member) => m.instance.ticks.map((t, index) => ({ ...t, member, index })))
    .sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : a.member - b.member || a.index - b.index));
  // What the service held, and when: a crash's restart may go back to a value of the last save interval.
  const held = [...ticks.map((t) => ({ value: t.value, at: Number(t.at / 1_000_000n) })), ...load.writes.map((w) => ({ value: w.value, at: w.at }))];
  let replays = 0;
  for (let i = 1; i < ticks.length; i++) {
    const previous = ticks[i - 1]!;
    const tick = ticks[i]!;
    if (tick.value === previous.value + 1n || set.has(tick.value)) continue;
    const member = members[tick.member]!;
    const start: Start | undefined = tick.index === 0 ? member.start : undefined;
    if (start === 'after-crash' || start === 'after-lost-file') {
      // It resumed from the state file: a value the service held within a
      // save interval (and slack) before, or one ticked from such a value
      // whose lines were still queued when the crash came (they die with
      // the process). After a replaced file, a save may have rewritten it
      // before the crash.
      const since = Number(previous.at / 1_000_000n) - SAVE_INTERVAL_MS - 2000;
      const unlogged = BigInt(Math.ceil((SAVE_INTERVAL_MS + 2000) / options.timerDelayMs) + 1);
      if (held.some((h) => h.at >= since && h.value <= tick.value && tick.value <= h.value + unlogged)) {
        replays++;
        continue;
      }
    }
    if (start === 'after-lost-file' && tick.value === 0n) continue;
    violations.push({ kind: 'ticks', what: `${previous.value} (pid ${members[previous.member]!.instance.pid}) then ` +
      `${tick.value} (pid ${member.instance.pid}, ${start ?? 'same process'})` });
  }

  // Requests and writes: a failure or a loss is the fault's only while the service was down.
  const failed = load.failureTimes.filter((f) => !inWindow(f.at));
  for (const f of failed.slice(0, 20)) violations.push({ kind: 'requests', what: `at ${f.at}: ${f.kind}: ${f.detail}` });
  if (failed.length > 20) violations.push({ kind: 'requests', what: `${failed.length - 20} more failed requests` });
  const logged = new Set(ticks.map((t) => t.value));
  const found = new Set(load.writes.map((w) => w.previous - (w.previous % WRITE_SPACING)));
  const lost = load.writes.filter((w) => !logged.has(w.value) && !found.has(w.value));
  // A write acknowledged less than a save interval before a crash may be lost
  // with it, and so may one acknowledged by the dying process after SIGKILL
  // was sent and before it took effect.
  const lostByCrash = lost.filter((w) => world.windows.some((win) => win.by === 'crash' &&
    w.at >= win.from - SAVE_INTERVAL_MS - 500 && w.at <= win.from + 1000));
  for (const w of lost.filter((l) => !lostByCrash.includes(l)).slice(0, 10)) {
    violations.push({ kind: 'writes', what: `set_counter ${w.value} acknowledged at ${w.at} and lost` });
  }
  // A fresh start after a crash replaces the dead socket file (unlink, bind): a moment without it.
  const missing = missingAt.filter((at) => !inWindow(at)).length + Math.max(0, missingCount - missingAt.length);
  if (missing > 0) {
    const at = missingAt.filter((t) => !inWindow(t)).slice(0, 5).join(', ');
    violations.push({ kind: 'path', what: `the socket path was missing ${missing} times while the service was up (at ${at})` });
  }

  return {
    seed: options.seed,
    faults: options.faults,
    byKind,
    restarts: world.restarts,
    requests: { answered: load.answered, retried: load.retried, failed: failed.length,
      failedWhileDown: load.failureTimes.length - failed.length },
    writes: { acknowledged: load.writes.length, lost: lost.length - lostByCrash.length, lostWhileDown: lostByCrash.length },
    ticks: { logged: ticks.length, processes: members.length, replays },
    pathMissing: missing,
    violations,
  };
}

export function formatChaosReport(report: ChaosReport): string {
  const width = Math.max(...Object.keys(report.byKind).map((k) => k.length), 20);
  const lines = [`chaos: ${report.faults} faults, seed ${report.seed}`, `  ${'fault'.padEnd(width)}  injected  violations`];
  for (const [kind, { injected, violations }] of Object.entries(report.byKind)) {
    lines.push(`  ${kind.padEnd(width)}  ${String(injected).padStart(8)}  ${String(violations).padStart(10)}`);
  }
  lines.push(
    `  restarts by the campaign (as systemd's Restart=): ${report.restarts}`,
    `  requests answered ${report.requests.answered}, asked to retry ${report.requests.retried}, failed ${report.requests.failed}` +
      ` (and ${report.requests.failedWhileDown} while a fault had the service down)`,
    `  writes acknowledged ${report.writes.acknowledged}, lost ${report.writes.lost}` +
      ` (and ${report.writes.lostWhileDown} in the last save interval before a crash)`,
    `  ticks logged ${report.ticks.logged} by ${report.ticks.processes} processes; resumed from the state file after a crash ${report.ticks.replays} times`,
    `  socket path missing ${report.pathMissing} times (outside the restarts after a crash)`,
  );
  for (const v of report.violations.slice(0, 40)) lines.push(`  VIOLATION after "${v.kind}": ${v.what}`);
  lines.push(report.violations.length === 0 ? 'chaos: OK, no violation' : `chaos: ${report.violations.length} VIOLATIONS`);
  return lines.join('\n');
}

function progress(done: number, total: number, violations: number, started: number): void {
  const tenth = Math.floor((done * 10) / total);
  if (done !== total && Math.floor(((done - 1) * 10) / total) === tenth) return;
  process.stderr.write(`chaos: ${done}/${total} faults, ${violations} violations, ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** EARLY_SERVICE_CHAOS_TRACE=1: what the campaign does, when, on stderr (for replaying a seed). */
function trace(text: string): void {
  if (process.env.EARLY_SERVICE_CHAOS_TRACE === '1') process.stderr.write(`${Date.now()} ${text}\n`);
}
