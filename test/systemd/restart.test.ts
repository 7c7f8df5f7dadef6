// `systemctl restart` ×N and watchdog aborts under load, on systemd 252 and
// 257 (issue 12). The unit gets a drop-in (units/watchdog-fault.conf):
// EARLY_SERVICE_FAULT=ticker-hang and WatchdogSec=2s; `systemctl kill -s
// SIGUSR2 --kill-whom=main` hangs the ticker thread, the pings stop, systemd
// aborts the process (SIGABRT) and Restart= starts a new one. Every new
// process resumes from systemd's fd store: no connect refused, the counter
// never goes back, no tick value logged twice or out of order, none missing
// (a restart stops cleanly; a hung ticker has no tick in flight), no
// acknowledged write lost. Last, a reload then a restart: the process that
// became main through the reload is stopped cleanly (its "Stopped by
// SIGTERM" line, no SIGKILL: systemd does not treat it as an "alien" main
// process). N: COUNTS.restarts, COUNTS.watchdogs (ES_SYSTEMD_FULL=1: 20 and 5).
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
  test(`Debian ${debian} (systemd ${SYSTEMD_OF[debian]}): ${restarts} restarts, ${watchdogs} watchdog aborts, a restart after a reload, under load: no refused connect, the counter goes on exactly`,
    { timeout: (bootTimeoutSec + 60) * 1000 }, async (t) => {
      const r = await runLifecycle({
        debian, scenario: 'restart', timeoutSec: bootTimeoutSec,
        dropins: [{ unit: 'early-service.service', file: path.join(REPO, 'test/systemd/units/watchdog-fault.conf') }],
        env: { ES_RESTARTS: String(restarts), ES_WATCHDOGS: String(watchdogs) },
      });
      const { facts, probe, ticks, where } = r;
      assert.equal(facts.systemd_version, String(SYSTEMD_OF[debian]), where);
      assert.equal(facts.watchdog_usec, '2s', where);
      // restart|watchdog|reload|restart-after-reload i old new ms rc
      const events = r.rows('events.txt');
      assert.equal(events.filter((e) => e[0] === 'restart').length, restarts, where);
      assert.equal(events.filter((e) => e[0] === 'watchdog').length, watchdogs, where);
      assert.equal(events.filter((e) => e[0] === 'reload' || e[0] === 'restart-after-reload').length, 2, where);
      for (const [kind, i, old, next, , rc] of events) {
        assert.equal(rc, '0', `${kind} ${i}: the command exited ${rc} ${where}`);
        assert.notEqual(next, old, `${kind} ${i}: the main PID did not change ${where}`);
      }
      assert.equal(r.count(/fault injection: ticker-hang/), watchdogs, where);
      assert.equal(r.count(/Watchdog timeout/), watchdogs, where);
      // Only the watchdog's restarts are automatic ones (NRestarts itself is reset by the later manual restart).
      assert.equal(r.count(/Scheduled restart job/), watchdogs, where);
      assert.equal(facts.active_state, 'active', where);
      assert.equal(facts.sub_state, 'running', where);
      assert.equal(r.count(/from systemd's fd store: counter \d+/), restarts + watchdogs + 1, `not every new process resumed from the fd store ${where}`);
      // Every restart stopped its process cleanly, the reloaded one included.
      const reloaded = events.find((e) => e[0] === 'reload')![3];
      assert.equal(r.count(new RegExp(`\\[${reloaded}\\]: Stopped by SIGTERM; the counter was \\d+$`)), 1, `the reloaded process ${reloaded} did not stop cleanly ${where}`);
      assert.equal(r.count(/Stopped by SIGTERM; the counter was \d+$/), restarts + 1, where);
      assert.equal(r.count(/not our child|with signal SIGKILL/), 0, where);

      assert.equal(probe.refused, 0, `refused connects: ${JSON.stringify(probe.failures)} ${where}`);
      assert.equal(probe.counterWentBack, 0, `the counter went back (max step ${probe.maxBackwardStep}) ${where}`);
      assert.equal(probe.writes.lost, 0, `acknowledged writes lost ${JSON.stringify(probe.writes)} ${where}`);
      assert.deepEqual(ticks.disorder, [], `${describeTicks(ticks)} ${where}`);
      assert.equal(ticks.missing, 0, `${describeTicks(ticks)} ${where}`);
      assert.equal(ticks.processChanges.length, restarts + watchdogs + 2, describeTicks(ticks));

      const ms = (kind: string): string => {
        const v = events.filter((e) => e[0] === kind).map((e) => Number(e[4])).sort((a, b) => a - b);
        return `median ${v[Math.floor(v.length / 2)]}, max ${v.at(-1)}`;
      };
      report(t, r, {
        restarts: `${restarts}: main PID changed ${events.filter((e) => e[0] === 'restart' && e[2] !== e[3]).length}`,
        restartMs: ms('restart'),
        watchdogs: `${watchdogs}: Watchdog timeout ${r.count(/Watchdog timeout/)}, automatic restarts ${r.count(/Scheduled restart job/)}`,
        hangToNewMainMs: ms('watchdog'),
        restartAfterReload: events.filter((e) => e[0] === 'reload' || e[0] === 'restart-after-reload').map((e) => `${e[0]} ${e[2]}->${e[3]} ${e[4]} ms rc ${e[5]}`).join('; '),
        atEachNewProcess: ticks.processChanges.map((p) => p.missing ?? '?').join(' '),
        ticks: `${ticks.lines} lines, missing ${ticks.missing}, disorder ${ticks.disorder.length}, unmeasured ${ticks.unmeasured}`,
      });
    });
}
