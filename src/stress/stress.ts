// `early-service stress` (or `npm run stress -- …`): chained handoffs under
// client load, with every guarantee checked. Starts an instance on a socket in
// a temporary directory, hands it over N times in a row while clients hammer
// it, optionally kills successors at a chosen phase on the way, and ends with
// a report; the exit status is 1 if any guarantee was broken.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { BUNDLED } from '../ipc/bundled';
import { chaos } from './chaos';
import type { HandoffRecord } from './handoff-phases';
import { Instance } from './instance';
import { Load } from './load';
import { PathPoller } from './path-poller';
import { waitUntilStopped } from '../ipc/proc';
import { analyse, formatReport } from './report';

interface Options {
  handoffs: number;
  clients: number;
  timerDelayMs: number;
  killAt?: 'before-request' | 'after-receive';
  killEvery: number;
  /** Between two handoffs, so that requests outside handoff windows are measured too. */
  pause: number;
  json?: string;
}

const positive = (max: number) => (text: string): number => {
  const value = Number(text);
  if (!/^[0-9]+$/.test(text) || value < 1 || value > max) throw new InvalidArgumentError(`expected a whole number from 1 to ${max}.`);
  return value;
};

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export async function stress(options: Options): Promise<number> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'early-service-stress-'));
  const socketPath = path.join(dir, 'early-service.sock');
  const delay = ['-d', String(options.timerDelayMs)];
  const takeover = ['-s', socketPath, '--takeover_existing_socket', '--takeover-required', ...delay];
  const progress = new Progress(options.handoffs);

  const first = new Instance(['-s', socketPath, ...delay]);
  await first.waitForLine(/^Listening on UNIX socket /);
  await sleep(200);
  const fresh = first.sample();
  const poller = new PathPoller(socketPath);
  const load = new Load(socketPath, options.clients, true);
  await sleep(200);

  const instances = [first];
  const oldExits: Array<{ code: number | null; signal: NodeJS.Signals | null }> = [];
  const latenciesMs: number[] = [];
  const handoffRecords: HandoffRecord[] = [];
  let kills = 0;
  let error: Error | undefined;
  try {
    for (let i = 0; i < options.handoffs; i++) {
      const current = instances[instances.length - 1];
      if (options.killAt !== undefined && (i + 1) % options.killEvery === 0) {
        await killSuccessor(current, takeover, options.killAt);
        kills++;
      }
      const next = new Instance(takeover);
      await next.waitForLine(/^Took over from pid /);
      oldExits.push(await current.exited);
      latenciesMs.push(Number(current.exitedAt! - next.startedAt) / 1e6);
      handoffRecords.push({
        successorLine: timingOf(next.lines, 'Handoff timing (ms since this process started): '),
        donorLine: timingOf(current.lines, 'Handoff timing (ms since the request): '),
        startedAtNs: next.startedAt, oldExitedAtNs: current.exitedAt!,
      });
      instances.push(next);
      progress.update(i + 1, load.requests, load.failed);
      if (options.pause > 0) await sleep(options.pause);
    }
  } catch (caught) {
    error = caught as Error;
  }
  const result = await load.stop();
  // Let the last writes reach a tick, and the last process settle.
  await sleep(3 * options.timerDelayMs + 300);
  const last = instances[instances.length - 1];
  const lastSample = last.sample();
  await poller.stop();
  last.child.kill('SIGTERM');
  await last.exited;
  fs.rmSync(dir, { recursive: true, force: true });
  progress.done();

  const report = analyse({
    handoffs: options.handoffs, kills, timerDelayMs: options.timerDelayMs,
    ticksByProcess: instances.map((i) => i.ticks), load: result,
    pathPolls: poller.polls, pathMissing: poller.missing, oldExits, latenciesMs, handoffRecords, fresh, last: lastSample,
  });
  if (error !== undefined) report.violations.push(`the run stopped: ${error.message}`);
  process.stdout.write(`${formatReport(report)}\n`);
  if (options.json !== undefined) fs.writeFileSync(options.json, `${JSON.stringify(report, null, 2)}\n`);
  return report.violations.length === 0 ? 0 : 1;
}

