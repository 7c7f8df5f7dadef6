// --state-file: the counter survives a crash of the instance that has no
// predecessor to hand it over; a file that is not trustworthy is refused.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from './harness';
import { StateFile, fnv1a64, formatState, parseState } from '../src/supervisor/state-file';
import { request, sleep, startService, startServing, tempDir } from './helpers';

test('a saved state reads back; foreign, edited or damaged text is rejected with the reason', () => {
  const text = formatState(-42n, new Date('2026-11-28T07:00:00Z'), 321);
  assert.deepEqual(parseState(text), { kind: 'loaded', counter: -42n, saved: '2026-11-28T07:00:00.000Z pid 321' });
  assert.deepEqual(parseState('{"counter": 5}\n'), { kind: 'rejected', reason: 'not an early-service state file' });
  assert.deepEqual(parseState(text.replace('counter -42', 'counter -43')), { kind: 'rejected', reason: 'checksum mismatch' });
  assert.deepEqual(parseState(text.slice(0, text.length - 5)), { kind: 'rejected', reason: 'no checksum line' });
  assert.deepEqual(parseState(text.slice(0, text.indexOf('checksum'))), { kind: 'rejected', reason: 'no checksum line' });
  // A value out of range, with a checksum that matches: the number is still checked.
  const body = formatState(1n).replace(/checksum .*\n$/, '').replace('counter 1\n', `counter ${2n ** 63n}\n`);
  assert.deepEqual(parseState(`${body}checksum ${fnv1a64(body)}\n`),
    { kind: 'rejected', reason: `bad counter "${2n ** 63n}"` });
});

test('load refuses symlinks, directories, oversized files and files of another owner', (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'counter');
  assert.deepEqual(new StateFile(file).load(), { kind: 'missing' });

  fs.writeFileSync(path.join(dir, 'real'), formatState(7n));
  fs.symlinkSync(path.join(dir, 'real'), file);
  assert.deepEqual(new StateFile(file).load(), { kind: 'rejected', reason: 'is a symbolic link' });
  fs.unlinkSync(file);

  fs.mkdirSync(file);
  assert.deepEqual(new StateFile(file).load(), { kind: 'rejected', reason: 'not a regular file' });
  fs.rmdirSync(file);

  fs.writeFileSync(file, formatState(7n) + 'x'.repeat(5000));
  assert.match((new StateFile(file).load() as { reason: string }).reason, /more than a state file holds/);

  fs.writeFileSync(file, formatState(7n));
  const loaded = new StateFile(file).load();
  assert.equal(loaded.kind, 'loaded');
  assert.equal((loaded as { counter: bigint }).counter, 7n);
  if (process.getuid?.() === 0) {
    fs.chownSync(file, 65534, 65534);
    assert.deepEqual(new StateFile(file).load(), { kind: 'rejected', reason: 'owned by uid 65534, not by us' });
  }
});

test('save is atomic: the file is replaced whole, private, with no temporary left behind', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'counter');
  const state = new StateFile(file);
  const errors: string[] = [];
  await state.save(1n, (m) => errors.push(m));
  const inode = fs.statSync(file).ino;
  await state.save(2n, (m) => errors.push(m));
  assert.equal(errors.length, 0, errors.join('; '));
  assert.notEqual(fs.statSync(file).ino, inode, 'a new file renamed over the old one, not rewritten in place');
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  assert.deepEqual(fs.readdirSync(dir), ['counter']);
  assert.equal((new StateFile(file).load() as { counter: bigint }).counter, 2n);

  // A directory that cannot be written: an error reported, the old file untouched.
  const missingDir = new StateFile(path.join(dir, 'no-such-dir', 'counter'));
  await missingDir.save(3n, (m) => errors.push(m));
  assert.equal(errors.length, 1);
  assert.match(errors[0]!, /cannot save the counter to .*no-such-dir\/counter: ENOENT/);
});

