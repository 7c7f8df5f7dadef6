// sd_notify: what a Type=notify unit's PID 1 would receive, received here by
// a real datagram socket (node-unix-socket's, for a path; Python's for an
// abstract address, which node-unix-socket cannot bind).
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { endProcess, spawnTracked, test } from './harness';
import { DgramSocket } from 'node-unix-socket';
import { type Service, request, sleep, startService, startServing, tempDir } from './helpers';

/** Collects the notification datagrams sent to one address. */
class Receiver {
  readonly messages: string[] = [];
  private readonly waiters: Array<() => void> = [];

  push(message: string): void {
    this.messages.push(message);
    for (const wake of this.waiters.splice(0)) wake();
  }

  async waitFor(pattern: RegExp, timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.find((m) => pattern.test(m));
      if (found !== undefined) return found;
      if (Date.now() > deadline) throw new Error(`no notification matching ${pattern}; got ${JSON.stringify(this.messages)}`);
      await new Promise<void>((resolve) => { this.waiters.push(resolve); setTimeout(resolve, 100); });
    }
  }

  count(pattern: RegExp): number {
    return this.messages.filter((m) => pattern.test(m)).length;
  }
}

function pathReceiver(t: { after: (fn: () => void) => void }, socketPath: string): Receiver {
  const receiver = new Receiver();
  const socket = new DgramSocket();
  socket.bind(socketPath);
  socket.on('data', (data: Buffer) => receiver.push(data.toString('utf8')));
  t.after(() => socket.close());
  return receiver;
}

async function abstractReceiver(t: { after: (fn: () => void) => void }, name: string): Promise<Receiver> {
  const receiver = new Receiver();
  const script = [
    'import socket, sys',
    's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
    's.bind("\\0" + sys.argv[1])',
    'print("bound", flush=True)',
    'while True:',
    '    print(s.recv(4096).decode().replace("\\n", "\\\\n"), flush=True)',
  ].join('\n');
  const child: ChildProcess = spawnTracked('python3', ['-c', script, name], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => endProcess(child));
  let rest = '';
  let bound!: () => void;
  const isBound = new Promise<void>((resolve) => { bound = resolve; });
  child.stdout!.on('data', (chunk: Buffer) => {
    const lines = (rest + chunk.toString()).split('\n');
    rest = lines.pop()!;
    for (const line of lines) {
      if (line === 'bound') bound();
      else receiver.push(line.replace(/\\n/g, '\n'));
    }
  });
  await isBound;
  return receiver;
}

test('READY=1 comes once the socket answers, with a STATUS naming counter, role and handoff state', async (t) => {
  const dir = tempDir(t);
  const notify = pathReceiver(t, path.join(dir, 'notify'));
  const sock = path.join(dir, 'sock');
  const service = await startServing(sock, ['-d', '50'], { NOTIFY_SOCKET: path.join(dir, 'notify') });
  t.after(() => service.stop());
  const ready = await notify.waitFor(/^READY=1\n/);
  assert.match(ready, /^READY=1\nSTATUS=counter 0; rootfs instance; serving; started fresh$/);
  // The socket was serving when READY was sent.
  assert.ok(service.lines.some((l) => l.startsWith('Listening on UNIX socket')));
  assert.match(await request(sock, 'get_counter\n'), /^-?[0-9]+\n$/);
  // The status follows the counter.
  await request(sock, 'set_counter 5000\n');
  await notify.waitFor(/^STATUS=counter 50[0-9][0-9]; rootfs instance; serving; started fresh$/, 3000);
  assert.equal(notify.count(/WATCHDOG=1/), 0, 'no watchdog pings without WATCHDOG_USEC');

  await service.stop();
  await notify.waitFor(/^STOPPING=1\nSTATUS=rootfs instance; Stopped by SIGTERM; the counter was 50[0-9][0-9]$/);
});

