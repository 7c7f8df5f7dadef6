// What the lifecycle scenarios (reload, kill, restart, stop-start, upgrade)
// share on the host: their counts, one run of a scenario with its results
// read (the load's summary, the tick lines checked against the writes), and
// the figures each test prints.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { type ProbeSummary, type ScenarioOptions, type ScenarioRun, harnessUnavailable, runScenario } from './harness';
import { type TickReport, checkTicks, parseTickLines, parseWritesLog } from './tick-lines';

/** ES_SYSTEMD_FULL=1: the counts of issue 12's "Done when"; otherwise CI-sized ones. */
export const FULL = process.env.ES_SYSTEMD_FULL === '1';
export const COUNTS = FULL
  ? { reloads: 100, kills: 50, restarts: 20, watchdogs: 5, stopStarts: 5 }
  : { reloads: 10, kills: 10, restarts: 5, watchdogs: 1, stopStarts: 2 };

export interface LifecycleRun {
  run: ScenarioRun;
  facts: Record<string, string>;
  probe: ProbeSummary;
  ticks: TickReport;
  /** The unit's journal (`journalctl -u early-service.service -o short-monotonic`). */
  journal: string;
  /** For assertion messages: where the run's files are. */
  where: string;
  /** The lines of a text file the scenario wrote, split on blanks ("a b | rest": [a, b, "| rest"]). */
  rows(name: string): string[][];
  /** How many lines of the unit's journal match. */
  count(pattern: RegExp): number;
}

/** Runs a scenario that must end with exit status 0, and reads what it left. */
export async function runLifecycle(options: ScenarioOptions): Promise<LifecycleRun> {
  const unavailable = harnessUnavailable();
  assert.equal(unavailable, undefined, unavailable);
  const run = await runScenario(options);
  const log = (() => {
    try {
      return run.readText('scenario.log').split('\n').slice(-30).join('\n');
    } catch {
      return '(no scenario.log)';
    }
  })();
  const where = `(run: ${run.out}; console: ${run.consoleLog})`;
  assert.equal(run.exitCode, 0, `the scenario failed or the boot did not end ${where}\n${run.harnessOutput}\n${log}`);
  const journal = run.readText('unit-journal.txt');
  const ticks = checkTicks(parseTickLines(journal), parseWritesLog(run.readText('writes.log')));
  return {
    run, facts: run.facts, probe: run.readJson<ProbeSummary>('probe.json'), ticks, journal, where,
    rows: (name) => run.readText(name).split('\n').filter((l) => l.trim() !== '').map((l) => {
      const bar = l.indexOf(' | ');
      const head = (bar >= 0 ? l.slice(0, bar) : l).trim().split(/\s+/);
      return bar >= 0 ? [...head, l.slice(bar + 1)] : head;
    }),
    count: (pattern) => journal.split('\n').filter((l) => pattern.test(l)).length,
  };
}

/** The load's figures in one line. */
export function loadFigures(p: ProbeSummary): string {
  return `requests ${p.attempts}, answered ${p.answered}, retried ${p.retried}, failed ${p.failed} ${JSON.stringify(p.failures)}, ` +
    `refused ${p.refused}, resets ${p.resets}, counter went back ${p.counterWentBack}, ` +
    `writes ${p.writes.attempted}/${p.writes.acknowledged} acked/${p.writes.lost} lost, latency p99 ${p.latencyUs.p99} us max ${p.latencyUs.max} us`;
}

/**
 * Prints the figures (a test diagnostic, shown by the runner) and keeps them
 * in the run's directory (figures.json) for the notes.
 */
export function report(t: TestContext, r: LifecycleRun, figures: Record<string, unknown>): void {
  const all = { systemd: r.facts.systemd_version, ...figures, load: loadFigures(r.probe), run: r.run.out };
  fs.writeFileSync(path.join(r.run.out, 'figures.json'), `${JSON.stringify(all, null, 1)}\n`);
  for (const [key, value] of Object.entries(all)) t.diagnostic(`${key}: ${typeof value === 'string' ? value : JSON.stringify(value)}`);
}
