// What no client can take from the server: its descriptors (a full table
// makes a handoff refuse, not crash), its memory (a client that floods and
// never reads holds a bounded amount), its connection table (a clear refusal
// past --max-connections), and a stop that is under way.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { spawnTracked, test, waitUntilStopped } from './harness';
import { Client, MAIN, request, sleep, startServing, tempDir, watchService } from './helpers';

/** What the server says to a connection that sends nothing, until it closes it. */
function replyOnConnect(sock: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(sock);
    let data = '';
    socket.on('data', (chunk: Buffer) => { data += chunk.toString('latin1'); });
    socket.on('end', () => resolve(data));
    socket.on('error', reject);
  });
}

function rssKiB(pid: number): number {
  return Number(/^VmRSS:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
}

test('a handoff asked for while the descriptor table is full is refused (EMFILE), and the server serves on', async (t) => {
  const sock = path.join(tempDir(t), 's.sock');
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  const service = watchService(spawnTracked('prlimit', ['--nofile=64:64', process.execPath, MAIN, '--log-format', 'journal',
    '-s', sock, '-d', '10'], { stdio: ['ignore', 'pipe', 'pipe'], env }));
  t.after(() => service.stop());
  await service.waitForLine(/^Listening on UNIX socket /);
  await service.waitForTicks(3);
  const requester = await Client.connect(sock);
  t.after(() => requester.close());
  assert.match(await requester.ask('get_counter'), /^[0-9]+$/);
  // Fill the table: more connections than it has room for (the rest wait in the backlog).
  const fillers: net.Socket[] = [];
  t.after(() => { for (const s of fillers) s.destroy(); });
  for (let i = 0; i < 80; i++) {
    const s = net.createConnection(sock);
    s.on('error', () => undefined);
    fillers.push(s);
    await new Promise((resolve) => { s.once('connect', resolve); s.once('error', resolve); });
  }
  // prlimit execs the command: the service has its pid; /proc lists 0..63 and the directory's own.
  while (fs.readdirSync(`/proc/${service.pid}/fd`).length < 64) await sleep(10);
  await sleep(200);
  assert.match(await requester.ask('pass_state_v1'), /^abort cannot copy the listening socket \(EMFILE\)$/);
  assert.match(await requester.ask('get_counter'), /^[0-9]+$/, 'still serving');
  await service.waitForTicks(5);
  assert.equal(service.child.exitCode, null);
  for (const s of fillers) s.destroy();
});

test('a handoff asked for while the process stops is refused, and the stop completes', async (t) => {
  const dir = tempDir(t);
  const sock = path.join(dir, 's.sock');
  const service = await startServing(sock, ['-d', '10', '--state-file', path.join(dir, 'counter')],
    { EARLY_SERVICE_FAULT: 'stop-stopping' });
  t.after(() => service.stop());
  await service.waitForTicks(3);
  const client = await Client.connect(sock);
  t.after(() => client.close());
  await client.ask('get_counter');
  service.child.kill('SIGTERM');
  await service.waitForLine(/^fault injection: stopping stopping$/);
  await waitUntilStopped(service.pid);
  const reply = client.ask('pass_state_and_terminate');
  await sleep(50);
  service.child.kill('SIGCONT');
  assert.equal(await reply, 'error: stopping, retry');
  assert.deepEqual(await service.exited, { code: 0, signal: null });
  assert.ok(service.lines.some((l) => /^Stopped by SIGTERM; the counter was [0-9]+$/.test(l)));
});

test('clients that flood and never read hold a bounded amount of memory', async (t) => {
  const sock = path.join(tempDir(t), 's.sock');
  const service = await startServing(sock, ['-d', '100']);
  t.after(() => service.stop());
  await service.waitForTicks(2);
  assert.equal(await request(sock, 'get_counter\n'), `${service.ticks().at(-1)! + 1n}\n`);
  const before = rssKiB(service.pid);
  const hogs: net.Socket[] = [];
  t.after(() => { for (const h of hogs) h.destroy(); });
  for (let i = 0; i < 40; i++) {
    const hog = net.createConnection(sock);
    hog.on('error', () => undefined);
    hog.pause();
    hogs.push(hog);
    hog.on('connect', () => { for (let j = 0; j < 20; j++) hog.write('get_counter\n'.repeat(10_000)); });
  }
  await sleep(3000);
  const grown = (rssKiB(service.pid) - before) / 1024;
  // 40 such clients cost 89 MiB before connections were bounded.
  assert.ok(grown < 25, `RSS grew by ${grown.toFixed(1)} MiB for 40 clients that never read`);
  assert.match(await request(sock, 'get_counter\n'), /^[0-9]+\n$/, 'still serving others');
});

test('past --max-connections a new connection is told so and closed; the others are served', async (t) => {
  const sock = path.join(tempDir(t), 's.sock');
  const service = await startServing(sock, ['-d', '100', '--max-connections', '20']);
  t.after(() => service.stop());
  const clients = await Promise.all(Array.from({ length: 20 }, () => Client.connect(sock)));
  t.after(() => { for (const c of clients) c.close(); });
  for (const c of clients) assert.match(await c.ask('get_counter'), /^[0-9]+$/);
  assert.equal(await replyOnConnect(sock), 'error: too many connections\n');
  await service.waitForLine(/^refused 1 connections: 20 were open \(--max-connections\)$/);
  clients.pop()!.close();
  await sleep(100);
  assert.match(await request(sock, 'get_counter\n'), /^[0-9]+\n$/);
  for (const c of clients) assert.match(await c.ask('get_counter'), /^[0-9]+$/);
});
