// `systemctl restart` ×N and watchdog aborts under load, on systemd 252 and
// 257 (issue 12). The unit gets a drop-in (units/watchdog-fault.conf):
// EARLY_SERVICE_FAULT=ticker-hang and WatchdogSec=2s; `systemctl kill -s
// SIGUSR2 --kill-whom=main` hangs the ticker thread, the pings stop, systemd
// aborts the process (SIGABRT) and Restart= starts a new one. Every new
// process resumes from systemd's fd store: no connect refused, the counter
// never goes back, no tick value logged twice or out of order, none missing
// (a restart stops cleanly; a hung ticker has no tick in flight), no
// acknowledged write lost. N: COUNTS.restarts, COUNTS.watchdogs
// (ES_SYSTEMD_FULL=1: 20 and 5).
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from '../harness';
import { type Debian, REPO, SYSTEMD_OF } from './harness';
import { COUNTS, report, runLifecycle } from './lifecycle-run';
import { describeTicks } from './tick-lines';

const restarts = COUNTS.restarts;
const watchdogs = COUNTS.watchdogs;
const bootTimeoutSec = 90 + restarts * 5 + watchdogs * 10;

for (const debian of [12, 13] as Debian[]) {
  test(`Debian ${debian} (systemd ${SYSTEMD_OF[debian]}): ${restarts} restarts and ${watchdogs} watchdog aborts under load: no refused connect, the counter goes on exactly`,
    { timeout: (bootTimeoutSec + 60) * 1000 }, async (t) => {
      const r = await runLifecycle({
        debian, scenario: 'restart', timeoutSec: bootTimeoutSec,
        dropins: [{ unit: 'early-service.service', file: path.join(REPO, 'test/systemd/units/watchdog-fault.conf') }],
        env: { ES_RESTARTS: String(restarts), ES_WATCHDOGS: String(watchdogs) },
      });
      const { facts, probe, ticks, where } = r;
      assert.equal(facts.systemd_version, String(SYSTEMD_OF[debian]), where);
      assert.equal(facts.watchdog_usec, '2s', where);
      // restart|watchdog i old new ms rc
      const events = r.rows('events.txt');
      assert.equal(events.filter((e) => e[0] === 'restart').length, restarts, where);
      assert.equal(events.filter((e) => e[0] === 'watchdog').length, watchdogs, where);
      for (const [kind, i, old, next, , rc] of events) {
        assert.equal(rc, '0', `${kind} ${i}: the command exited ${rc} ${where}`);
        assert.notEqual(next, old, `${kind} ${i}: the main PID did not change ${where}`);
      }
      assert.equal(r.count(/fault injection: ticker-hang/), watchdogs, where);
      assert.equal(r.count(/Watchdog timeout/), watchdogs, where);
      // Only the watchdog's restarts are automatic ones.
      assert.equal(facts.n_restarts, String(watchdogs), where);
      assert.equal(facts.active_state, 'active', where);
      assert.equal(facts.sub_state, 'running', where);
      assert.equal(r.count(/from systemd's fd store: counter \d+/), restarts + watchdogs, `not every new process resumed from the fd store ${where}`);

      assert.equal(probe.refused, 0, `refused connects: ${JSON.stringify(probe.failures)} ${where}`);
      assert.equal(probe.counterWentBack, 0, `the counter went back (max step ${probe.maxBackwardStep}) ${where}`);
      assert.equal(probe.writes.lost, 0, `acknowledged writes lost ${JSON.stringify(probe.writes)} ${where}`);
      assert.deepEqual(ticks.disorder, [], `${describeTicks(ticks)} ${where}`);
      assert.equal(ticks.missing, 0, `${describeTicks(ticks)} ${where}`);
      assert.equal(ticks.processChanges.length, restarts + watchdogs, describeTicks(ticks));

      const ms = (kind: string): string => {
        const v = events.filter((e) => e[0] === kind).map((e) => Number(e[4])).sort((a, b) => a - b);
        return `median ${v[Math.floor(v.length / 2)]}, max ${v.at(-1)}`;
      };
      report(t, r, {
        restarts: `${restarts}: main PID changed ${events.filter((e) => e[0] === 'restart' && e[2] !== e[3]).length}`,
        restartMs: ms('restart'),
        watchdogs: `${watchdogs}: Watchdog timeout ${r.count(/Watchdog timeout/)}, NRestarts=${facts.n_restarts}`,
        hangToNewMainMs: ms('watchdog'),
        atEachNewProcess: ticks.processChanges.map((p) => p.missing ?? '?').join(' '),
        ticks: `${ticks.lines} lines, missing ${ticks.missing}, disorder ${ticks.disorder.length}, unmeasured ${ticks.unmeasured}`,
      });
    });
}
