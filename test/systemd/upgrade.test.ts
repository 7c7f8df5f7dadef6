// An RPM-style upgrade and downgrade under load, on systemd 252 and 257
// (issue 12). Two RPMs of this tree with different versions (upgrade-rpms.ts;
// scripts/create-rpm.sh, conf/early-service.spec); the container boots
// without the product, the older is installed with `rpm -i --nodeps` and the
// unit started; under load `rpm -U --nodeps` to the newer (the old
// package's %postun reloads the service) and `rpm -U --oldpackage --nodeps`
// back. Each time: rpm exits 0, the main PID moves and the old process is
// gone, the installed version is the expected one and the running process
// was loaded from that install (its addon mapping is the installed file);
// the reload did it, not a restart; the clients see no failure of any kind,
// no refused connect, no lost write; the counter never goes back and its
// tick lines are continuous.
import assert from 'node:assert/strict';
import { test } from '../harness';
import { type Debian, SYSTEMD_OF, harnessCacheDir } from './harness';
import { report, runLifecycle } from './lifecycle-run';
import { describeTicks } from './tick-lines';
import { type UpgradeRpm, upgradeRpms } from './upgrade-rpms';

const RPM_DIR = '/usr/lib/es-systemd-test/rpms';
let rpms: Promise<{ old: UpgradeRpm; new: UpgradeRpm; built: boolean }> | undefined;

for (const debian of [12, 13] as Debian[]) {
  test(`Debian ${debian} (systemd ${SYSTEMD_OF[debian]}): an RPM upgrade and downgrade under load reload the service: no failure, the new (then old) program runs`,
    // Building the two RPMs (the first test on a tree) takes minutes.
    { timeout: 900_000 }, async (t) => {
      rpms ??= upgradeRpms(harnessCacheDir());
      const { old, new: next, built } = await rpms;
      t.diagnostic(`RPMs ${built ? 'built' : 'cached'}: ${old.file}, ${next.file}`);
      const r = await runLifecycle({
        debian, scenario: 'upgrade', timeoutSec: 180, product: false,
        files: [{ src: old.file, dest: `${RPM_DIR}/old.rpm` }, { src: next.file, dest: `${RPM_DIR}/new.rpm` }],
        env: { ES_RPMS: RPM_DIR },
      });
      const { facts: f, probe, ticks, where } = r;
      assert.equal(f.systemd_version, String(SYSTEMD_OF[debian]), where);
      assert.equal(f.install_rc, '0', `rpm -i: ${r.run.readText('install.log')} ${where}`);
      assert.equal(f.upgrade_rc, '0', `rpm -U: ${r.run.readText('upgrade.log')} ${where}`);
      assert.equal(f.downgrade_rc, '0', `rpm -U --oldpackage: ${r.run.readText('downgrade.log')} ${where}`);

      const steps: Array<[string, UpgradeRpm]> = [['installed', old], ['upgraded', next], ['downgraded', old]];
      let previous: { main: string; inode: string } | undefined;
      for (const [step, rpm] of steps) {
        assert.equal(f[`${step}_state`], 'active/running', `${step} ${where}`);
        assert.equal(f[`${step}_package`], `early-service-${rpm.rpmVersion}-1.x86_64`, `${step} ${where}`);
        assert.equal(f[`${step}_version`], rpm.version, `${step}: early-service -V ${where}`);
        assert.match(f[`${step}_cmdline`]!, /^\/usr\/bin\/node (--\S+ )*\/usr\/lib\/early-service\/early-service\.js /, `${step} ${where}`);
        // The running process mapped the addon of this install: the same inode, not a deleted one.
        const program = /^mapped=(\d+) installed=(\d+) deleted=(yes|no)$/.exec(f[`${step}_program`] ?? '');
        assert.ok(program, `${step}: ${f[`${step}_program`]} ${where}`);
        assert.equal(program[1], program[2], `${step}: the running process is not the installed program's ${where}`);
        assert.equal(program[3], 'no', `${step} ${where}`);
        if (previous !== undefined) {
          assert.notEqual(f[`${step}_main_pid`], previous.main, `${step}: the main PID did not move ${where}`);
          assert.notEqual(program[2], previous.inode, `${step}: rpm did not replace the addon ${where}`);
        }
        previous = { main: f[`${step}_main_pid`]!, inode: program[2]! };
      }
      assert.equal(f.installed_main_alive_after_upgrade, 'no', where);
      assert.equal(f.upgraded_main_alive_after_downgrade, 'no', where);
      // Reloaded, not restarted (%postun falls back to try-restart only if the reload fails).
      assert.equal(r.count(/Reloading: started pid \d+ to take over/), 2, where);
      assert.equal(r.count(/Stopped by SIG|Stopping early-service/), 0, `a stop or restart happened ${where}`);
      assert.equal(f.n_restarts, '0', where);

      assert.equal(probe.failed, 0, `failed requests: ${JSON.stringify(probe.failures)} ${where}`);
      assert.equal(probe.refused, 0, where);
      assert.equal(probe.writes.lost, 0, `acknowledged writes lost ${JSON.stringify(probe.writes)} ${where}`);
      assert.equal(probe.counterWentBack, 0, `the counter went back (max step ${probe.maxBackwardStep}) ${where}`);
      assert.deepEqual(ticks.disorder, [], `${describeTicks(ticks)} ${where}`);
      assert.equal(ticks.missing, 0, `${describeTicks(ticks)} ${where}`);
      assert.equal(ticks.unmeasured, 0, `${describeTicks(ticks)} ${where}`);
      assert.equal(ticks.processChanges.length, 2, describeTicks(ticks));

      report(t, r, {
        versions: `${old.version} -> ${next.version} -> ${old.version}`,
        enabledByPost: f.enabled_after_install,
        upgrade: `rpm -U ${f.upgrade_ms} ms, main PID ${f.installed_main_pid} -> ${f.upgraded_main_pid}, ${f.upgraded_version}, ${f.upgraded_program}`,
        downgrade: `rpm -U --oldpackage ${f.downgrade_ms} ms, main PID ${f.upgraded_main_pid} -> ${f.downgraded_main_pid}, ${f.downgraded_version}, ${f.downgraded_program}`,
        ticks: `${ticks.lines} lines, missing ${ticks.missing}, disorder ${ticks.disorder.length}, unmeasured ${ticks.unmeasured}`,
      });
    });
}
