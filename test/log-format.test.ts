// What the log looks like: journald's prefixes under systemd, pino's JSON otherwise.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { endProcess, spawnTracked, test } from './harness';
import { MAIN, findGap, request, sleep, tempDir } from './helpers';
import { createLogger } from '../src/ipc/log-line';

/**
 * Runs the service with stdout on a file, as systemd would connect a stream,
 * until it has logged a few ticks (however long a loaded machine takes).
 */
async function runToFile(dir: string, args: string[], env: (stdout: fs.Stats) => NodeJS.ProcessEnv): Promise<string[]> {
  const file = path.join(dir, 'out.log');
  const fd = fs.openSync(file, 'w');
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env(fs.fstatSync(fd)) };
  delete childEnv.NODE_EXTRA_CA_CERTS;
  const child = spawnTracked(process.execPath, [MAIN, '-d', '20', ...args], { stdio: ['ignore', fd, 'inherit'], env: childEnv });
  fs.closeSync(fd);
  const deadline = Date.now() + 15_000;
  while (fs.readFileSync(file, 'utf8').split('\n').filter((l) => /(^|[>" ])5($|")/.test(l)).length === 0 && Date.now() < deadline) {
    await sleep(20);
  }
  await endProcess(child);
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

test('a stdout nobody reads (a full pipe): the ticker and the server go on, lines wait in the queue, the ones beyond it are counted', async (t) => {
  const dir = tempDir(t);
  const fifo = path.join(dir, 'stdout');
  const sock = path.join(dir, 's.sock');
  execFileSync('mkfifo', [fifo]);
  // Our read end, opened first and not read until the end of the test.
  const readEnd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  t.after(() => fs.closeSync(readEnd));
  const env: NodeJS.ProcessEnv = { ...process.env, FIFO: fifo };
  delete env.NODE_EXTRA_CA_CERTS;
  // Half a second of lines at 10 kHz (~5,000) fit in the queue, beside the pipe's 64 KiB.
  const child = spawnTracked('/bin/sh', ['-c', 'exec "$@" > "$FIFO"', 'sh', process.execPath, MAIN,
    '-d', '0.1', '--log-format', 'journal', '--log-queue', '0.5', '-s', sock], { stdio: ['ignore', 'ignore', 'inherit'], env });
  t.after(() => endProcess(child));
  while (!fs.existsSync(sock)) await sleep(10);
  // The pipe and then the queue fill up in a few seconds.
  await sleep(3000);
  const first = BigInt((await request(sock, 'get_counter\n')).trim());
  await sleep(1000);
  const second = BigInt((await request(sock, 'get_counter\n')).trim());
  // Still ticking with the pipe and the queue full (a blocked ticker would not move at all).
  assert.ok(second - first > 3000n, `counter moved by only ${second - first} in 1 s`);

  // Drain the pipe: what was queued comes out whole, then the count of what did not fit.
  const buffer = Buffer.alloc(1 << 20);
  let text = '';
  const deadline = Date.now() + 10_000;
  while (!/log lines dropped: the log queue was full/.test(text) && Date.now() < deadline) {
    try {
      text += buffer.toString('utf8', 0, fs.readSync(readEnd, buffer));
    } catch {
      await sleep(10);
    }
  }
  const lines = text.split('\n');
  const at = lines.findIndex((l) => l.includes('log lines dropped'));
  assert.ok(at >= 0, 'no drop notice after draining');
  // A busy machine may make the ticker miss ticks meanwhile: their warnings are counted apart.
  assert.match(lines[at]!, /^<4>[1-9][0-9]* log lines dropped: the log queue was full( \([0-9]+ of them (a warning or an error|warnings or errors)\))?$/);
  // Before it, thousands of tick lines, none missing: the queue held them while the pipe was full.
  const before = lines.slice(0, at).filter((l) => /^<6>[0-9]+$/.test(l)).map((l) => BigInt(l.slice(3)));
  assert.ok(before.length > 5000, `only ${before.length} lines came out before the notice`);
  assert.equal(findGap(before), undefined);
  // The count covers the tick lines missing between the last before it and the first after it
  // (and any other line of the ticker's lost meanwhile, such as a "missed ticks" warning).
  const after = lines.slice(at + 1).find((l) => /^<6>[0-9]+$/.test(l));
  if (after !== undefined) {
    const count = BigInt(/^<4>([0-9]+)/.exec(lines[at]!)![1]!);
    const missing = BigInt(after.slice(3)) - before.at(-1)! - 1n;
    assert.ok(count >= missing && count <= missing + 100n, `count ${count}, ${missing} tick lines missing`);
  }
});


test('lines refused by the queue are counted, warnings apart, and reported before the next line taken', () => {
  const taken: string[] = [];
  let full = true;
  const log = createLogger('journal', (text) => {
    if (full) return false;
    taken.push(text);
    return true;
  });
  log.info('1');
  log.warn('missed 3 ticks');
  log.info('2');
  full = false;
  log.info('3');
  assert.deepEqual(taken, ['<4>3 log lines dropped: the log queue was full (1 of them a warning or an error)\n', '<6>3\n']);
  full = true;
  log.info('4');
  full = false;
  log.info('5');
  assert.deepEqual(taken.slice(2), ['<4>1 log lines dropped: the log queue was full\n', '<6>5\n']);
});
