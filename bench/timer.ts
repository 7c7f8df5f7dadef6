// Timer accuracy: the service ticks for 10 s at 10 ms, 1 ms and 0.1 ms; this
// process reads the tick lines as they come (nothing else running in it) and
// counts ticks achieved against expected, and the error of each interval
// against the period. Line arrival adds the pipe's wake-up jitter (tens of
// microseconds) to the ticker's own.
import { benchEnv, median, percentile, printTable, sleep, writeJson } from './common';
import { spawn } from 'node:child_process';
import { MAIN } from './common';

const DURATION_S = Number(process.env.BENCH_TIMER_SECONDS ?? 10);

async function measure(periodMs: number): Promise<Record<string, number | string>> {
  const child = spawn(process.execPath, [MAIN, '-d', String(periodMs), '--log-format', 'journal'],
    { stdio: ['ignore', 'pipe', 'inherit'], env: benchEnv() });
  const arrivals: bigint[] = [];
  let rest = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    const at = process.hrtime.bigint();
    const parts = (rest + chunk.toString('latin1')).split('\n');
    rest = parts.pop() ?? '';
    for (const part of parts) if (/^<6>\d+$/.test(part)) arrivals.push(at);
  });
  // Measure from the first tick on, for DURATION_S.
  while (arrivals.length === 0) await sleep(5);
  const start = arrivals[0];
  await sleep(DURATION_S * 1000 + 50);
  child.kill('SIGTERM');
  await new Promise((resolve) => child.once('close', resolve));
  const end = start + BigInt(DURATION_S * 1e9);
  const inWindow = arrivals.filter((t) => t < end);
  const errorsMs = inWindow.slice(1).map((t, i) => Math.abs(Number(t - inWindow[i]) / 1e6 - periodMs));
  const expected = Math.round((DURATION_S * 1000) / periodMs);
  return {
    period_ms: periodMs, expected, achieved: inWindow.length, 'achieved_%': (inWindow.length / expected) * 100,
    err_p50_ms: median(errorsMs), err_p99_ms: percentile(errorsMs, 0.99), err_max_ms: Math.max(...errorsMs),
  };
}

async function main(): Promise<void> {
  const rows = [];
  for (const period of [10, 1, 0.1]) rows.push(await measure(period));
  printTable(`Timer accuracy (${DURATION_S} s each; interval error = |interval - period| at line arrival)`, rows);
  process.stdout.write(`written: ${writeJson('timer', { durationSeconds: DURATION_S, rows })}\n`);
}

void main();
