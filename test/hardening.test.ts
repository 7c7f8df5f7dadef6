// What a local user, or an operator's slip, cannot do to a running instance.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from './harness';
import { request, sleep, startServing, tempDir } from './helpers';

/** TCP ports some process listens on (from /proc/net/tcp and tcp6). */
function listeningPorts(): number[] {
  const ports: number[] = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!fs.existsSync(file)) continue;
    for (const line of fs.readFileSync(file, 'utf8').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      // st 0A = LISTEN
      if (fields[3] === '0A') ports.push(parseInt(fields[1]!.split(':')[1]!, 16));
    }
  }
  return ports;
}

test('SIGUSR1 does not open node\'s inspector (a debugger on port 9229): it is ignored', async (t) => {
  const sock = path.join(tempDir(t), 's.sock');
  const service = await startServing(sock, ['-d', '10']);
  t.after(() => service.stop());
  await service.waitForTicks(2);
  const before = listeningPorts();
  for (let i = 0; i < 3; i++) {
    service.child.kill('SIGUSR1');
    await sleep(100);
  }
  await sleep(500);
  const opened = listeningPorts().filter((p) => !before.includes(p));
  assert.ok(!opened.includes(9229), `port 9229 opened (new ports: ${opened.join(', ')})`);
  assert.ok(!service.stderr.some((l) => /Debugger listening/.test(l)), service.stderr.join('\n'));
  await service.waitForTicks(3);
  assert.match(await request(sock, 'get_counter\n'), /^[0-9]+\n$/);
  assert.equal(service.child.exitCode, null);
});