/** Starts a successor that stops itself at `phase`, kills it there, and waits for the old process to recover. */
async function killSuccessor(current: Instance, takeover: string[], phase: 'before-request' | 'after-receive'): Promise<void> {
  const rollbacks = current.lines.filter((l) => l.startsWith('handoff rolled back')).length;
  const victim = new Instance(takeover, { env: { EARLY_SERVICE_FAULT: `stop-${phase}` } });
  await victim.waitForLine(/^fault injection: /);
  // Killed where it stopped itself, not on its way there.
  await waitUntilStopped(victim.pid);
  victim.child.kill('SIGKILL');
  await victim.exited;
  if (phase === 'after-receive') {
    while (current.lines.filter((l) => l.startsWith('handoff rolled back')).length === rollbacks) {
      await current.waitForLine(/^handoff rolled back/, 15_000);
      await sleep(5);
    }
  }
}

/** One line per tenth of the run (or a live line on a terminal). */
class Progress {
  private readonly started = Date.now();
  private readonly tty = process.stderr.isTTY === true;
  private lastTenth = -1;

  constructor(private readonly total: number) {}

  update(done: number, requests: number, failed: number): void {
    const tenth = Math.floor((done * 10) / this.total);
    if (!this.tty && tenth === this.lastTenth) return;
    this.lastTenth = tenth;
    const seconds = ((Date.now() - this.started) / 1000).toFixed(1);
    const line = `stress: ${done}/${this.total} handoffs, ${requests} requests, ${failed} failed, ${seconds} s`;
    process.stderr.write(this.tty ? `\r${line}` : `${line}\n`);
  }

  done(): void {
    if (this.tty) process.stderr.write('\n');
  }
}

export async function main(args: readonly string[]): Promise<void> {
  const program = new Command('early-service stress')
    .description('Chained handoffs under client load; reports every guarantee and exits 1 on a violation.')
    .option('-n, --handoffs <n>', 'handoffs in a row', positive(1_000_000), 100)
    .option('-c, --clients <n>', 'clients: even ones persistent, odd ones a connection per request; i % 4 >= 2 write',
      positive(1000), 8)
    .option('-d, --timer-delay-ms <ms>', 'tick period of the instances', positive(60_000), 10)
    .addOption(new Option('--kill-at <phase>', 'SIGKILL a successor at this phase of its takeover')
      .choices(['before-request', 'after-receive']))
    .option('--kill-every <k>', 'with --kill-at: every k-th handoff', positive(1_000_000), 10)
    .option('--pause <ms>', 'wait this long after each handoff (requests outside handoffs are measured too)',
      (text: string) => (text === '0' ? 0 : positive(600_000)(text)), 0)
    .option('--json <file>', 'also write the report as JSON')
    .option('--chaos <faults>', 'instead of chained handoffs: a fault campaign of this many faults at random '
      + 'moments (signals to donors and successors, zombies, foreign predecessors, hostile clients, EMFILE, '
      + 'a damaged state file, crashes and restarts), with every guarantee checked', positive(1_000_000))
    .option('--seed <n>', 'with --chaos: the random seed (a campaign replays with its seed)', positive(2 ** 31), Date.now() % 2 ** 31)
    .allowExcessArguments(false);
  program.parse([...args], { from: 'user' });
  const options = program.opts<Options & { chaos?: number; seed: number }>();
  if (options.chaos !== undefined) {
    process.exitCode = await chaos({ faults: options.chaos, clients: options.clients, timerDelayMs: options.timerDelayMs,
      seed: options.seed, json: options.json });
    return;
  }
  process.exitCode = await stress(options);
}

// Run directly (`node dist/src/stress/stress.js`, npm run stress). In the
// bundle every module is the main module, and main.ts calls main() itself.
if (!BUNDLED && require.main === module) void main(process.argv.slice(2));

/** The moments of a "Handoff timing (…): a 1.0, b 2.0" line, without its prefix. */
function timingOf(lines: string[], prefix: string): string | undefined {
  return lines.find((l) => l.startsWith(prefix))?.slice(prefix.length);
}
