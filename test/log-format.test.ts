// What the log looks like: journald's prefixes under systemd, pino's JSON otherwise.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import test from 'node:test';
import { MAIN, sleep, tempDir } from './helpers';

/**
 * Runs the service with stdout on a file, as systemd would connect a stream,
 * until it has logged a few ticks (however long a loaded machine takes).
 */
async function runToFile(dir: string, args: string[], env: (stdout: fs.Stats) => NodeJS.ProcessEnv): Promise<string[]> {
  const file = path.join(dir, 'out.log');
  const fd = fs.openSync(file, 'w');
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env(fs.fstatSync(fd)) };
  delete childEnv.NODE_EXTRA_CA_CERTS;
  const child = spawn(process.execPath, [MAIN, '-d', '20', ...args], { stdio: ['ignore', fd, 'inherit'], env: childEnv });
  fs.closeSync(fd);
  const deadline = Date.now() + 15_000;
  while (fs.readFileSync(file, 'utf8').split('\n').filter((l) => /(^|[>" ])5($|")/.test(l)).length === 0 && Date.now() < deadline) {
    await sleep(20);
  }
  child.kill('SIGTERM');
  await new Promise((resolve) => child.on('exit', resolve));
  return fs.readFileSync(file, 'utf8').trimEnd().split('\n');
}

test('under systemd (JOURNAL_STREAM names stdout): plain lines with priority prefixes', async (t) => {
  const dir = tempDir(t);
  const lines = await runToFile(dir, ['-s', path.join(dir, 's.sock')],
    (stat) => ({ JOURNAL_STREAM: `${stat.dev}:${stat.ino}` }));
  assert.equal(lines[0], `<5>Listening on UNIX socket ${path.join(dir, 's.sock')}`);
  assert.deepEqual(lines.slice(1, 4), ['<6>0', '<6>1', '<6>2']);
});

test('JOURNAL_STREAM naming another file does not switch the format', async (t) => {
  const dir = tempDir(t);
  const lines = await runToFile(dir, [], () => ({ JOURNAL_STREAM: '1:1' }));
  const first = JSON.parse(lines[0]) as Record<string, unknown>;
  assert.equal(first.msg, 'Not listening on a UNIX socket.');
});

test('otherwise pino JSON, one object per line, the tick value as the message', async (t) => {
  const dir = tempDir(t);
  const lines = await runToFile(dir, [], () => ({ JOURNAL_STREAM: undefined }));
  const records = lines.map((l) => JSON.parse(l) as { level: number; msg: string; pid: number; time: number });
  assert.equal(records[0].msg, 'Not listening on a UNIX socket.');
  const ticks = records.filter((r) => /^\d+$/.test(r.msg));
  assert.ok(ticks.length >= 5);
  assert.deepEqual(ticks.slice(0, 3).map((r) => [r.level, r.msg]), [[30, '0'], [30, '1'], [30, '2']]);
  assert.equal(typeof records[0].time, 'number');
  assert.match(records[records.length - 1].msg, /^Stopped by SIGTERM; the counter was \d+$/);
});

test('--log-format pretty: time, name and pid, then the message', async (t) => {
  const dir = tempDir(t);
  const lines = await runToFile(dir, ['--log-format', 'pretty'], () => ({}));
  assert.match(lines[0], /^\d\d:\d\d:\d\d\.\d{3} early-service\[\d+\]: Not listening on a UNIX socket\.$/);
  assert.match(lines[1], /^\d\d:\d\d:\d\d\.\d{3} early-service\[\d+\]: 0$/);
});
