// The server on a real UNIX socket, in a real process. A one-minute tick
// period keeps the counter still, so every value asserted is exact.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from './harness';
import { addon } from '../src/supervisor/native';
import { Client, openFds, request, sleep, startService, startServing, tempDir } from './helpers';

const STILL = ['-d', '60000'];

test('get_counter and set_counter, one connection each', async (t) => {
  const sock = path.join(tempDir(t), 's.sock');
  const service = await startServing(sock, STILL);
  t.after(() => service.stop());
  assert.equal(await request(sock, 'get_counter\n'), '0\n');
  assert.equal(await request(sock, 'set_counter 100\n'), 'previous value 0\n');
  assert.equal(await request(sock, 'get_counter\n'), '100\n');
  assert.equal(await request(sock, 'set_counter -9223372036854775807\n'), 'previous value 100\n');
  assert.equal(await request(sock, 'get_counter\n'), '-9223372036854775807\n');
  await service.waitForLine(/^Setting the counter to 100$/);
});

test('pipelined, split and CRLF commands are each answered in order', async (t) => {
  const sock = path.join(tempDir(t), 's.sock');
  const service = await startServing(sock, STILL);
  t.after(() => service.stop());
  assert.equal(await request(sock, 'set_counter 7\nget_counter\r\nbogus\nget_counter\n', 4),
    'previous value 0\n7\nInvalid command\n7\n');

  const socket = net.createConnection(sock);
  let reply = '';
  socket.on('data', (d) => { reply += d.toString(); });
  await new Promise((resolve) => socket.once('connect', resolve));
  for (const piece of ['get_', 'coun', 'ter', '\r', '\nset_counter 8', '\n']) {
    socket.write(piece);
    await sleep(20);
  }
  await sleep(100);
  socket.destroy();
  assert.equal(reply, '7\nprevious value 7\n');
});

test('bad numbers are refused and leave the counter unchanged', async (t) => {
  const sock = path.join(tempDir(t), 's.sock');
  const service = await startServing(sock, STILL);
  t.after(() => service.stop());
  await request(sock, 'set_counter 55\n');
  for (const bad of ['abc', '12345678901234567890', '', '5 junk', '9223372036854775808', '-9223372036854775808', '1.5']) {
    assert.equal(await request(sock, `set_counter ${bad}\n`), 'error: invalid number\n', bad);
  }
  assert.equal(await request(sock, 'set_counter\n'), 'error: invalid number\n');
  assert.equal(await request(sock, 'get_counter\n'), '55\n');
});

test('a line over 4096 bytes gets an error and the connection is closed', async (t) => {
  const sock = path.join(tempDir(t), 's.sock');
  const service = await startServing(sock, STILL);
  t.after(() => service.stop());
  // Without a newline: the limit applies before the line is complete.
  assert.equal(await request(sock, 'x'.repeat(5000), 2), 'error: line too long\n');
  assert.equal(await request(sock, `get_counter\n${'y'.repeat(10_000)}\n`, 3), '0\nerror: line too long\n');
  assert.equal(await request(sock, `${'z'.repeat(4096)}\n`), 'Invalid command\n');
  assert.equal(await request(sock, 'get_counter\n'), '0\n');
});

test('hostile clients leave the server, the ticker and the counter intact', async (t) => {
  const sock = path.join(tempDir(t), 's.sock');
  const service = await startServing(sock, ['-d', '20']);
  t.after(() => service.stop());
  // Once the ticker thread runs, every descriptor of a serving process exists.
  await service.waitForLine(/^\d+$/);
  const fdsBefore = openFds(service.pid);

  // Non-UTF-8 bytes, NULs, a lone CR, empty lines.
  assert.equal(await request(sock, Buffer.from([0xff, 0xfe, 0x00, 0x0d, 0x0a, 0x0a]), 2), 'Invalid command\nInvalid command\n');
  // A client that sends half a command and vanishes; one that resets mid-reply.
  for (let i = 0; i < 20; i++) {
    const s = net.createConnection(sock);
    s.on('error', () => undefined);
    s.on('connect', () => { s.write(i % 2 ? 'get_cou' : 'get_counter\n'.repeat(1000)); s.destroy(); });
  }
  // Hundreds of idle connections.
  const idle = await Promise.all(Array.from({ length: 300 }, () => Client.connect(sock)));
  // A flood of unknown commands is answered, and its log is rate-limited.
  const flood = await request(sock, 'nope\n'.repeat(2000), 2000);
  assert.equal(flood, 'Invalid command\n'.repeat(2000));
  assert.ok(service.lines.filter((l) => l.startsWith('Unknown message')).length <= 40);

  // Still serving, still ticking on schedule.
  await service.waitForTicks(10, 5000);
  assert.match(await request(sock, 'get_counter\n'), /^\d+\n$/);
  for (const client of idle) assert.match(await client.ask('get_counter'), /^\d+$/);
  for (const client of idle) client.close();

  await sleep(300);
  assert.equal(openFds(service.pid), fdsBefore, 'descriptors leaked');
});

