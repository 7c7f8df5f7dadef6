// Timer accuracy: the service ticks for 10 s at 10 ms, 1 ms and 0.1 ms (and
// at 1 ms again while 8 clients hammer its socket); ticks achieved against
// expected, and the error of each interval against the period.
//
// The tick lines go to a FIFO that a thread of this process reads in a busy
// loop of non-blocking read(2) calls, stamping each read as it returns: an
// event loop, or a thread asleep in read(2), would stamp lines late (on this
// VM an idle vCPU takes up to a millisecond to wake), and a batch of lines
// with one time. The reader takes one CPU while it measures.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { MAIN, benchEnv, median, percentile, printTable, sleep, tempSocket, writeJson } from './common';

const DURATION_S = Number(process.env.BENCH_TIMER_SECONDS ?? 10);
const HAMMER_CLIENTS = 8;

/** Reads `fifo` in a thread of its own; returns the arrival time (ns) of each tick line. */
function readTicks(fifo: string): { stop: () => Promise<bigint[]> } {
  const stamps = new BigInt64Array(new SharedArrayBuffer(8 * 1_200_000));
  const count = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(`
    const fs = require('node:fs');
    const { workerData: { fifo, stamps, count } } = require('node:worker_threads');
    // Non-blocking reads in a loop: a thread that never sleeps is never late
    // waking up (on a VM, an idle vCPU can take a millisecond to wake).
    const fd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    const buffer = Buffer.alloc(65536);
    let rest = '';
    let writerSeen = false;
    for (;;) {
      let n;
      try {
        n = fs.readSync(fd, buffer);
      } catch (error) {
        if (error.code !== 'EAGAIN') throw error;
        writerSeen = true;
        continue;
      }
      const at = process.hrtime.bigint();
      if (n === 0) {
        if (writerSeen) break;
        continue;
      }
      writerSeen = true;
      const lines = (rest + buffer.toString('latin1', 0, n)).split('\\n');
      rest = lines.pop();
      for (const line of lines) {
        if (/^<6>-?[0-9]+$/.test(line) && Atomics.load(count, 0) < stamps.length) stamps[Atomics.add(count, 0, 1)] = at;
      }
    }`, { eval: true, workerData: { fifo, stamps, count } });
  const done = new Promise((resolve) => worker.once('exit', resolve));
  return {
    async stop() {
      await done;
      return Array.from(stamps.subarray(0, Atomics.load(count, 0)));
    },
  };
}

async function hammer(socketPath: string, until: () => boolean): Promise<number> {
  let answered = 0;
  await Promise.all(Array.from({ length: HAMMER_CLIENTS }, async () => {
    const socket = net.createConnection(socketPath);
    await new Promise((resolve) => socket.once('connect', resolve));
    let onReply: (() => void) | undefined;
    socket.on('data', () => onReply?.());
    while (!until()) {
      await new Promise<void>((resolve) => { onReply = resolve; socket.write('get_counter\n'); });
      answered++;
    }
    socket.destroy();
  }));
  return answered;
}

async function measure(periodMs: number, hammered: boolean, extra: string[] = []): Promise<Record<string, number | string>> {
  const { dir, socketPath } = tempSocket();
  const fifo = path.join(dir, 'ticks');
  execFileSync('mkfifo', [fifo]);
  const reader = readTicks(fifo);
  // The shell opens the FIFO for the service's stdout, then becomes the service.
  const child: ChildProcess = spawn('/bin/sh', ['-c', 'exec "$@" > "$FIFO"', 'sh', process.execPath, MAIN,
    '-d', String(periodMs), '--log-format', 'journal', '-s', socketPath, ...extra],
  { stdio: ['ignore', 'ignore', 'inherit'], env: { ...benchEnv(), FIFO: fifo } });
  while (!fs.existsSync(socketPath)) await sleep(5);
  let stopped = false;
  const load = hammered ? hammer(socketPath, () => stopped) : Promise.resolve(0);
  await sleep(DURATION_S * 1000 + 500);
  stopped = true;
  const requests = await load;
  child.kill('SIGTERM');
  await new Promise((resolve) => child.once('close', resolve));
  const arrivals = await reader.stop();
  fs.rmSync(dir, { recursive: true, force: true });

  // DURATION_S from the first tick on.
  const end = arrivals[0]! + BigInt(DURATION_S * 1e9);
  const inWindow = arrivals.filter((t) => t < end);
  const errorsMs = inWindow.slice(1).map((t, i) => Math.abs(Number(t - inWindow[i]!) / 1e6 - periodMs));
  const expected = Math.round((DURATION_S * 1000) / periodMs);
  return {
    period_ms: periodMs,
    load: `${hammered ? `${HAMMER_CLIENTS} clients, ${Math.round(requests / DURATION_S)} req/s` : 'none'}${extra.length > 0 ? `; ${extra.join(' ')}` : ''}`,
    expected, achieved: inWindow.length, 'achieved_%': (inWindow.length / expected) * 100,
    err_p50_ms: median(errorsMs), err_p99_ms: percentile(errorsMs, 0.99), err_max_ms: Math.max(...errorsMs),
  };
}

/**
 * The machine's own floor: a thread that does nothing but spin on the clock
 * to each 1 ms deadline, and notes how late it saw each one. What it sees is
 * the time its vCPU was taken away (by the hypervisor, or by the kernel).
 */
async function spinningReference(): Promise<Record<string, number | string>> {
  const lateness = new Float64Array(new SharedArrayBuffer(8 * DURATION_S * 1000));
  const worker = new Worker(`
    const { workerData: { lateness } } = require('node:worker_threads');
    let deadline = process.hrtime.bigint() + 1_000_000n;
    for (let i = 0; i < lateness.length; i++, deadline += 1_000_000n) {
      let now;
      while ((now = process.hrtime.bigint()) < deadline) { /* spin */ }
      lateness[i] = Number(now - deadline) / 1e6;
    }`, { eval: true, workerData: { lateness } });
  await new Promise((resolve) => worker.once('exit', resolve));
  const values = Array.from(lateness);
  return {
    period_ms: 1, load: 'reference: a bare spinning thread, lateness at each deadline', expected: values.length,
    achieved: values.length, 'achieved_%': 100, err_p50_ms: median(values), err_p99_ms: percentile(values, 0.99),
    err_max_ms: Math.max(...values),
  };
}

async function main(): Promise<void> {
  const rows = [];
  for (const [period, hammered] of [[10, false], [1, false], [1, true], [0.1, false]] as const) {
    rows.push(await measure(period, hammered));
  }
  // Spinning through the whole period: the accuracy a core's worth of CPU buys.
  rows.push(await measure(1, false, ['--timer-spin', '1000']));
  rows.push(await measure(1, true, ['--timer-spin', '1000']));
  rows.push(await spinningReference());
  printTable(`Timer accuracy (${DURATION_S} s each; interval error = |interval - period| at line arrival)`, rows);
  process.stdout.write(`written: ${writeJson('timer', { durationSeconds: DURATION_S, rows })}\n`);
}

void main();
