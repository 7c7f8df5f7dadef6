// The command line, through the real executable: errors are one line, exit 1.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from './harness';
import { defaultSpinNs, normalizeAliases } from '../src/supervisor/cli';
import { MAIN, startService } from './helpers';

function run(args: string[]) {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  return spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 10_000, env });
}

for (const [args, fragment] of [
  [['-d', 'abc'], "argument 'abc' is invalid"],
  [['-d', '0'], "argument '0' is invalid"],
  [['-d', '-5'], "argument '-5' is invalid"],
  [['-d', '1e3'], "argument '1e3' is invalid"],
  [['-d'], 'argument missing'],
  [['--timer-delay-ms=abc'], "argument 'abc' is invalid"],
  [['-s', 'x'.repeat(200)], 'is invalid'],
  [['--takeover_existing_socket'], 'needs -s'],
  [['--log-format', 'xml'], 'Allowed choices are json, pretty, journal'],
  [['--no-such-option'], "unknown option '--no-such-option'"],
  [['extra'], 'too many arguments'],
  [['--timer-spin', '-1'], "argument '-1' is invalid"],
  [['--timer-spin', '2000000'], 'from 0 to 1000000'],
  [['--state-save-interval', '5'], 'from 10 to 3600000'],
] as Array<[string[], string]>) {
  test(`${args.join(' ')} is refused with one error line`, () => {
    const result = run(args);
    assert.equal(result.status, 1);
    assert.equal(result.stdout, '');
    const lines = result.stderr.trim().split('\n');
    assert.equal(lines.length, 1, result.stderr);
    assert.match(lines[0], /^error: /);
    assert.ok(lines[0].includes(fragment), lines[0]);
  });
}

test('--help lists the seed options and exits 0', () => {
  const result = run(['--help']);
  assert.equal(result.status, 0);
  for (const option of ['-d, --timer_delay_ms', '-s, --server_socket_path', '--survive_systemd_kill_signal',
    '--takeover_existing_socket', '--timer-delay-ms']) {
    assert.ok(result.stdout.includes(option), option);
  }
});

test('-V prints the package version', () => {
  const result = run(['-V']);
  assert.equal(result.status, 0);
  assert.match(result.stdout, /^\d+\.\d+\.\d+\n$/);
});

test('kebab-case aliases are rewritten, values and positionals untouched', () => {
  assert.deepEqual(
    normalizeAliases(['--timer-delay-ms', '5', '--server-socket-path=/a-b', '--takeover-existing-socket', '-s', '--timer-delay-ms']),
    ['--timer_delay_ms', '5', '--server_socket_path=/a-b', '--takeover_existing_socket', '-s', '--timer_delay_ms']);
  assert.deepEqual(normalizeAliases(['--', '--timer-delay-ms']), ['--', '--timer-delay-ms']);
});

test('without -s it only ticks, from 0, at decimal delays', async (t) => {
  const service = startService(['-d', '0.5']);
  t.after(() => service.stop());
  // However slow the machine is to start it: 50 ticks, then a stop.
  await service.waitForTicks(50);
  await service.stop();
  assert.equal(service.lines[0], 'Not listening on a UNIX socket.');
  const ticks = service.ticks().map(Number);
  assert.deepEqual(ticks, ticks.map((_, i) => i));
});


test('the default spin: a quarter period up to 200 us at periods up to 2 ms, none above', () => {
  assert.equal(defaultSpinNs(100_000n), 25_000n);
  assert.equal(defaultSpinNs(1_000_000n), 200_000n);
  assert.equal(defaultSpinNs(2_000_000n), 200_000n);
  assert.equal(defaultSpinNs(2_000_001n), 0n);
  assert.equal(defaultSpinNs(100_000_000n), 0n);
});
