// Smoke test of the real-systemd harness (npm run test:systemd; as root): on
// systemd 252 (Debian 12) and 257 (Debian 13), early-service installed and
// enabled as a package would do it, its root file system unit started at boot
// with no initrd instance: it serves get_counter, the unit is active, and its
// tick lines reach `journalctl -u early-service`.
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { test } from '../harness';
import { harnessUnavailable, type Debian, type ProbeSummary, runScenario, SYSTEMD_OF } from './harness';

for (const debian of [12, 13] as Debian[]) {
  describe(`Debian ${debian} (systemd ${SYSTEMD_OF[debian]})`, () => {
    test('early-service.service starts at boot, serves, and its ticks reach the journal', async () => {
      const unavailable = harnessUnavailable();
      assert.equal(unavailable, undefined, unavailable);
      const run = await runScenario({ debian, scenario: 'smoke', timeoutSec: 90 });
      const where = `(run: ${run.out}; console: ${run.consoleLog})\n${run.harnessOutput}`;
      assert.equal(run.exitCode, 0, `the scenario failed or the boot did not end ${where}`);
      const f = run.facts;
      assert.equal(f.systemd_version, String(SYSTEMD_OF[debian]), where);
      assert.equal(f.active_state, 'active', where);
      assert.equal(f.sub_state, 'running', where);
      assert.equal(f.active_state_after, 'active', where);
      assert.match(f.counter_first, /^\d+$/, `get_counter was not answered ${where}`);
      assert.match(f.counter_last, /^\d+$/, where);
      assert.ok(Number(f.counter_last) > Number(f.counter_first), `the counter did not advance ${where}`);

      const probe = run.readJson<ProbeSummary>('probe.json');
      assert.ok(probe.answered > 100, `few requests answered: ${JSON.stringify(probe)}`);
      assert.equal(probe.failed, 0, `failed requests: ${JSON.stringify(probe.failures)}`);

      // Tick lines (the message is the counter alone) in the unit's journal,
      // including ones logged after the first get_counter: the stream works
      // while the service runs, not only at its start.
      const ticks = run.readText('unit-journal.txt').split('\n').filter((l) => /^\d+$/.test(l)).map(Number);
      assert.ok(ticks.length >= 5, `only ${ticks.length} tick lines in the journal ${where}`);
      assert.ok(Math.max(...ticks) >= Number(f.counter_first), `no tick after the first get_counter in the journal ${where}`);
    });
  });
}
