// The start of a process, whatever path it takes: one ticker thread, one
// ordered sequence with a stop that may come at any moment of it.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test, waitUntilStopped } from './harness';
import { Client, findGap, startService, startServing, tempDir } from './helpers';
import { formatState, parseState } from '../src/supervisor/state-file';

function threads(pid: number): number {
  return Number(/^Threads:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
}

test('a takeover that finds no predecessor starts fresh with one ticker: values in order, at the period, as many threads as a fresh start', async (t) => {
  const dir = tempDir(t);
  const fresh = await startServing(path.join(dir, 'a.sock'), ['-d', '2']);
  t.after(() => fresh.stop());
  const successor = startService(['-s', path.join(dir, 'b.sock'), '--takeover_existing_socket', '-d', '2']);
  t.after(() => successor.stop());
  await successor.waitForLine(/^nobody answers on .*; starting fresh$/);
  await successor.waitForTicks(400);
  await fresh.waitForTicks(10);
  // Two tickers on one counter log values out of order (1 0 2 4 3 5) and more of them than the period allows.
  const ticks = successor.ticks();
  assert.equal(findGap(ticks), undefined);
  assert.equal(ticks[0], 0n);
  assert.equal(threads(successor.pid), threads(fresh.pid), 'the successor runs as many threads as a fresh start');
});

test('a stop during a fresh start ends it cleanly: the state file keeps a real value, and the next start resumes from it', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'counter');
  const sock = path.join(dir, 's.sock');
  fs.writeFileSync(file, formatState(500n), { mode: 0o600 });
  for (let round = 0; round < 3; round++) {
    // The stop comes right after it listens, while the ticker thread is still
    // to be loaded: stopped there, the SIGTERM is the first thing it sees on
    // SIGCONT, whatever the machine's speed.
    const service = startService(['-s', sock, '-d', '10', '--state-file', file, '--state-save-interval', '10']);
    await service.waitForLine(/^Listening on UNIX socket /);
    // A client that stays connected keeps the stop's drain going for a while.
    const client = await Client.connect(sock);
    service.child.kill('SIGSTOP');
    await waitUntilStopped(service.pid);
    service.child.kill('SIGTERM');
    service.child.kill('SIGCONT');
    const exit = await service.exited;
    client.close();
    assert.deepEqual(exit, { code: 0, signal: null }, service.lines.join('\n'));
    const saved = parseState(fs.readFileSync(file, 'utf8'));
    assert.equal(saved.kind, 'loaded', `round ${round}: the state file is no longer valid: ${describe(saved)}`);
    assert.ok(saved.kind === 'loaded' && saved.counter >= 500n, `round ${round}: ${describe(saved)}`);
    assert.ok(service.lines.some((l) => /^Resuming from .*: counter [0-9]+ /.test(l)), service.lines.join('\n'));
  }
});

function describe(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? String(v) : v));
}
