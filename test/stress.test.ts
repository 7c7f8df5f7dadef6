// The stress tool: a CI-sized run of chained handoffs under load must report
// no violation, and its analysis must see each kind of violation.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnTracked, test } from './harness';
import { handoffPhases, latencyByWindow } from '../src/stress/handoff-phases';
import { type Report, type RunData, analyse } from '../src/stress/report';
import { ROOT } from './helpers';

test('200 chained handoffs under 8 clients, some successors killed before their commit: no violation', { timeout: 600_000 }, async () => {
  const json = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'es-stress-')), 'report.json');
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  const child = spawnTracked(process.execPath, [path.join(ROOT, 'dist', 'src', 'stress', 'stress.js'), '--handoffs', '200',
    '--clients', '8', '--kill-at', 'after-receive', '--kill-every', '25', '--json', json], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let output = '';
  child.stdout!.on('data', (d) => { output += d; });
  child.stderr!.on('data', (d) => { output += d; });
  const code = await new Promise((resolve) => child.on('close', resolve));
  const report = JSON.parse(fs.readFileSync(json, 'utf8')) as Report;
  fs.rmSync(path.dirname(json), { recursive: true, force: true });
  assert.deepEqual(report.violations, [], output);
  assert.equal(code, 0);
  assert.equal(report.oldProcesses.exited, 200);
  assert.equal(report.successorsKilled, 8);
  assert.ok(report.requests.answered > 10_000, `only ${report.requests.answered} requests`);
  assert.ok(report.writes.acknowledged > 1000);
  assert.ok(report.path.polls > 10_000);
});

function run(overrides: Partial<RunData>): RunData {
  const at = (ms: number): bigint => BigInt(ms) * 1_000_000n;
  return {
    handoffs: 1, kills: 0, timerDelayMs: 10,
    ticksByProcess: [[{ value: 0n, at: at(0) }, { value: 1n, at: at(10) }], [{ value: 2n, at: at(20) }]],
    load: { answered: 5, retried: 0, failures: new Map(), failureSamples: [], failureTimes: [], times: { startNs: [], latencyMs: [] }, writes: [], attempted: new Set() },
    pathPolls: 100, pathMissing: 0, oldExits: [{ code: 0, signal: null }], latenciesMs: [5], handoffRecords: [],
    fresh: { fds: 20, otherFds: 10, otherKinds: [], threads: 11, rssKiB: 1000 }, last: { fds: 20, otherFds: 10, otherKinds: [], threads: 11, rssKiB: 1000 },
    ...overrides,
  };
}

test('the analysis passes a clean run and names each kind of violation', () => {
  assert.deepEqual(analyse(run({})).violations, []);
  const gap = analyse(run({ ticksByProcess: [[{ value: 0n, at: 0n }], [{ value: 2n, at: 1n }]] }));
  assert.deepEqual([gap.ticks.gaps, gap.ticks.repeated], [1, 0]);
  const repeat = analyse(run({ ticksByProcess: [[{ value: 5n, at: 0n }], [{ value: 5n, at: 1n }]] }));
  assert.deepEqual([repeat.ticks.gaps, repeat.ticks.repeated], [0, 1]);
  // A jump to a value a client set is no gap.
  const set = analyse(run({
    ticksByProcess: [[{ value: 0n, at: 0n }, { value: 1_000_000_000_000n, at: 1n }]],
    load: { answered: 1, retried: 0, failures: new Map(), failureSamples: [], failureTimes: [], times: { startNs: [], latencyMs: [] }, attempted: new Set([1_000_000_000_000n]),
      writes: [{ value: 1_000_000_000_000n, previous: 0n, at: 0 }] },
  }));
  assert.deepEqual(set.violations, []);
  // A write acknowledged but neither ticked nor seen by a later write is lost.
  const lost = analyse(run({
    load: { answered: 1, retried: 0, failures: new Map(), failureSamples: [], failureTimes: [], times: { startNs: [], latencyMs: [] }, attempted: new Set([7_000_000n]),
      writes: [{ value: 7_000_000n, previous: 0n, at: 0 }] },
  }));
  assert.equal(lost.writes.lost, 1);
  const failed = analyse(run({
    load: { answered: 1, retried: 0, failures: new Map([['timeout', 2]]), failureSamples: [], failureTimes: [], times: { startNs: [], latencyMs: [] }, writes: [], attempted: new Set() },
  }));
  assert.match(failed.violations.join(), /2 failed requests/);
  assert.match(analyse(run({ pathMissing: 3 })).violations.join(), /missing 3 times/);
  assert.match(analyse(run({ oldExits: [{ code: 1, signal: null }] })).violations.join(), /did not exit 0/);
  assert.match(analyse(run({ last: { fds: 21, otherFds: 10, otherKinds: [], threads: 11, rssKiB: 1000 } })).violations.join(), /descriptors grew from 20 to 21/);
  assert.match(analyse(run({ last: { fds: 20, otherFds: 10, otherKinds: [], threads: 12, rssKiB: 1000 } })).violations.join(), /threads grew from 11 to 12/);
  assert.equal(analyse(run({})).ticks.longestAcrossHandoffMs, 10);
});

test('the phases of a handoff add up to its total, on the successor\'s clock; requests are split by handoff window', () => {
  const ms = (value: number): bigint => BigInt(Math.round(value * 1e6));
  const record = {
    successorLine: 'node ready 30.0, modules loaded 45.0, ticker ready 60.0, asked 61.0, answered 80.0, received 81.0, committed 82.0, serving 83.0',
    donorLine: 'settled 2.0, past the tick 10.0, frozen 10.1, log flushed 11.0, sent 19.5, committed 21.0, ticker stopped 45.0, drained 121.0, ended 131.0',
    startedAtNs: ms(1000), oldExitedAtNs: ms(1000 + 200),
  };
  const phases = new Map(handoffPhases([record]).map((p) => [p.phase, p.p50]));
  assert.equal(phases.get("successor: node's start"), 30);
  assert.equal(phases.get('successor: modules'), 15);
  assert.equal(phases.get('donor: settle connections'), 2);
  assert.equal(phases.get('donor: wait past the next tick'), 8);
  assert.equal(phases.get('commit (donor hears it)'), 1.5);
  assert.equal(phases.get('donor: drain its clients and stop its ticker (at once)'), 110);
  // asked (61) + ended (131) = 192 of 200 ms: the rest is 8.
  assert.equal(phases.get("the rest: exec until node's clock, old process's last lines and exit"), 8);
  assert.equal(phases.get('total: successor exec -> old process exit'), 200);
  // A handoff whose lines were not both found is left out, not counted as zero.
  assert.equal(handoffPhases([{ ...record, donorLine: undefined }]).length, 0);

  const split = latencyByWindow({ startNs: [Number(ms(900)), Number(ms(1199)), Number(ms(1300)), Number(ms(995))], latencyMs: [1, 2, 3, 10] },
    [record]);
  assert.deepEqual([split.inside.requests, split.outside.requests], [2, 2]);
  assert.equal(split.inside.max, 10);
  assert.equal(split.outside.max, 3);
});
