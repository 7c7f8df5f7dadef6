// The checker of the real-systemd scenarios (test/systemd/tick-lines.ts): it
// must see every kind of broken tick sequence, and count missing ticks
// exactly, with and without writes in between.
import assert from 'node:assert/strict';
import { test } from './harness';
import { checkTicks, parseTickLines, parseWritesLog, type TickLine, type WriteRecord } from './systemd/tick-lines';

const W = 1_000_000_000_000;
const M = 1_000_000;

function ticks(values: number[], pids: number[] = []): TickLine[] {
  return values.map((value, i) => ({ monoUs: i * 100_000, pid: pids[i] ?? 10, value }));
}

test('parses tick lines of journalctl -o short-monotonic, skipping every other line', () => {
  const journal = [
    '[ 8762.080768] es-systemd-test systemd[1]: Starting early-service.service - early-service...',
    '[ 8763.468193] es-systemd-test node[39]: Listening on UNIX socket /run/early-service/early-service.sock',
    '[ 8763.560728] es-systemd-test node[39]: 0',
    '[ 8763.646984] es-systemd-test node[39]: 1',
    '[ 8764.000001] es-systemd-test node[52]: 1000000000000',
    '[ 8764.100001] es-systemd-test node[70]: reloaded: pid 80 serves',
    '-- Boot 1234 --',
  ].join('\n');
  assert.deepEqual(parseTickLines(journal), [
    { monoUs: 8763_560728, pid: 39, value: 0 },
    { monoUs: 8763_646984, pid: 39, value: 1 },
    { monoUs: 8764_000001, pid: 52, value: W },
  ]);
});

test('parses the writes log', () => {
  assert.deepEqual(parseWritesLog(`${W} acked 17\n${W + M} retry handing-off\n${W + 2 * M} unsent ECONNREFUSED\n${W + 3 * M} unknown closed\n`), [
    { value: W, outcome: 'acked', previous: 17 },
    { value: W + M, outcome: 'retry', detail: 'handing-off' },
    { value: W + 2 * M, outcome: 'unsent', detail: 'ECONNREFUSED' },
    { value: W + 3 * M, outcome: 'unknown', detail: 'closed' },
  ]);
  assert.throws(() => parseWritesLog(`${W} lost 3\n`), /cannot read/);
});

test('a continuous sequence: nothing missing, nothing out of order', () => {
  const r = checkTicks(ticks([5, 6, 7, 8]), []);
  assert.equal(r.missing, 0);
  assert.deepEqual(r.disorder, []);
  assert.deepEqual(r.gaps, []);
});

test('a value logged twice, or the counter going back, is disorder', () => {
  const r = checkTicks(ticks([5, 6, 6, 7, 4, 5]), []);
  assert.deepEqual(r.disorder.map((d) => [d.from, d.to, d.why]), [[6, 6, 'logged twice'], [7, 4, 'went back']]);
});

test('lines missing without writes: counted exactly, and where the process changes', () => {
  const r = checkTicks(ticks([5, 6, 9, 10, 12], [1, 1, 1, 2, 2]), []);
  assert.equal(r.missing, 3);
  assert.deepEqual(r.gaps.map((g) => [g.from, g.to, g.missing]), [[6, 9, 2], [10, 12, 1]]);
  assert.deepEqual(r.processChanges.map((g) => [g.from, g.to, g.missing]), [[9, 10, 0]]);
});

test('jumps to written values are no loss when the writes say no tick went unlogged', () => {
  // 6 logged; write W finds 7 (nothing lost); tick logs W; W+1; write W+M finds W+2 (tick W+1 logged, W+2 not yet ticked...)
  const writes: WriteRecord[] = [
    { value: W, outcome: 'acked', previous: 7 },
    { value: W + M, outcome: 'acked', previous: W + 2 },
    { value: W + 2 * M, outcome: 'acked', previous: W + M }, // right after the previous write: no tick between
  ];
  const r = checkTicks(ticks([6, W, W + 1, W + 2 * M]), writes);
  assert.equal(r.missing, 0, JSON.stringify(r));
  assert.deepEqual(r.disorder, []);
});

test('ticks lost around writes are counted from the writes\' previous values', () => {
  const writes: WriteRecord[] = [
    { value: W, outcome: 'acked', previous: 9 }, // 7, 8 ticked, not logged
    { value: W + M, outcome: 'acked', previous: W + 3 }, // W, W+1, W+2 ticked, not logged (W+… between the lines)
  ];
  // 6, then W + M + 1: the ticks W+M (its line) lost too.
  const r = checkTicks(ticks([6, W + M + 1]), writes);
  assert.equal(r.missing, 2 + 3 + 1);
});

test('a write that found the counter below a logged value is disorder (the counter went back)', () => {
  const writes: WriteRecord[] = [{ value: W, outcome: 'acked', previous: 5 }];
  const r = checkTicks(ticks([5, 6, 7, W]), writes);
  assert.equal(r.disorder.length, 1);
  assert.match(r.disorder[0]!.why, /found the counter at 5, below 8/);
});

test('a write of unknown outcome makes its pair unmeasured; retried, unsent and reset writes never count', () => {
  const writes: WriteRecord[] = [
    { value: W - M, outcome: 'unknown', detail: 'ECONNRESET' },
    { value: W, outcome: 'unknown', detail: 'closed' },
    { value: W + M, outcome: 'retry', detail: 'handing-off' },
    { value: W + 2 * M, outcome: 'unsent', detail: 'ECONNREFUSED' },
  ];
  const r = checkTicks(ticks([6, W, W + 1, W + 3]), writes);
  assert.equal(r.unmeasured, 1);
  assert.equal(r.missing, 1);
  // A value only a retried write carried, logged: a huge gap, never hidden.
  const bogus = checkTicks(ticks([6, W + M]), writes.slice(2));
  assert.ok(bogus.missing > 1000);
  // The server never read a write its connection was reset on: a value only it carried is a huge gap.
  const reset = checkTicks(ticks([6, W]), [{ value: W, outcome: 'unknown', detail: 'ECONNRESET' }]);
  assert.equal(reset.unmeasured, 0);
  assert.equal(reset.missing, W - 7);
  assert.equal(checkTicks(ticks([6, W]), [{ value: W, outcome: 'unknown', detail: 'closed' }]).unmeasured, 1);
});
