// What a successor accepts from whoever serves the path: only a predecessor
// of an allowed uid, handing over a listening socket bound to our address, a
// believable tick schedule and real client connections; and whether it keeps
// what it received is decided by what the connection says, not by the pid.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { type Service, findGap, request, startService, startServing, tempDir, watchService, Client, MAIN, sleep } from './helpers';
import { spawnTracked, test, waitUntilStopped } from './harness';
import { processState } from '../src/ipc/proc';

const FAKE_DONOR = path.join(__dirname, 'fake-donor.js');
const NOBODY = 65534;

/** The fake predecessor (test/fake-donor.ts) on `sock`, once it listens. */
async function fakeDonor(sock: string, scenario: string, uid?: number): Promise<Service> {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  const donor = watchService(spawnTracked(process.execPath, [FAKE_DONOR, sock, scenario],
    { stdio: ['ignore', 'pipe', 'pipe'], env, ...(uid === undefined ? {} : { uid, gid: uid }) }));
  await donor.waitForLine(/^ready$/);
  return donor;
}

/** A successor that must refuse: it exits 1 saying why, and the predecessor hears "abort". */
async function assertRefused(sock: string, donor: Service, why: RegExp): Promise<void> {
  const successor = startService(['-s', sock, '--takeover_existing_socket', '-d', '10']);
  const exit = await successor.exited;
  assert.equal(exit.code, 1, successor.lines.join('\n'));
  assert.ok(successor.lines.some((l) => why.test(l)), successor.lines.join('\n'));
  assert.deepEqual(successor.ticks(), [], 'a refusing successor never ticks');
  await donor.waitForLine(/^got abort /);
  // The predecessor still serves the path.
  assert.equal(await request(sock, 'get_counter\n'), '77\n');
}

function socketIn(t: Parameters<typeof tempDir>[0]): string {
  const dir = tempDir(t);
  // Anyone may create the socket here (the foreign-uid case).
  fs.chmodSync(dir, 0o777);
  return path.join(dir, 's.sock');
}

test('a predecessor of another uid is refused', async (t) => {
  const sock = socketIn(t);
  const donor = await fakeDonor(sock, 'valid', NOBODY);
  await assertRefused(sock, donor, /uid 65534, which may not hand over to this process/);
});

test('with --handoff-allow-uid, that uid may hand over', async (t) => {
  const sock = socketIn(t);
  await fakeDonor(sock, 'valid', NOBODY);
  const successor = startService(['-s', sock, '--takeover_existing_socket', '-d', '10', '--handoff-allow-uid', String(NOBODY)]);
  t.after(() => successor.stop());
  await successor.waitForLine(/^Took over from pid \d+ at counter 77 /);
  await successor.waitForTicks(3);
  assert.equal(successor.ticks()[0], 77n);
});

test('a listening socket bound to another address is refused', async (t) => {
  const sock = socketIn(t);
  const donor = await fakeDonor(sock, 'bound-elsewhere');
  await assertRefused(sock, donor, /the socket received is bound to '.*s\.sock\.other', not to /);
});

