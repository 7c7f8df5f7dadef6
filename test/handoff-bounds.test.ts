// A handoff is bounded in time and size whatever its clients and its
// successor do, and the state is frozen only for the part that must be
// atomic: no tick is skipped because of a slow client, a slow successor or a
// rollback, and a stop that comes during a handoff is acted on after it.
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { test, waitUntilStopped } from './harness';
import { Client, findGap, request, sleep, startService, startServing, tempDir } from './helpers';
import fs from 'node:fs';
import { parseState } from '../src/supervisor/state-file';

const MISSED = /^missed [0-9]+ ticks/;

test('a client that never reads its replies does not make a handoff skip ticks', async (t) => {
  const sock = path.join(tempDir(t), 's.sock');
  // At 100 ms a tick is skipped only when the state stays frozen past 150 ms.
  const old = await startServing(sock, ['-d', '100']);
  t.after(() => old.stop());
  await old.waitForTicks(3);
  const hog = net.createConnection(sock);
  hog.on('error', () => undefined);
  t.after(() => hog.destroy());
  await new Promise((resolve) => hog.once('connect', resolve));
  hog.pause();
  hog.write('get_counter\n'.repeat(200_000));
  await sleep(200);
  const next = startService(['-s', sock, '--takeover_existing_socket', '-d', '100']);
  t.after(() => next.stop());
  await next.waitForLine(/^Took over from pid /);
  await next.waitForTicks(10);
  assert.equal((await old.exited).code, 0);
  assert.deepEqual([...old.lines, ...next.lines].filter((l) => MISSED.test(l)), []);
  assert.equal(findGap([...old.ticks(), ...next.ticks()]), undefined);
});

test('a rollback after --handoff-timeout ticks the grid points of the frozen interval instead of skipping them', async (t) => {
  const sock = path.join(tempDir(t), 's.sock');
  const old = await startServing(sock, ['-d', '10', '--handoff-timeout', '1000']);
  t.after(() => old.stop());
  await old.waitForTicks(3);
  const next = startService(['-s', sock, '--takeover_existing_socket', '-d', '10'], { EARLY_SERVICE_FAULT: 'stop-after-receive' });
  t.after(() => next.stop());
  await next.waitForLine(/^fault injection: stopping after receive$/);
  await waitUntilStopped(next.pid);
  await old.waitForLine(/^handoff rolled back, still serving: the successor did not commit$/, 10_000);
  await old.waitForTicks(10);
  // About 100 grid points fell into the frozen second: ticked, not reported missed.
  assert.deepEqual(old.lines.filter((l) => MISSED.test(l) && Number(/late by ([0-9.]+)/.exec(l)![1]) > 500), []);
  assert.equal(findGap(old.ticks()), undefined);
});

test('hundreds of connections holding unfinished lines neither slow a handoff down nor travel with it', async (t) => {
  const sock = path.join(tempDir(t), 's.sock');
  // At 100 ms a tick is skipped only when the state stays frozen past 150 ms.
  const old = await startServing(sock, ['-d', '100']);
  t.after(() => old.stop());
  await old.waitForTicks(3);
  const holders = await Promise.all(Array.from({ length: 300 }, () => Client.connect(sock)));
  t.after(() => { for (const c of holders) c.close(); });
  for (const c of holders) c.send('x'.repeat(4000));
  const light = await Client.connect(sock);
  t.after(() => light.close());
  assert.match(await light.ask('get_counter'), /^[0-9]+$/);
  await sleep(300);
  const next = startService(['-s', sock, '--takeover_existing_socket', '-d', '100']);
  t.after(() => next.stop());
  const took = await next.waitForLine(/^Took over from pid /);
  // Only the light client travels; the holders stay with the old process, which drains them.
  assert.match(took, / with 1 client connections /);
  await next.waitForTicks(10);
  assert.deepEqual([...old.lines, ...next.lines].filter((l) => MISSED.test(l)), []);
  assert.equal(findGap([...old.ticks(), ...next.ticks()]), undefined);
  assert.match(await light.ask('get_counter'), /^[0-9]+$/);
  assert.equal((await old.exited).code, 0);
});

test('a SIGTERM during a handoff is acted on once it ends: after a rollback the process stops and saves its last value', async (t) => {
  const dir = tempDir(t);
  const sock = path.join(dir, 's.sock');
  const file = path.join(dir, 'counter');
  const old = await startServing(sock, ['-d', '10', '--state-file', file]);
  t.after(() => old.stop());
  await old.waitForTicks(3);
  const next = startService(['-s', sock, '--takeover_existing_socket', '-d', '10'], { EARLY_SERVICE_FAULT: 'stop-after-receive' });
  t.after(() => next.stop());
  await next.waitForLine(/^fault injection: stopping after receive$/);
  await waitUntilStopped(next.pid);
  old.child.kill('SIGTERM');
  await sleep(200);
  assert.equal(old.child.exitCode, null, 'the old process waits for the handoff to end');
  next.child.kill('SIGKILL');
  await old.waitForLine(/^handoff rolled back, still serving: /);
  const stopped = await old.waitForLine(/^Stopped by SIGTERM; the counter was [0-9]+$/);
  assert.deepEqual(await old.exited, { code: 0, signal: null });
  const last = BigInt(/was ([0-9]+)/.exec(stopped)![1]!);
  const saved = parseState(fs.readFileSync(file, 'utf8'));
  assert.ok(saved.kind === 'loaded' && saved.counter === last, describe(saved));
  assert.equal(old.ticks().at(-1), last - 1n, 'the last value logged is the one before the saved value');
});

test('a SIGTERM during a handoff that commits: the process ends as handed off, the successor serves', async (t) => {
  const sock = path.join(tempDir(t), 's.sock');
  const old = await startServing(sock, ['-d', '10'], { EARLY_SERVICE_FAULT: 'stop-donor-sent' });
  t.after(() => old.stop());
  await old.waitForTicks(3);
  const next = startService(['-s', sock, '--takeover_existing_socket', '-d', '10']);
  t.after(() => next.stop());
  await old.waitForLine(/^fault injection: stopping donor sent$/);
  await waitUntilStopped(old.pid);
  old.child.kill('SIGTERM');
  old.child.kill('SIGCONT');
  await next.waitForLine(/^Took over from pid /);
  assert.deepEqual(await old.exited, { code: 0, signal: null });
  assert.ok(old.lines.includes('Handed off; exiting'), old.lines.join('\n'));
  await next.waitForTicks(3);
  assert.match(await request(sock, 'get_counter\n'), /^[0-9]+\n$/);
  assert.equal(findGap([...old.ticks(), ...next.ticks()]), undefined);
});

function describe(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? String(v) : v));
}
