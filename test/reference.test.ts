// The plain C reference (test/reference/early-service-ref.c), the yardstick
// of the boot test's three-way comparison: it must do the seed's job, or the
// comparison measures something else. Compiled here with cc; real sockets,
// a real sd_notify datagram, handoffs with itself and with early-service.
import { test } from './harness';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { DgramSocket } from 'node-unix-socket';
import { ROOT, type Service, findGap, request, startProgram, startService, tempDir } from './helpers';

const SOURCE = path.join(ROOT, 'test', 'reference', 'early-service-ref.c');
const BINARY = path.join(ROOT, 'build', 'reference', 'early-service-ref');

let built: string | undefined;
function reference(): string {
  if (built) return built;
  fs.mkdirSync(path.dirname(BINARY), { recursive: true });
  const output = `${BINARY}.${process.pid}.tmp`;
  try {
    execFileSync('cc', ['-std=gnu11', '-Os', '-Wall', '-Wextra', '-Werror', '-o', output, SOURCE], { stdio: 'pipe', timeout: 60_000 });
  } catch (error) {
    const e = error as { code?: string; stderr?: Buffer };
    const hint = '(Debian: apt-get install --no-install-recommends gcc libc6-dev; scripts/setup-debian.sh installs everything the tests need)';
    assert.fail(e.code === 'ENOENT' ? `no cc: the C reference needs a C compiler ${hint}`
      : `compiling ${SOURCE} failed:\n${e.stderr?.toString() ?? String(error)}\nIt needs a C compiler and libc's headers ${hint}`);
  }
  fs.renameSync(output, BINARY);
  built = BINARY;
  return built;
}

/** Starts the reference, stopped when the test ends (even if it never serves), and waits until it serves. */
async function startReference(t: { after: (fn: () => Promise<void>) => void }, socketPath: string, extra: string[] = [],
  env?: NodeJS.ProcessEnv): Promise<Service> {
  const service = startProgram(reference(), ['-d', '20', '-s', socketPath, ...extra], env);
  t.after(() => service.stop());
  await service.waitForLine(/^(Listening on UNIX socket|Successfully received file descriptor for) /);
  return service;
}

test('the C reference serves the protocol, says READY=1 over $NOTIFY_SOCKET and keeps the \'@\'', async (t) => {
  const dir = tempDir(t);
  const notifyPath = path.join(dir, 'notify');
  const notify = new DgramSocket();
  notify.bind(notifyPath);
  t.after(() => notify.close());
  const messages: string[] = [];
  notify.on('data', (data: Buffer) => messages.push(data.toString()));

  const sock = path.join(dir, 'sock');
  const ref = await startReference(t, sock, ['--survive_systemd_kill_signal'], { NOTIFY_SOCKET: notifyPath });
  assert.equal(fs.readFileSync(`/proc/${ref.pid}/cmdline`, 'latin1')[0], '@');
  for (let i = 0; i < 100 && !messages.includes('READY=1'); i++) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(messages, ['READY=1']);

  assert.match(await request(sock, 'get_counter\n'), /^\d+\n$/);
  assert.match(await request(sock, 'set_counter -5\r\n'), /^previous value \d+\n$/);
  const after = Number(await request(sock, 'get_counter\n'));
  assert.ok(after >= -5 && after < 50, `get_counter after set_counter -5: ${after}`);
  assert.equal(await request(sock, 'set_counter 12x\nset_counter 9223372036854775808\nhello\n', 3),
    'error: invalid number\nerror: invalid number\nInvalid command\n');
  assert.equal(await request(sock, `${'x'.repeat(5000)}\n`), 'error: line too long\n');
  // The ticks were printed bare and consecutive, -5 onwards after the set.
  const ticks = ref.ticks();
  assert.ok(ticks.length > 0);
  const afterSet = ticks.slice(ticks.indexOf(-5n));
  assert.equal(findGap(afterSet), undefined);
});

test('the C reference hands over to itself and to early-service, and takes over from early-service (the seed\'s exchange)',
  async (t) => {
    const dir = tempDir(t);
    const sock = path.join(dir, 'sock');
    const first = await startReference(t, sock);
    const second = await startReference(t, sock, ['--takeover_existing_socket']);
    assert.deepEqual(await first.exited, { code: 0, signal: null });
    const ours = startService(['-s', sock, '-d', '20', '--takeover_existing_socket']);
    t.after(() => ours.stop());
    await ours.waitForLine(/^Successfully received file descriptor for /);
    assert.deepEqual(await second.exited, { code: 0, signal: null });
    await ours.waitForLine(/^\d+$/);
    const third = await startReference(t, sock, ['--takeover_existing_socket']);
    assert.deepEqual(await ours.exited, { code: 0, signal: null });
    assert.match(await request(sock, 'get_counter\n'), /^\d+\n$/);
    await third.waitForLine(/^\d+$/);

    // One counter across four processes: no tick lost or repeated.
    const all = [first, second, ours, third].map((p) => p.ticks());
    for (const [i, ticks] of all.entries()) assert.ok(ticks.length > 0, `process ${i} ticked nothing`);
    const joined = all.flat();
    assert.equal(joined[0], 0n);
    assert.equal(findGap(joined), undefined, `ticks across the handoffs: ${all.map((x) => `${x[0]}..${x.at(-1)}`).join(', ')}`);
    for (const line of ['Passing file descriptor for', 'Returning counter to client and terminating the process']) {
      assert.ok(first.lines.some((l) => l.startsWith(line)), `the first reference did not log "${line}"`);
    }
    assert.ok(second.lines.some((l) => l === `Successfully received file descriptor for ${sock}`));
  });
