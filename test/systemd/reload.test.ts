// Reload under load, on systemd 252 and 257 (issue 12): `systemctl reload
// early-service` ×N while 8 clients (2 of them writing) hammer the socket.
// Each reload exits 0 and moves the unit's main PID to the successor; the
// clients see no failure of any kind and no refused connect, no
// acknowledged write is lost, the counter never goes back; the journal's
// tick lines are continuous (every value once, in order, a jump only to a
// written value with no tick unlogged: tick-lines.ts) and come from the
// first process and one successor per reload; the unit ends active/running
// with NRestarts=0.
// N: COUNTS.reloads (ES_SYSTEMD_FULL=1: 100).
import assert from 'node:assert/strict';
import { test } from '../harness';
import { type Debian, SYSTEMD_OF } from './harness';
import { COUNTS, report, runLifecycle } from './lifecycle-run';
import { describeTicks } from './tick-lines';

const n = COUNTS.reloads;
const bootTimeoutSec = 90 + n * 4;

for (const debian of [12, 13] as Debian[]) {
  test(`Debian ${debian} (systemd ${SYSTEMD_OF[debian]}): ${n} reloads under load: each exits 0 and moves the main PID; no failure, no lost write, ticks continuous`,
    { timeout: (bootTimeoutSec + 60) * 1000 }, async (t) => {
      const r = await runLifecycle({ debian, scenario: 'reload', timeoutSec: bootTimeoutSec, env: { ES_RELOADS: String(n) } });
      const { facts, probe, ticks, where } = r;
      assert.equal(facts.systemd_version, String(SYSTEMD_OF[debian]), where);

      // i rc ms before after | output
      const reloads = r.rows('reloads.txt');
      assert.equal(reloads.length, n, where);
      let main = Number(facts.main_pid_first);
      for (const [i, rc, , before, after, output] of reloads) {
        assert.equal(rc, '0', `reload ${i} exited ${rc}: ${output} ${where}`);
        assert.equal(Number(before), main, `reload ${i}: the main PID before it ${where}`);
        assert.notEqual(after, before, `reload ${i}: the main PID did not move ${where}`);
        assert.notEqual(after, '0', `reload ${i}: no main PID after it ${where}`);
        main = Number(after);
      }
      assert.equal(facts.active_state, 'active', where);
      assert.equal(facts.sub_state, 'running', where);
      assert.equal(facts.n_restarts, '0', where);
      assert.equal(Number(facts.main_pid), main, where);

      assert.ok(probe.answered > 1000, `few requests answered: ${JSON.stringify(probe)}`);
      assert.equal(probe.failed, 0, `failed requests: ${JSON.stringify(probe.failures)} ${JSON.stringify(probe)} ${where}`);
      assert.equal(probe.refused, 0, where);
      assert.equal(probe.writes.lost, 0, `acknowledged writes lost ${JSON.stringify(probe.writes)} ${where}`);
      assert.ok(probe.writes.acknowledged > 100, `few writes: ${JSON.stringify(probe.writes)}`);
      assert.equal(probe.counterWentBack, 0, `the counter went back (max step ${probe.maxBackwardStep}) ${where}`);

      assert.deepEqual(ticks.disorder, [], `${describeTicks(ticks)} ${where}`);
      assert.equal(ticks.missing, 0, `${describeTicks(ticks)} ${where}`);
      assert.equal(ticks.unmeasured, 0, `${describeTicks(ticks)} ${where}`);
      // The first process and one successor per reload, nothing else (no restart).
      assert.equal(ticks.processes, n + 1, `${describeTicks(ticks)} ${where}`);
      assert.equal(ticks.processChanges.length, n, describeTicks(ticks));
      // The run's span at 10 ticks a second: the check covered the whole load.
      assert.ok(ticks.lines >= n, describeTicks(ticks));

      const ms = reloads.map((row) => Number(row[2])).sort((a, b) => a - b);
      report(t, r, {
        reloads: `${n}: exit 0 ${reloads.filter((row) => row[1] === '0').length}, main PID moved ${reloads.filter((row) => row[3] !== row[4]).length}`,
        reloadMs: `median ${ms[Math.floor(ms.length / 2)]}, max ${ms.at(-1)}`,
        ticks: `${ticks.lines} lines, missing ${ticks.missing}, disorder ${ticks.disorder.length}, unmeasured ${ticks.unmeasured}`,
        unit: `${facts.active_state}/${facts.sub_state} NRestarts=${facts.n_restarts}`,
      });
    });
}
