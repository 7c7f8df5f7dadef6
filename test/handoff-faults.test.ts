// Handoffs that go wrong: the successor or the predecessor killed or stopped
// at each phase. Fault injection: EARLY_SERVICE_FAULT=stop-<point> makes a
// successor stop itself (SIGSTOP) at that point, for the test to kill it there.
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { test, waitUntilStopped } from './harness';
import path from 'node:path';
import { Client, type Service, findGap, request, sleep, startService, startServing, tempDir } from './helpers';

const DELAY = ['-d', '10'];

function successor(sock: string, fault?: string, extra: string[] = []): Service {
  return startService(['-s', sock, '--takeover_existing_socket', ...DELAY, ...extra],
    fault === undefined ? {} : { EARLY_SERVICE_FAULT: fault });
}

/** The old process keeps serving, with its ticks consecutive and its clients' connections working. */
async function assertStillServing(old: Service, sock: string, client: Client): Promise<void> {
  const before = old.ticks().length;
  await old.waitForTicks(5, 5000);
  assert.equal(findGap(old.ticks().slice(before)), undefined);
  assert.match(await request(sock, 'get_counter\n'), /^\d+\n$/);
  assert.match(await client.ask('get_counter'), /^\d+$/, 'a client connection was lost');
  assert.equal(old.child.exitCode, null);
}

/** A serving instance and one persistent client of it, both cleaned up after the test. */
async function servingWithClient(t: TestContext): Promise<{ sock: string; old: Service; client: Client }> {
  const sock = path.join(tempDir(t), 's.sock');
  const old = await startServing(sock, DELAY);
  t.after(() => old.stop());
  const client = await Client.connect(sock);
  t.after(() => client.close());
  return { sock, old, client };
}

test('(a) successor killed before it asks: nothing happens to the service', async (t) => {
  const { sock, old, client } = await servingWithClient(t);
  const next = successor(sock, 'stop-before-request');
  t.after(() => next.stop());
  await next.waitForLine(/^fault injection: stopping before request$/);
  next.child.kill('SIGKILL');
  await next.exited;
  await assertStillServing(old, sock, client);
});

test('(b) successor killed after receiving everything, before its commit: the old process takes it all back', async (t) => {
  const { sock, old, client } = await servingWithClient(t);
  assert.match(await client.ask('set_counter 1000'), /^previous value \d+$/);
  await old.waitForLine(/^1002$/);
  const next = successor(sock, 'stop-after-receive');
  t.after(() => next.stop());
  await next.waitForLine(/^fault injection: stopping after receive$/);
  // Nobody accepts meanwhile: this client waits in the backlog.
  const waiting = request(sock, 'set_counter 5000\n');
  await sleep(100);
  next.child.kill('SIGKILL');
  await old.waitForLine(/^handoff rolled back, still serving: the successor did not commit$/);
  assert.match(await waiting, /^previous value \d+\n$/);
  await assertStillServing(old, sock, client);
  // The values were logged once, by the old process alone: on from 1000,
  // then on from 5000 once the waiting client was answered.
  const ticks = old.ticks();
  const jumps = ticks.filter((v, i) => i > 0 && v !== ticks[i - 1] + 1n);
  assert.ok(ticks.includes(1000n) && ticks.includes(5000n), `ticks ${ticks.join(' ')}`);
  assert.ok(jumps.every((v) => v === 1000n || v === 5000n), `unexpected jumps ${jumps.join(', ')}`);
  assert.deepEqual(next.ticks(), []);
});

test('(b2) successor stopped (SIGTERM, as systemd at a start timeout) during its takeover: it gives everything back', async (t) => {
  const { sock, old, client } = await servingWithClient(t);
  const next = successor(sock, 'stop-after-receive');
  t.after(() => next.stop());
  await next.waitForLine(/^fault injection: stopping after receive$/);
  // It logs that line before it stops itself: a SIGCONT sent in between
  // would be lost, and the process would stay stopped.
  await waitUntilStopped(next.pid);
  // The SIGTERM is pending while the process is stopped, as one that
  // arrives during the synchronous takeover is; SIGCONT lets it go on.
  next.child.kill('SIGTERM');
  next.child.kill('SIGCONT');
  await next.waitForLine(/^Stopped by SIGTERM during the takeover; the predecessor serves on$/);
  assert.deepEqual(await next.exited, { code: 0, signal: null });
  // It said why: the old process rolls back at once, not at its timeout.
  await old.waitForLine(/^handoff rolled back, still serving: the successor gave up: stopped by SIGTERM$/);
  await assertStillServing(old, sock, client);
  assert.deepEqual(next.ticks(), []);
});

test('(c) successor killed after its commit: the old process has let go and exits 0', async (t) => {
  const sock = path.join(tempDir(t), 's.sock');
  const old = await startServing(sock, DELAY);
  t.after(() => old.stop());
  const next = successor(sock, 'stop-after-commit');
  t.after(() => next.stop());
  await next.waitForLine(/^fault injection: stopping after commit$/);
  // The commit decides: the old process never serves again (no two servers).
  assert.deepEqual(await old.exited, { code: 0, signal: null });
  next.child.kill('SIGKILL');
  await next.exited;
  // What recovers the service then is a restart (systemd's Restart=): it
  // finds nobody to take over from and starts fresh on the same path.
  const restarted = successor(sock);
  t.after(() => restarted.stop());
  await restarted.waitForLine(/^Listening on UNIX socket /);
  assert.match(await request(sock, 'get_counter\n'), /^\d+\n$/);
});

test('old process killed after sending everything: the successor keeps what it received', async (t) => {
  const { sock, old, client } = await servingWithClient(t);
  await client.ask('get_counter');
  await old.waitForLine(/^3$/);
  const next = successor(sock, 'stop-after-receive');
  t.after(() => next.stop());
  await next.waitForLine(/^fault injection: stopping after receive$/);
  await waitUntilStopped(next.pid);
  old.child.kill('SIGKILL');
  await old.exited;
  next.child.kill('SIGCONT');
  await next.waitForLine(/^Took over from pid \d+ at counter \d+ with 1 client connections/);
  // The first tick continues the old process's last one; the client kept its connection.
  const lastOld = old.ticks()[old.ticks().length - 1];
  await sleep(100);
  assert.equal(next.ticks()[0], lastOld + 1n);
  assert.match(await client.ask('get_counter'), /^\d+$/);
  assert.match(await request(sock, 'get_counter\n'), /^\d+\n$/);
});

test('old process stopped (SIGSTOP): the successor gives up in time, the old one carries on when continued', async (t) => {
  const sock = path.join(tempDir(t), 's.sock');
  const old = await startServing(sock, DELAY);
  t.after(() => { old.child.kill('SIGCONT'); return old.stop(); });
  const client = await Client.connect(sock);
  t.after(() => client.close());
  await client.ask('get_counter');
  old.child.kill('SIGSTOP');
  const next = successor(sock, undefined, ['--handoff-timeout', '1000']);
  t.after(() => next.stop());
  const exit = await Promise.race([next.exited, sleep(8000).then(() => 'hung' as const)]);
  assert.notEqual(exit, 'hung', 'the successor hung on a stopped predecessor');
  assert.equal((exit as { code: number }).code, 1);
  assert.ok(next.lines.some((l) => /^no answer from the server within 1000 ms$/.test(l)), next.lines.join('\n'));
  old.child.kill('SIGCONT');
  await old.waitForLine(/^handoff rolled back, still serving: /);
  await assertStillServing(old, sock, client);
});