test('after a crash (SIGKILL) a restart with no predecessor resumes from the saved counter', async (t) => {
  const dir = tempDir(t);
  const sock = path.join(dir, 'sock');
  const file = path.join(dir, 'counter');
  const args = ['-d', '20', '--state-file', file, '--state-save-interval', '50'];
  const first = await startServing(sock, args);
  t.after(() => first.stop());
  assert.equal(await request(sock, 'set_counter 1000000\n'), 'previous value 0\n');
  // Crash once a save past the set value is on disk (how long a save takes,
  // two fsync()s, is the machine's business: on a busy one, hundreds of ms).
  const onDisk = (): bigint => {
    const loaded = new StateFile(file).load();
    return 'counter' in loaded ? loaded.counter : -1n;
  };
  await first.waitForLine(/^1000005$/);
  while (onDisk() <= 1000002n) await sleep(10);
  first.child.kill('SIGKILL');
  await first.exited;
  const lastLogged = first.ticks().at(-1)!;
  const lastSaved = onDisk();

  // As systemd's Restart= would: the rootfs command line, with a stale socket file.
  const second = startService(['-s', sock, '--takeover_existing_socket', ...args]);
  t.after(() => second.stop());
  const resumed = await second.waitForLine(/^Resuming from /);
  const saved = BigInt(/counter (-?[0-9]+)/.exec(resumed)![1]!);
  // It resumes from the last save on disk: past the set value, never ahead of what was logged.
  assert.equal(saved, lastSaved, `resumed at ${saved}, the file held ${lastSaved}`);
  assert.ok(saved > 1000002n && saved <= lastLogged + 1n, `resumed at ${saved}, last logged before the crash ${lastLogged}`);
  await second.waitForLine(/^Listening on UNIX socket /);
  await second.waitForLine(new RegExp(`^${saved}$`));
  assert.equal(second.ticks()[0], saved);
});

test('a stop (SIGTERM) saves the exact last value; the next start goes on from it', async (t) => {
  const dir = tempDir(t);
  const sock = path.join(dir, 'sock');
  const file = path.join(dir, 'counter');
  const args = ['-d', '20', '--state-file', file, '--state-save-interval', '3600000'];
  const first = await startServing(sock, args);
  await first.waitForLine(/^5$/);
  await first.stop();
  const stopped = /the counter was (-?[0-9]+)/.exec(first.lines.find((l) => l.startsWith('Stopped by SIGTERM'))!)![1]!;
  assert.equal((new StateFile(file).load() as { counter: bigint }).counter, BigInt(stopped));
  assert.equal(first.ticks().at(-1)! + 1n, BigInt(stopped), 'the saved value is the next one to log');

  const second = await startServing(sock, args);
  t.after(() => second.stop());
  await second.waitForLine(new RegExp(`^${stopped}$`));
  assert.equal(second.ticks()[0], BigInt(stopped));
});

test('a corrupt state file is reported and ignored, then replaced by a good one', async (t) => {
  const dir = tempDir(t);
  const sock = path.join(dir, 'sock');
  const file = path.join(dir, 'counter');
  fs.writeFileSync(file, formatState(99n).replace('counter 99', 'counter 98'));
  const service = await startServing(sock, ['-d', '20', '--state-file', file, '--state-save-interval', '50']);
  t.after(() => service.stop());
  assert.ok(service.lines.includes(`Ignoring ${file}: checksum mismatch; starting from 0`), service.lines.join('\n'));
  await service.waitForLine(/^3$/);
  assert.equal(service.ticks()[0], 0n);
  await sleep(200);
  assert.equal(new StateFile(file).load().kind, 'loaded');
});

test('a FIFO at the state file path does not hang the start: it is refused as not a regular file', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'counter');
  execFileSync('mkfifo', [file]);
  const service = await startServing(path.join(dir, 's.sock'), ['-d', '10', '--state-file', file]);
  t.after(() => service.stop());
  assert.ok(service.lines.some((l) => l === `Ignoring ${file}: not a regular file; starting from 0`), service.lines.join('\n'));
  assert.equal(await request(path.join(dir, 's.sock'), 'get_counter\n').then((r) => /^[0-9]+\n$/.test(r)), true);
});

test('a symlink planted at the temporary file name is not followed: its target stays untouched', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'counter');
  const target = path.join(dir, 'victim');
  fs.writeFileSync(target, 'precious\n');
  const stateFile = new StateFile(file);
  fs.symlinkSync(target, `${file}.tmp-${process.pid}`);
  const errors: string[] = [];
  await stateFile.save(42n, (message) => errors.push(message));
  assert.equal(fs.readFileSync(target, 'utf8'), 'precious\n');
  assert.deepEqual(errors, []);
  assert.deepEqual(new StateFile(file).load().kind, 'loaded');
  assert.ok(!fs.existsSync(`${file}.tmp-${process.pid}`));
});