test('a next tick due centuries from now is refused (it would never tick)', async (t) => {
  const sock = socketIn(t);
  const donor = await fakeDonor(sock, 'far-deadline');
  await assertRefused(sock, donor, /the predecessor's next tick is due in [0-9.]+ ms: not believable/);
});

// Versioning (docs/PROTOCOL.md, "Versions"): a successor that meets a record
// of a wire version it does not know (a package rolled back under a newer
// running one) refuses with the reason and gives everything back; the
// predecessor serves on.
test('a state record of a newer wire version is refused cleanly: the predecessor serves on', async (t) => {
  const sock = socketIn(t);
  const donor = await fakeDonor(sock, 'newer-version');
  await assertRefused(sock, donor, /state v2/);
  assert.ok(!donor.lines.includes('got commit'));
});

test('a regular file handed over as a client connection is refused, before any commit', async (t) => {
  const sock = socketIn(t);
  const donor = await fakeDonor(sock, 'regular-file');
  await assertRefused(sock, donor, /a client connection handed over is not a connected UNIX stream socket/);
  assert.ok(!donor.lines.includes('got commit'));
});

test('a connection whose record never ended is closed, not leaked, when the predecessor dies mid-handoff', async (t) => {
  const sock = socketIn(t);
  const donor = await fakeDonor(sock, 'partial-connection');
  const client = await Client.connect(sock);
  t.after(() => client.close());
  assert.equal(await client.ask('get_counter'), '77');
  const successor = startService(['-s', sock, '--takeover_existing_socket', '-d', '10']);
  t.after(() => successor.stop());
  await successor.waitForLine(/^Took over from pid \d+ at counter 77 with 0 client connections \(handoff #1, partial/);
  assert.equal((await donor.exited).code, 0);
  // The half-received connection was closed: its client sees the end.
  const ended = await Promise.race([client.ask('get_counter').then(() => 'answered', () => 'ended'), sleep(5000).then(() => 'hangs')]);
  assert.equal(ended, 'ended');
  // The listening socket, which came whole, is served.
  await successor.waitForTicks(2);
  assert.match(await request(sock, 'get_counter\n'), /^[0-9]+\n$/);
});

test('a predecessor that died but is not reaped yet (a zombie) has let go: the successor keeps everything', async (t) => {
  const sock = path.join(tempDir(t), 's.sock');
  // The old process's parent never waits for it (exec sleep): once killed, it stays a zombie.
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  const wrapper = spawnTracked('sh', ['-c', '"$0" "$@" & echo "pid $!" >&2; exec sleep 600',
    process.execPath, MAIN, '--log-format', 'journal', '-s', sock, '-d', '10'], { stdio: ['ignore', 'pipe', 'pipe'], env });
  const pidLine = await new Promise<string>((resolve) => wrapper.stderr!.once('data', (d: Buffer) => resolve(d.toString())));
  const old = watchService(wrapper, Number(/pid (\d+)/.exec(pidLine)![1]));
  await old.waitForLine(/^Listening on UNIX socket /);
  await old.waitForTicks(3);
  const client = await Client.connect(sock);
  t.after(() => client.close());
  await client.ask('get_counter');

  const next = startService(['-s', sock, '--takeover_existing_socket', '-d', '10'], { EARLY_SERVICE_FAULT: 'stop-after-receive' });
  t.after(() => next.stop());
  await next.waitForLine(/^fault injection: stopping after receive$/);
  await waitUntilStopped(next.pid);
  process.kill(old.pid, 'SIGKILL');
  for (let i = 0; i < 200 && processState(old.pid) !== 'Z'; i++) await sleep(10);
  assert.equal(processState(old.pid), 'Z', 'the old process is a zombie');
  // Nobody accepts meanwhile: this client waits in the backlog of the socket the successor holds.
  const waiting = request(sock, 'get_counter\n', 1, 10_000);
  await sleep(100);
  process.kill(next.pid, 'SIGCONT');
  await next.waitForLine(/^Took over from pid \d+ at counter \d+ with 1 client connections/);
  assert.match(await waiting, /^[0-9]+\n$/, 'the client in the backlog is answered');
  assert.match(await client.ask('get_counter'), /^[0-9]+$/, 'the connection handed over is served');
  await next.waitForTicks(3);
  assert.equal(next.ticks()[0], old.ticks().at(-1)! + 1n, 'the counter goes on');
  assert.equal(findGap([...old.ticks(), ...next.ticks()]), undefined);
});

test('a predecessor that dies before sending anything: the successor starts fresh on the path', async (t) => {
  const sock = path.join(tempDir(t), 's.sock');
  const old = await startServing(sock, ['-d', '10'], { EARLY_SERVICE_FAULT: 'stop-donor-frozen' });
  t.after(() => old.stop());
  await old.waitForTicks(2);
  const next = startService(['-s', sock, '--takeover_existing_socket', '-d', '10']);
  t.after(() => next.stop());
  await old.waitForLine(/^fault injection: stopping donor frozen$/);
  await waitUntilStopped(old.pid);
  old.child.kill('SIGKILL');
  await next.waitForLine(/^Listening on UNIX socket /);
  assert.ok(next.lines.some((l) => /; starting fresh$/.test(l)), next.lines.join('\n'));
  assert.match(await request(sock, 'get_counter\n'), /^[0-9]+\n$/);
});
