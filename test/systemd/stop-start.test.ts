// `systemctl stop`, 0.5 s, `systemctl start` ×N under load, on systemd 252
// and 257 (issue 12). 252 drops the fd store at a stop: clients are refused
// until the start (measured and reported), and the new process goes on from
// the state file, saved exactly at the stop. 257 keeps it (the product's
// FileDescriptorStorePreserve=yes drop-in, the unit enabled): no connect is
// refused and the new process resumes from the store. On both the counter
// goes on exactly (no tick value twice, none missing) and no acknowledged
// write is lost. N: COUNTS.stopStarts (ES_SYSTEMD_FULL=1: 5).
import assert from 'node:assert/strict';
import { test } from '../harness';
import { type Debian, SYSTEMD_OF } from './harness';
import { COUNTS, report, runLifecycle } from './lifecycle-run';
import { describeTicks } from './tick-lines';

const n = COUNTS.stopStarts;
const bootTimeoutSec = 90 + n * 10;

for (const debian of [12, 13] as Debian[]) {
  const preserves = SYSTEMD_OF[debian] >= 254;
  test(`Debian ${debian} (systemd ${SYSTEMD_OF[debian]}): ${n} stops then starts under load: ${preserves ? 'the fd store is kept, none refused' : 'the store is dropped, the state file carries the counter'}; the counter goes on exactly`,
    { timeout: (bootTimeoutSec + 60) * 1000 }, async (t) => {
      const r = await runLifecycle({ debian, scenario: 'stop-start', timeoutSec: bootTimeoutSec, env: { ES_STOP_STARTS: String(n) } });
      const { facts, probe, ticks, where } = r;
      assert.equal(facts.systemd_version, String(SYSTEMD_OF[debian]), where);
      // i old new refused ms
      const cycles = r.rows('cycles.txt');
      assert.equal(cycles.length, n, where);
      for (const [i, old, next] of cycles) assert.notEqual(next, old, `cycle ${i} ${where}`);
      assert.equal(facts.active_state, 'active', where);
      assert.equal(facts.sub_state, 'running', where);
      const fromStore = r.count(/Resuming on \/run\/early-service\/early-service\.sock from systemd's fd store: counter \d+/);
      const fromFile = r.count(/Resuming from \/var\/lib\/early-service\/counter: counter \d+/);
      if (preserves) {
        assert.equal(facts.preserve, 'yes', where);
        assert.equal(fromStore, n, `not every start resumed from the fd store ${where}`);
        assert.equal(probe.refused, 0, `refused connects: ${JSON.stringify(probe.failures)} ${where}`);
      } else {
        assert.equal(fromFile, n, `not every start resumed from the state file ${where}`);
      }
      assert.equal(probe.counterWentBack, 0, `the counter went back (max step ${probe.maxBackwardStep}) ${where}`);
      assert.equal(probe.writes.lost, 0, `acknowledged writes lost ${JSON.stringify(probe.writes)} ${where}`);
      assert.deepEqual(ticks.disorder, [], `${describeTicks(ticks)} ${where}`);
      assert.equal(ticks.missing, 0, `${describeTicks(ticks)} ${where}`);
      assert.equal(ticks.processChanges.length, n, describeTicks(ticks));

      report(t, r, {
        stopStarts: `${n}: resumed from the fd store ${fromStore}, from the state file ${fromFile}`,
        refusedPerCycle: cycles.map((c) => Number(c[3])).join(' '),
        stopToActiveMs: cycles.map((c) => Number(c[4])).join(' '),
        stopStates: Object.entries(facts).filter(([k]) => /^stop_\d+_state$/.test(k)).map(([, v]) => v).join('; '),
        ticks: `${ticks.lines} lines, missing ${ticks.missing}, disorder ${ticks.disorder.length}, unmeasured ${ticks.unmeasured}`,
      });
    });
}