test('a client that never reads its replies does not stall others', async (t) => {
  const sock = path.join(tempDir(t), 's.sock');
  const service = await startServing(sock, STILL);
  t.after(() => service.stop());
  const hog = net.createConnection(sock);
  hog.on('error', () => undefined);
  await new Promise((resolve) => hog.once('connect', resolve));
  hog.pause();
  for (let i = 0; i < 50; i++) hog.write('get_counter\n'.repeat(10_000));
  await sleep(200);
  assert.equal(await request(sock, 'get_counter\n'), '0\n');
  hog.destroy();
});

test('a stale socket file is replaced; a live server or a non-socket is refused', async (t) => {
  const dir = tempDir(t);
  const sock = path.join(dir, 's.sock');
  // A socket file whose server died (closed without unlinking, as after a crash).
  addon.close(addon.listenUnix(sock, 1));
  assert.ok(fs.statSync(sock).isSocket());
  const first = await startServing(sock, STILL);
  t.after(() => first.stop());
  assert.equal(await request(sock, 'get_counter\n'), '0\n');

  const second = startService(['-s', sock, ...STILL]);
  assert.deepEqual((await second.exited).code, 1);
  assert.ok(second.lines.some((l) => /another server is answering on .*s\.sock/.test(l)), second.lines.join('\n'));
  assert.equal(await request(sock, 'get_counter\n'), '0\n', 'the first server lost its socket');

  const file = path.join(dir, 'plain');
  fs.writeFileSync(file, 'data');
  const third = startService(['-s', file, ...STILL]);
  assert.equal((await third.exited).code, 1);
  assert.ok(third.lines.some((l) => l.includes('exists and is not a socket')));
  assert.equal(fs.readFileSync(file, 'utf8'), 'data');

  const fourth = startService(['-s', path.join(dir, 'missing', 's.sock'), ...STILL]);
  assert.equal((await fourth.exited).code, 1);
  assert.ok(fourth.lines.some((l) => /cannot listen on .*: bind .*No such file or directory/.test(l)), fourth.lines.join('\n'));
});

test('the socket honours the umask and survives a stop', async (t) => {
  const sock = path.join(tempDir(t), 's.sock');
  // The umask is inherited from the parent.
  const child = startServiceWithUmask(sock, '0077');
  await child.waitForLine(/^Listening/);
  assert.equal(fs.statSync(sock).mode & 0o777, 0o700);
  await child.stop();
  assert.equal((await child.exited).code, 0);
  assert.ok(fs.existsSync(sock), 'the path was removed at stop');
});

function startServiceWithUmask(sock: string, umask: string) {
  const previous = process.umask(Number.parseInt(umask, 8));
  try {
    return startService(['-s', sock, ...STILL]);
  } finally {
    process.umask(previous);
  }
}

test('a stop that comes while the ticker thread is still starting ends the process', async (t) => {
  const sock = path.join(tempDir(t), 's.sock');
  for (let i = 0; i < 3; i++) {
    const service = await startServing(sock, STILL);
    // "Listening" is logged before the ticker thread is up: stop at once.
    service.child.kill('SIGTERM');
    const exit = await Promise.race([service.exited, sleep(8000).then(() => 'hung' as const)]);
    if (exit === 'hung') service.child.kill('SIGKILL');
    assert.deepEqual(exit, { code: 0, signal: null });
  }
});

test('a flood of set_counter costs a few log lines a second, with a count of the rest', async (t) => {
  const sock = path.join(tempDir(t), 's.sock');
  const service = await startServing(sock, STILL);
  t.after(() => service.stop());
  const replies = await request(sock, 'set_counter 7\n'.repeat(5000), 5000);
  assert.equal(replies.split('\n').length - 1, 5000);
  await service.waitForLine(/^[0-9]+ more 'Setting the counter' messages were not logged/, 5000);
  const lines = service.lines.filter((l) => l.startsWith('Setting the counter')).length;
  assert.ok(lines <= 40, `${lines} lines for 5000 writes`);
});
