// Start-up: exec -> the first get_counter answered on the socket, median of
// 21 runs, with bare `node -e ''` (exec -> exit) measured in the same run as
// the reference; and RSS once started.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { DgramSocket } from 'node-unix-socket';
import { MAIN, UNBUNDLED_MAIN, benchEnv, median, printTable, sleep, startService, stopService, tempSocket, writeJson } from './common';

const RUNS = 21;

function answers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.createConnection(socketPath);
    socket.on('connect', () => socket.write('get_counter\n'));
    socket.on('data', () => { socket.destroy(); resolve(true); });
    socket.on('error', () => resolve(false));
  });
}

/**
 * exec -> the first get_counter answered. The service says when it serves
 * (sd_notify READY=1, to a socket of ours): polling the socket instead would
 * steal the CPU the starting process needs, on a 2-CPU machine noticeably.
 */
async function serviceStart(main: string): Promise<{ ms: number; rssMiB: number }> {
  const { dir, socketPath } = tempSocket();
  const notify = new DgramSocket();
  notify.bind(path.join(dir, 'notify'));
  const ready = new Promise<void>((resolve) => notify.on('data', (data: Buffer) => {
    if (data.toString().startsWith('READY=1')) resolve();
  }));
  const started = process.hrtime.bigint();
  const child = startService(['-s', socketPath], main, { NOTIFY_SOCKET: path.join(dir, 'notify') });
  child.stdout!.resume();
  await ready;
  if (!(await answers(socketPath))) throw new Error('READY=1 but no answer');
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  notify.close();
  await sleep(300);
  const status = fs.readFileSync(`/proc/${child.pid}/status`, 'utf8');
  const rssMiB = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1]) / 1024;
  await stopService(child);
  fs.rmSync(dir, { recursive: true, force: true });
  return { ms, rssMiB };
}

async function bareNode(): Promise<number> {
  const started = process.hrtime.bigint();
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore', env: benchEnv() });
  await new Promise((resolve) => child.once('close', resolve));
  return Number(process.hrtime.bigint() - started) / 1e6;
}

async function main(): Promise<void> {
  const service: number[] = [];
  const unbundled: number[] = [];
  const bare: number[] = [];
  const rss: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    bare.push(await bareNode());
    const run = await serviceStart(MAIN);
    service.push(run.ms);
    rss.push(run.rssMiB);
    unbundled.push((await serviceStart(UNBUNDLED_MAIN)).ms);
  }
  const row = (what: string, values: number[]) =>
    ({ what, median_ms: median(values), min_ms: Math.min(...values), max_ms: Math.max(...values) });
  printTable(`Start-up (${RUNS} runs each, interleaved)`, [
    row("bare node -e '' (exec -> exit)", bare),
    row('early-service, bundle (exec -> get_counter answered)', service),
    row('early-service, tsc output, unbundled', unbundled),
  ]);
  process.stdout.write(`ratio to bare node: ${(median(service) / median(bare)).toFixed(2)} (unbundled ` +
    `${(median(unbundled) / median(bare)).toFixed(2)}); RSS after start: median ${median(rss).toFixed(1)} MiB\n`);
  process.stdout.write(`written: ${writeJson('startup', { runs: RUNS, bare, service, unbundled, rssMiB: rss })}\n`);
}

void main();
