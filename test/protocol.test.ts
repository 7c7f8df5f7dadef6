// The line protocol, without I/O: command parsing and the line splitter.
import assert from 'node:assert/strict';
import { test } from './harness';
import { LineReader, MAX_LINE_BYTES, TOO_LONG, describeBytes, parseCommand, parseCounter } from '../src/ipc/protocol';

test('commands are recognised exactly', () => {
  assert.deepEqual(parseCommand('get_counter'), { kind: 'get_counter' });
  assert.deepEqual(parseCommand('pass_state_and_terminate'), { kind: 'handoff', form: 'seed' });
  assert.deepEqual(parseCommand('pass_state_v1'), { kind: 'handoff', form: 'extended' });
  assert.deepEqual(parseCommand('set_counter 42'), { kind: 'set_counter', value: 42n });
  assert.deepEqual(parseCommand('set_counter -7'), { kind: 'set_counter', value: -7n });
  assert.deepEqual(parseCommand('set_counter +7'), { kind: 'set_counter', value: 7n });
  for (const unknown of ['get_counter ', ' get_counter', 'GET_COUNTER', 'get', '', 'pass_state_and_terminate now']) {
    assert.equal(parseCommand(unknown).kind, 'unknown', JSON.stringify(unknown));
  }
});

test('set_counter takes exactly a signed 64-bit decimal', () => {
  assert.equal(parseCounter('9223372036854775807'), 2n ** 63n - 1n);
  assert.equal(parseCounter('-9223372036854775807'), -(2n ** 63n) + 1n);
  // -2^63 is the value reserved for "frozen for a handoff".
  for (const bad of ['-9223372036854775808', '9223372036854775808', '12345678901234567890', 'abc', '', '1 ', ' 1',
    '1x', '0x10', '1e3', '1.5', '--1', '+', '-']) {
    assert.equal(parseCounter(bad), undefined, JSON.stringify(bad));
    assert.deepEqual(parseCommand(`set_counter ${bad}`), { kind: 'invalid_number' }, JSON.stringify(bad));
  }
  assert.deepEqual(parseCommand('set_counter'), { kind: 'invalid_number' });
});

/** Every line the reader has now, and whether the stream ended on a line too long. */
function drain(reader: LineReader): { lines: string[]; tooLong: boolean } {
  const lines: string[] = [];
  for (;;) {
    const line = reader.next();
    if (line === undefined) return { lines, tooLong: false };
    if (line === TOO_LONG) return { lines, tooLong: true };
    lines.push(line);
  }
}

function push(reader: LineReader, text: string | Buffer): { lines: string[]; tooLong: boolean } {
  reader.push(Buffer.from(text));
  return drain(reader);
}

test('pipelined lines come out in order, CR before LF dropped', () => {
  const reader = new LineReader();
  assert.deepEqual(push(reader, 'get_counter\nset_counter 5\r\nfoo\n').lines, ['get_counter', 'set_counter 5', 'foo']);
  assert.equal(reader.pendingBytes, 0);
});

test('a line split across chunks is assembled', () => {
  const reader = new LineReader();
  assert.deepEqual(push(reader, 'get_co').lines, []);
  assert.equal(reader.pendingBytes, 6);
  assert.equal(reader.hasLine, false);
  assert.deepEqual(push(reader, 'unter\r').lines, []);
  assert.deepEqual(push(reader, '\nset_').lines, ['get_counter']);
  assert.deepEqual(push(reader, 'counter 1\n').lines, ['set_counter 1']);
});

test('lines are taken one at a time; the rest waits as bytes', () => {
  const reader = new LineReader();
  reader.push(Buffer.from('a\nb\nc'));
  assert.equal(reader.next(), 'a');
  assert.equal(reader.hasLine, true);
  assert.equal(reader.pendingBytes, 3);
  assert.equal(reader.next(), 'b');
  assert.equal(reader.hasLine, false);
  assert.equal(reader.next(), undefined);
  assert.deepEqual(reader.takePending(), Buffer.from('c'));
  assert.equal(reader.pendingBytes, 0);
});

test('a line of MAX_LINE_BYTES passes, one byte more is refused, complete or not', () => {
  assert.deepEqual(push(new LineReader(), `${'x'.repeat(MAX_LINE_BYTES)}\n`),
    { lines: ['x'.repeat(MAX_LINE_BYTES)], tooLong: false });
  assert.deepEqual(push(new LineReader(), `a\n${'x'.repeat(MAX_LINE_BYTES + 1)}\nb\n`),
    { lines: ['a'], tooLong: true });
  const reader = new LineReader();
  assert.deepEqual(push(reader, Buffer.alloc(MAX_LINE_BYTES, 'y')), { lines: [], tooLong: false });
  assert.deepEqual(push(reader, 'y'), { lines: [], tooLong: true });
});

test('non-UTF-8 bytes survive as latin1 and are escaped for logs', () => {
  const [line] = push(new LineReader(), Buffer.from([0xff, 0xfe, 0x00, 0x41, 0x0a])).lines as [string];
  assert.equal(line.length, 4);
  assert.equal(parseCommand(line).kind, 'unknown');
  assert.equal(describeBytes(line), '\\xff\\xfe\\x00A');
  assert.match(describeBytes('z'.repeat(200)), /^z{80}…\(200 bytes\)$/);
});
