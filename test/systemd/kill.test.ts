// SIGKILL of the main process at random moments ×N under load, on systemd
// 252 and 257 (issue 12): Restart=on-failure starts a new process each time
// and systemd's fd store hands back the listening socket and the state page.
// No connect is refused (clients wait in the backlog); the counter never
// goes back (es-probe) and no tick value is logged twice or out of order
// (the journal); no acknowledged write is lost (the state page holds every
// write before its reply); every restart resumed from the store. Reported,
// not asserted: the tick values missing from the journal at each kill (the
// line of the tick in flight, and lines still queued, may be lost).
// N: COUNTS.kills (ES_SYSTEMD_FULL=1: 50).
import assert from 'node:assert/strict';
import { test } from '../harness';
import { type Debian, SYSTEMD_OF } from './harness';
import { COUNTS, report, runLifecycle } from './lifecycle-run';
import { describeTicks } from './tick-lines';

const n = COUNTS.kills;
const bootTimeoutSec = 90 + n * 5;

for (const debian of [12, 13] as Debian[]) {
  test(`Debian ${debian} (systemd ${SYSTEMD_OF[debian]}): ${n} SIGKILLs of the main process at random moments: no refused connect, the counter never back, resumed from the fd store`,
    { timeout: (bootTimeoutSec + 60) * 1000 }, async (t) => {
      const r = await runLifecycle({ debian, scenario: 'kill', timeoutSec: bootTimeoutSec, env: { ES_KILLS: String(n) } });
      const { facts, probe, ticks, where } = r;
      assert.equal(facts.systemd_version, String(SYSTEMD_OF[debian]), where);
      // i victim new ms
      const kills = r.rows('kills.txt');
      assert.equal(kills.length, n, `not every kill was followed by a new main process ${where}`);
      for (const [i, victim, next] of kills) assert.notEqual(next, victim, `kill ${i} ${where}`);
      assert.equal(facts.n_restarts, String(n), where);
      assert.equal(facts.active_state, 'active', where);
      assert.equal(facts.sub_state, 'running', where);
      assert.equal(r.count(/Main process exited, code=killed, status=9\/KILL/), n, where);
      assert.equal(r.count(/Resuming on \/run\/early-service\/early-service\.sock from systemd's fd store: counter \d+/), n,
        `not every restart resumed from the fd store ${where}`);

      assert.equal(probe.refused, 0, `refused connects: ${JSON.stringify(probe.failures)} ${where}`);
      assert.equal(probe.counterWentBack, 0, `the counter went back (max step ${probe.maxBackwardStep}) ${where}`);
      assert.equal(probe.writes.lost, 0, `acknowledged writes lost ${JSON.stringify(probe.writes)} ${where}`);
      assert.deepEqual(ticks.disorder, [], `${describeTicks(ticks)} ${where}`);
      assert.equal(ticks.processChanges.length, n, `one new process per kill: ${describeTicks(ticks)} ${where}`);

      const perKill = ticks.processChanges.map((p) => p.missing ?? '?');
      const measured = perKill.filter((m): m is number => typeof m === 'number');
      const histogram: Record<string, number> = {};
      for (const m of perKill) histogram[String(m)] = (histogram[String(m)] ?? 0) + 1;
      const ms = kills.map((row) => Number(row[3])).sort((a, b) => a - b);
      report(t, r, {
        kills: `${n}: new main process ${kills.length}, NRestarts=${facts.n_restarts}, resumed from the fd store ${r.count(/from systemd's fd store: counter/)}`,
        killToActiveMs: `median ${ms[Math.floor(ms.length / 2)]}, max ${ms.at(-1)}`,
        missingTickValuesPerKill: `${JSON.stringify(histogram)} (value: kills; '?': a write of unknown outcome in between, unmeasured); ` +
          `measured ${measured.length}, total ${measured.reduce((a, b) => a + b, 0)}, max ${Math.max(0, ...measured)}`,
        missingElsewhere: ticks.gaps.filter((g) => !g.newProcess).map((g) => `${g.from}->${g.to}: ${g.missing ?? '?'}`).join(', ') || 'none',
        ticks: `${ticks.lines} lines, disorder ${ticks.disorder.length}`,
      });
    });
}
