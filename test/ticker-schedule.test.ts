// The ticker's schedule when it falls behind: a long stall is not replayed as
// a burst of stale ticks; the grid points it slept through are skipped and
// counted, and the values logged stay consecutive.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from './harness';
import { findGap, sleep, startServing, tempDir } from './helpers';

test('a stall longer than the catch-up window skips the grid points it missed, logs how many, keeps values consecutive', async (t) => {
  const dir = tempDir(t);
  const service = await startServing(path.join(dir, 'sock'), ['-d', '20']);
  t.after(() => service.stop());
  await service.waitForLine(/^5$/);
  service.child.kill('SIGSTOP');
  await sleep(400);
  service.child.kill('SIGCONT');
  // The stall's report: late by more than 300 ms (a busy machine can make the
  // thread miss a few ticks on its own before it, each reported on its own line).
  const warning = await service.waitForLine(/^missed [0-9]+ ticks \(late by ([3-9][0-9]{2}|[0-9]{4,})\./);
  const [, missed] = /^missed ([0-9]+) ticks \(late by ([0-9.]+) ms; ([0-9]+) in all\)$/.exec(warning) ?? [];
  // 400 ms at 20 ms: about 20 grid points, minus none caught up (the stall is past the 50 ms window).
  assert.ok(Number(missed) >= 15 && Number(missed) <= 40, warning);
  const before = service.ticks().length;
  await service.waitForLine(new RegExp(`^${service.ticks().at(-1)! + 3n}$`));
  assert.ok(service.ticks().length > before);
  assert.equal(findGap(service.ticks()), undefined);
});
