// Who may take the socket over: root, the server's own uid, the socket's
// owner, and uids allowed with --handoff-allow-uid. The other peer runs as
// `nobody` (the tests run as root, as CI does).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from './harness';
import { request, sleep, startServing, tempDir } from './helpers';

const NOBODY = 65534;

/** Sends `text` as uid `nobody` and returns the bytes the server answered. */
function requestAsNobody(sock: string, text: string, replyLines: number): string {
  const script = `
    const s = require('net').createConnection(process.argv[1]);
    let d = '';
    let lines = 0;
    s.on('connect', () => s.write(process.argv[2]));
    s.on('data', (c) => {
      const text = c.toString('latin1');
      d += text;
      for (const ch of text) if (ch === '\\n') lines++;
      if (lines >= ${replyLines}) s.destroy();
    });
    s.on('close', () => process.stdout.write(d));`;
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  const result = spawnSync(process.execPath, ['-e', script, sock, text],
    { uid: NOBODY, gid: NOBODY, encoding: 'latin1', timeout: 10_000, env });
  assert.equal(result.status, 0, result.stderr);
  return result.stdout;
}

/** A socket that `nobody` can reach. */
function openSocketDir(t: { after: (fn: () => void) => void }): string {
  const dir = tempDir(t);
  fs.chmodSync(dir, 0o755);
  return path.join(dir, 's.sock');
}

test('a handoff request from another uid is refused, logged, and changes nothing', async (t) => {
  const sock = openSocketDir(t);
  const service = await startServing(sock, ['-d', '60000']);
  t.after(() => service.stop());
  fs.chmodSync(sock, 0o777);
  assert.equal(requestAsNobody(sock, 'set_counter 5\npass_state_v1\npass_state_and_terminate\nget_counter\n', 4),
    'previous value 0\nerror: not authorized\nerror: not authorized\n5\n');
  await service.waitForLine(new RegExp(`^handoff refused: pid \\d+ \\(uid ${NOBODY}\\) is not authorized$`));
  // Still serving, still the owner of its socket.
  assert.equal(await request(sock, 'get_counter\n'), '5\n');
  assert.equal(service.child.exitCode, null);
});

test('--handoff-allow-uid lets that uid take over', async (t) => {
  const sock = openSocketDir(t);
  const service = await startServing(sock, ['-d', '60000', '--handoff-allow-uid', '1234', '--handoff-allow-uid', String(NOBODY)]);
  t.after(() => service.stop());
  fs.chmodSync(sock, 0o777);
  // The seed's form: one NUL byte (the descriptor is dropped by a plain read), then the counter.
  assert.equal(requestAsNobody(sock, 'pass_state_and_terminate\n', 1), '\x000\n');
  assert.equal((await service.exited).code, 0);
});

test('the owner of the socket file may take over', async (t) => {
  const sock = openSocketDir(t);
  const service = await startServing(sock, ['-d', '60000']);
  t.after(() => service.stop());
  fs.chmodSync(sock, 0o777);
  fs.chownSync(sock, NOBODY, NOBODY);
  assert.equal(requestAsNobody(sock, 'pass_state_and_terminate\n', 1), '\x000\n');
  assert.equal((await service.exited).code, 0);
});

test('a chown of the socket after its path stopped resolving (as after switch-root) still counts', async (t) => {
  const sock = openSocketDir(t);
  const service = await startServing(sock, ['-d', '60000']);
  t.after(() => service.stop());
  // The server's path no longer leads to its directory (the initrd's root is
  // emptied at switch-root; /run lives on under the new root)...
  const moved = `${path.dirname(sock)}-moved`;
  fs.renameSync(path.dirname(sock), moved);
  t.after(() => fs.rmSync(moved, { recursive: true, force: true }));
  const movedSock = path.join(moved, path.basename(sock));
  // ...and then systemd hands directory and socket to the service user.
  fs.chmodSync(movedSock, 0o777);
  fs.chownSync(movedSock, NOBODY, NOBODY);
  assert.equal(requestAsNobody(movedSock, 'pass_state_and_terminate\n', 1), '\x000\n');
  assert.equal((await service.exited).code, 0);
});

test('a flood of refused handoff requests costs a few log lines a second, with a count of the rest', async (t) => {
  const sock = openSocketDir(t);
  const service = await startServing(sock, ['-d', '60000']);
  t.after(() => service.stop());
  fs.chmodSync(sock, 0o777);
  const replies = requestAsNobody(sock, 'pass_state_v1\n'.repeat(5000), 5000);
  assert.equal(replies, 'error: not authorized\n'.repeat(5000));
  await service.waitForLine(/^[0-9]+ more 'handoff refused' messages were not logged/, 5000);
  await sleep(2500);
  const refusedLines = service.lines.filter((l) => l.startsWith('handoff refused')).length;
  assert.ok(refusedLines <= 60, `${refusedLines} lines for 5000 refusals`);
  const counted = service.lines.map((l) => /^([0-9]+) more 'handoff refused' messages/.exec(l)?.[1]).filter(Boolean).map(Number);
  assert.equal(counted.reduce((a, b) => a + b, 0) + refusedLines, 5000, 'every refusal is logged or counted');
});
