// Throughput: get_counter from 8 clients for 5 s each way, against a running
// service: persistent connections in lockstep (one request in flight each),
// then a fresh connection per request. Latency is per request, as the
// clients (in this one process) see it: they share the machine's 2 cores
// with the service, so these are the numbers of the whole system.
import net from 'node:net';
import fs from 'node:fs';
import { percentile, printTable, sleep, startService, stopService, tempSocket, writeJson } from './common';

const CLIENTS = 8;
const DURATION_MS = 5000;

async function persistentClient(socketPath: string, until: number, latencies: number[]): Promise<void> {
  const socket = net.createConnection(socketPath);
  await new Promise((resolve) => socket.once('connect', resolve));
  let sent = 0n;
  let onReply: (() => void) | undefined;
  socket.on('data', () => onReply?.());
  while (Date.now() < until) {
    sent = process.hrtime.bigint();
    await new Promise<void>((resolve) => { onReply = resolve; socket.write('get_counter\n'); });
    latencies.push(Number(process.hrtime.bigint() - sent) / 1e6);
  }
  socket.destroy();
}

async function freshClient(socketPath: string, until: number, latencies: number[]): Promise<void> {
  while (Date.now() < until) {
    const sent = process.hrtime.bigint();
    await new Promise<void>((resolve, reject) => {
      const socket = net.createConnection(socketPath, () => socket.write('get_counter\n'));
      socket.once('data', () => { socket.destroy(); resolve(); });
      socket.once('error', reject);
    });
    latencies.push(Number(process.hrtime.bigint() - sent) / 1e6);
  }
}

async function run(kind: 'persistent' | 'fresh', socketPath: string): Promise<Record<string, string | number>> {
  const latencies: number[] = [];
  const until = Date.now() + DURATION_MS;
  const client = kind === 'persistent' ? persistentClient : freshClient;
  await Promise.all(Array.from({ length: CLIENTS }, () => client(socketPath, until, latencies)));
  return {
    clients: `${CLIENTS} ${kind}`, requests_per_s: Math.round(latencies.length / (DURATION_MS / 1000)),
    p50_ms: percentile(latencies, 0.5), p99_ms: percentile(latencies, 0.99),
  };
}

async function main(): Promise<void> {
  const { dir, socketPath } = tempSocket();
  const service = startService(['-s', socketPath, '-d', '100']);
  service.stdout!.resume();
  while (!fs.existsSync(socketPath)) await sleep(5);
  await sleep(300);
  const rows = [await run('persistent', socketPath), await run('fresh', socketPath)];
  await stopService(service);
  fs.rmSync(dir, { recursive: true, force: true });
  printTable(`get_counter throughput (${DURATION_MS / 1000} s each)`, rows);
  process.stdout.write(`written: ${writeJson('throughput', { rows })}\n`);
}

void main();
