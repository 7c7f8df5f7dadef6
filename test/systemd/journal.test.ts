// Every tick in the journal, under a real systemd 252 (Debian 12) and 257
// (Debian 13) (npm run test:systemd; as root). early-service is installed and
// enabled as a package does it; a drop-in gives early-service.service its
// tick period, and the unit starts at boot. While 2 clients ask (es-probe),
// the journal (`journalctl -u early-service -o cat`) must hold every tick
// value between the first and the last get_counter, once and in order, and
// in fact every tick from the very first one at boot; journald must not
// have suppressed any of the unit's lines; the main process's RSS stays
// within the bound. And a log queue that overflows (journald
// stopped until the service's stream and then its queue are full) is
// reported in the journal, to the line.
//
// Durations (the full run: ES_JOURNAL_SECONDS_1KHZ=60 ES_JOURNAL_SECONDS_10KHZ=30):
//   ES_JOURNAL_SECONDS_1KHZ    client load at -d 1 (default 10)
//   ES_JOURNAL_SECONDS_10KHZ   client load at -d 0.1 (default 5)
//   ES_JOURNAL_RSS_MAX_MIB     the main process's RSS bound under that load (default 60, issue 14)
//   ES_JOURNAL_DEBIAN          "12", "13" or "12 13" (default both)
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe } from 'node:test';
import { test } from '../harness';
import { type Debian, harnessUnavailable, type ProbeSummary, REPO, runScenario, type ScenarioRun, SYSTEMD_OF } from './harness';
import { serviceDropin } from './product-dropin';
import { sequenceBreaks, tickValues, unaccountedDrops, windowProblem } from './tick-journal';

const SECONDS_1KHZ = Number(process.env.ES_JOURNAL_SECONDS_1KHZ ?? 10);
const SECONDS_10KHZ = Number(process.env.ES_JOURNAL_SECONDS_10KHZ ?? 5);
const RSS_MAX_MIB = Number(process.env.ES_JOURNAL_RSS_MAX_MIB ?? 60);
const DEBIANS = (process.env.ES_JOURNAL_DEBIAN ?? '12 13').split(/\s+/).filter(Boolean).map(Number) as Debian[];
const ES_PAGE = path.join(REPO, 'test/systemd/tools/es-page.c');

function where(run: ScenarioRun): string {
  return `(run: ${run.out}; console: ${run.consoleLog})\n${run.harnessOutput}`;
}