test('a handoff: the successor is READY after taking over; the predecessor says STOPPING=1 even after its notify path is gone', async (t) => {
  const dir = tempDir(t);
  const sock = path.join(dir, 'sock');
  const oldNotify = pathReceiver(t, path.join(dir, 'notify-old'));
  const newNotify = pathReceiver(t, path.join(dir, 'notify-new'));
  const old = await startServing(sock, ['-d', '20'], { NOTIFY_SOCKET: path.join(dir, 'notify-old') });
  t.after(() => old.stop());
  await oldNotify.waitFor(/^READY=1\n/);
  // As after switch-root, when the initrd instance sees an empty root: the
  // path no longer leads to the receiver, which still listens.
  fs.unlinkSync(path.join(dir, 'notify-old'));

  const successor = startService(['-s', sock, '-d', '20', '--takeover_existing_socket'], {
    NOTIFY_SOCKET: path.join(dir, 'notify-new'),
  });
  t.after(() => successor.stop());
  await successor.waitForLine(/^Took over from pid /);
  const ready = await newNotify.waitFor(/^READY=1\n/);
  assert.match(ready, new RegExp(`^READY=1\\nSTATUS=counter -?[0-9]+; rootfs instance; serving; took over from pid ${old.pid}$`));
  await oldNotify.waitFor(new RegExp(`^STATUS=counter [0-9]+; rootfs instance; handing off to pid ${successor.pid}$`));
  await oldNotify.waitFor(/^STOPPING=1\nSTATUS=rootfs instance; Handed off; exiting$/);
  assert.equal((await old.exited).code, 0);
});

test('an abstract NOTIFY_SOCKET (@name) is reached too', async (t) => {
  const dir = tempDir(t);
  const name = `early-service-test-${process.pid}-${Date.now()}`;
  const notify = await abstractReceiver(t, name);
  const service = await startServing(path.join(dir, 'sock'), ['-d', '50'], { NOTIFY_SOCKET: `@${name}` });
  t.after(() => service.stop());
  assert.match(await notify.waitFor(/^READY=1\n/), /^READY=1\nSTATUS=counter 0; rootfs instance; serving; started fresh$/);
});

test('WATCHDOG=1 pings every third of WATCHDOG_USEC while the ticker keeps time, and stop when it hangs', async (t) => {
  const dir = tempDir(t);
  const notify = pathReceiver(t, path.join(dir, 'notify'));
  const service: Service = await startServing(path.join(dir, 'sock'), ['-d', '10'], {
    NOTIFY_SOCKET: path.join(dir, 'notify'), WATCHDOG_USEC: '200000', EARLY_SERVICE_FAULT: 'ticker-hang',
  });
  t.after(() => { service.child.kill('SIGKILL'); });
  await notify.waitFor(/^READY=1\n/);
  await sleep(1000);
  const healthy = notify.count(/^WATCHDOG=1$/);
  // 67 ms apart: about 15 in that second (timers are not exact; a loaded machine is slower).
  assert.ok(healthy >= 9 && healthy <= 17, `expected about 15 pings in 1 s, got ${healthy}`);

  service.child.kill('SIGUSR2');
  await service.waitForLine(/^fault injection: ticker-hang$/);
  // Half a watchdog interval of slack before the ticker counts as stuck.
  await sleep(250);
  const atHang = notify.count(/^WATCHDOG=1$/);
  await sleep(1000);
  assert.equal(notify.count(/^WATCHDOG=1$/), atHang, 'no ping while the ticker is stuck');
  // The server itself still answers: only the watchdog tells systemd.
  assert.match(await request(path.join(dir, 'sock'), 'get_counter\n'), /^[0-9]+\n$/);
});

test('WATCHDOG_USEC meant for another pid, or malformed, means no pings; a bad NOTIFY_SOCKET is a warning, not a failure', async (t) => {
  const dir = tempDir(t);
  const notify = pathReceiver(t, path.join(dir, 'notify'));
  const service = await startServing(path.join(dir, 'sock'), ['-d', '50'], {
    NOTIFY_SOCKET: path.join(dir, 'notify'), WATCHDOG_USEC: '100000', WATCHDOG_PID: '1',
  });
  t.after(() => service.stop());
  await notify.waitFor(/^READY=1\n/);
  await sleep(400);
  assert.equal(notify.count(/WATCHDOG=1/), 0);

  const lost = await startServing(path.join(dir, 'sock2'), ['-d', '50'], { NOTIFY_SOCKET: path.join(dir, 'nobody-here') });
  t.after(() => lost.stop());
  assert.ok(lost.lines.some((l) => /^cannot reach NOTIFY_SOCKET .*nobody-here \(ENOENT\); not notifying systemd$/.test(l)),
    lost.lines.join('\n'));
  assert.match(await request(path.join(dir, 'sock2'), 'get_counter\n'), /^[0-9]+\n$/);
});
