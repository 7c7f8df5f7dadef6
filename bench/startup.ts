// Start-up: exec -> the first get_counter answered on the socket, median of
// 21 runs, with bare `node -e ''` (exec -> exit) measured in the same run as
// the reference; and RSS once started.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { benchEnv, median, printTable, sleep, startService, stopService, tempSocket, writeJson } from './common';

const RUNS = 21;

function answers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.createConnection(socketPath);
    socket.on('connect', () => socket.write('get_counter\n'));
    socket.on('data', () => { socket.destroy(); resolve(true); });
    socket.on('error', () => resolve(false));
  });
}

async function serviceStart(): Promise<{ ms: number; rssMiB: number }> {
  const { dir, socketPath } = tempSocket();
  const started = process.hrtime.bigint();
  const child = startService(['-s', socketPath]);
  child.stdout!.resume();
  while (!(await answers(socketPath))) await sleep(0.2);
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
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
  const bare: number[] = [];
  const rss: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    bare.push(await bareNode());
    const run = await serviceStart();
    service.push(run.ms);
    rss.push(run.rssMiB);
  }
  const rows = [
    { what: "bare node -e '' (exec -> exit)", median_ms: median(bare), min_ms: Math.min(...bare), max_ms: Math.max(...bare) },
    { what: 'early-service (exec -> get_counter answered)', median_ms: median(service), min_ms: Math.min(...service), max_ms: Math.max(...service) },
  ];
  printTable(`Start-up (${RUNS} runs each, interleaved)`, rows);
  process.stdout.write(`ratio to bare node: ${(median(service) / median(bare)).toFixed(2)}; RSS after start: median ${median(rss).toFixed(1)} MiB\n`);
  process.stdout.write(`written: ${writeJson('startup', { runs: RUNS, bare, service, rssMiB: rss })}\n`);
}

void main();