for (const debian of DEBIANS) {
  describe(`Debian ${debian} (systemd ${SYSTEMD_OF[debian]}): every tick in the journal`, () => {
    for (const { delayMs, seconds } of [{ delayMs: '1', seconds: SECONDS_1KHZ }, { delayMs: '0.1', seconds: SECONDS_10KHZ }]) {
      let run: ScenarioRun | undefined;

      test(`-d ${delayMs} from boot, ${seconds} s under 2 clients: every tick once, in order, none suppressed`,
        { timeout: (seconds + 150) * 1000 }, async () => {
          const unavailable = harnessUnavailable();
          assert.equal(unavailable, undefined, unavailable);
          run = await runScenario({
            debian,
            scenario: 'journal',
            dropins: [{ unit: 'early-service.service', file: serviceDropin('70-timer-delay.conf', ['-d', delayMs]) }],
            env: { ES_SECONDS: String(seconds), ES_CLIENTS: '2' },
            timeoutSec: seconds + 120,
          });
          assert.equal(run.exitCode, 0, `the scenario failed or the boot did not end ${where(run)}`);
          const f = run.facts;
          assert.equal(f.systemd_version, String(SYSTEMD_OF[debian]), where(run));
          assert.match(f.exec_start ?? '', new RegExp(` -d ${delayMs.replace('.', '\\.')}$`), `the drop-in did not apply ${where(run)}`);
          assert.equal(f.active_state_after, 'active', where(run));
          assert.equal(f.main_pid_after, f.main_pid, `the main process changed ${where(run)}`);
          assert.match(f.counter_first ?? '', /^\d+$/, `get_counter was not answered ${where(run)}`);
          assert.match(f.counter_last ?? '', /^\d+$/, where(run));
          const first = Number(f.counter_first);
          const last = Number(f.counter_last);
          // The load ran for `seconds` at (nominally) 1 or 10 kHz: a window this
          // long means the journal carried the rate, not a trickle.
          assert.ok(last - first >= seconds * (1000 / Number(delayMs)) * 0.5, `the counter advanced only ${last - first} ${where(run)}`);
          const probe = run.readJson<ProbeSummary>('probe.json');
          assert.ok(probe.answered > 0 && probe.failed === 0, `clients: ${JSON.stringify(probe)}`);

          const journal = run.readText('unit-journal.txt');
          const ticks = tickValues(journal);
          const problem = windowProblem(ticks, first, last);
          assert.equal(problem, undefined, `between the first and last get_counter: ${problem} ${where(run)}`);
          // From the first tick of the boot on (the service started fresh at 0).
          assert.equal(ticks[0], 0, `the journal's first tick is ${ticks[0]}, not the boot's first (0) ${where(run)}`);
          const breaks = sequenceBreaks(ticks);
          assert.deepEqual(breaks, [], `the ticks from boot on are not consecutive ${where(run)}`);
          assert.equal(run.readText('suppressed.txt'), '', `journald suppressed lines ${where(run)}`);
          assert.doesNotMatch(journal, /log lines dropped/, `the service dropped lines ${where(run)}`);
        });

      test(`-d ${delayMs}: the main process's RSS under that load is at most ${RSS_MAX_MIB} MiB`, () => {
        assert.ok(run !== undefined && run.facts.rss_max_kib !== undefined, 'no run (the test above failed to boot)');
        const rssMiB = Number(run.facts.rss_max_kib) / 1024;
        assert.ok(rssMiB > 10, `implausible RSS ${rssMiB} MiB ${where(run)}`);
        assert.ok(rssMiB <= RSS_MAX_MIB, `RSS ${rssMiB.toFixed(1)} MiB (anon ${run.facts.rssanon_kib} KiB, file ${run.facts.rssfile_kib} KiB, `
          + `shmem ${run.facts.rssshmem_kib} KiB at the end; start-up's peak ${run.facts.vmhwm_kib} KiB) ${where(run)}`);
      });
    }

    test('a full log queue is reported in the journal, to the line, never silent', { timeout: 240_000 }, async () => {
      const unavailable = harnessUnavailable();
      assert.equal(unavailable, undefined, unavailable);
      const run = await runScenario({
        debian,
        scenario: 'journal-overflow',
        dropins: [{ unit: 'early-service.service', file: serviceDropin('70-timer-delay.conf', ['-d', '1', '--log-queue', '0.05']) }],
        cPrograms: [ES_PAGE],
        env: { ES_MAX_STOP_SECONDS: '90', ES_FULL_SECONDS: '1' },
        timeoutSec: 220,
      });
      assert.equal(run.exitCode, 0, `the scenario failed or the boot did not end ${where(run)}`);
      const f = run.facts;
      assert.equal(f.wait_full_rc, '0', `the log queue never filled while journald was stopped (${f.journald_stopped_seconds} s) ${where(run)}`);
      // The server answered while its log could not go anywhere.
      assert.match(f.counter_end_of_stop ?? '', /^\d+$/, `get_counter unanswered with journald stopped ${where(run)}`);
      const probe = run.readJson<ProbeSummary>('probe.json');
      assert.ok(probe.answered > 0 && probe.failed === 0, `clients: ${JSON.stringify(probe)}`);
      assert.equal(f.active_state_after, 'active', where(run));
      assert.equal(f.n_restarts, '0', where(run));

      const journal = run.readText('unit-journal.txt');
      const ticks = tickValues(journal);
      const gaps = sequenceBreaks(ticks);
      // The overflow happened: lines are missing ...
      assert.ok(gaps.length > 0, `no tick missing: the queue never overflowed? ${where(run)}`);
      // ... and each gap is reported where it is, with its exact size.
      assert.deepEqual(unaccountedDrops(journal), [], `drops not reported exactly ${where(run)}`);
      // At warning priority: a tick flood at info cannot hide it.
      assert.match(run.readText('unit-warnings.txt'), /log lines dropped: the log queue was full/, where(run));
    });
  });
}
