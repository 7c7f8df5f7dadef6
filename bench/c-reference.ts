// early-service against the C reference (test/gio/gio-peer.c serving, GIO
// like the seed's C program), in one run, with the same C load client
// (bench/load-client.c): get_counter/s with 8 clients on a fresh connection
// per request and on persistent connections, and RSS idle and after the
// load. Rounds alternate which service goes first; medians are reported.
//
//   node dist/bench/c-reference.js [--rounds N] [--seconds S]
//
// EARLY_SERVICE_BENCH_NODE_ARGS (space-separated) adds node options to the
// service's command line, for trying V8 and allocator settings.
import fs from 'node:fs';
import path from 'node:path';
import { DgramSocket } from 'node-unix-socket';
import { type ChildProcess } from 'node:child_process';
import { median, printTable, sleep, startService, stopService, tempSocket, writeJson } from './common';
import { type LoadResult, buildCReference, buildLoadClient, rssMiB, runLoad, startCReference } from './c-tools';

const CLIENTS = 8;

function option(name: string, fallback: number): number {
  const index = process.argv.indexOf(name);
  return index < 0 ? fallback : Number(process.argv[index + 1]);
}

async function startEarlyService(dir: string, socketPath: string): Promise<ChildProcess> {
  const notify = new DgramSocket();
  notify.bind(path.join(dir, 'notify'));
  const ready = new Promise<void>((resolve) => notify.on('data', (data: Buffer) => {
    if (data.toString().includes('READY=1')) resolve();
  }));
  const child = startService(['-s', socketPath, '-d', '100'], undefined, { NOTIFY_SOCKET: path.join(dir, 'notify') });
  child.stdout!.resume();
  await ready;
  notify.close();
  return child;
}

async function main(): Promise<void> {
  const rounds = option('--rounds', 3);
  const seconds = option('--seconds', 4);
  const client = buildLoadClient();
  const reference = buildCReference();
  const ours = tempSocket();
  const theirs = tempSocket();
  const service = await startEarlyService(ours.dir, ours.socketPath);
  const c = await startCReference(reference, theirs.socketPath);
  // Idle: the ticker thread started (10 ms after READY=1) and settled.
  await sleep(1000);
  const idle = { ours: rssMiB(service.pid!), theirs: rssMiB(c.pid!) };

  const results: Record<string, LoadResult[]> = {};
  const record = (key: string, result: LoadResult): void => { (results[key] ??= []).push(result); };
  for (let round = 0; round < rounds; round++) {
    for (const kind of ['fresh', 'persistent'] as const) {
      const order = round % 2 === 0 ? ['ours', 'theirs'] : ['theirs', 'ours'];
      for (const who of order) {
        const socketPath = who === 'ours' ? ours.socketPath : theirs.socketPath;
        record(`${who} ${kind}`, runLoad(client, socketPath, CLIENTS, seconds, kind));
      }
    }
  }
  const loaded = { ours: rssMiB(service.pid!), theirs: rssMiB(c.pid!) };
  await stopService(service);
  c.kill('SIGTERM');
  fs.rmSync(ours.dir, { recursive: true, force: true });
  fs.rmSync(theirs.dir, { recursive: true, force: true });

  const rate = (key: string): number => median(results[key].map((r) => r.requests_per_s));
  const rows = ['fresh', 'persistent'].flatMap((kind) => ['ours', 'theirs'].map((who) => {
    const runs = results[`${who} ${kind}`];
    return {
      service: who === 'ours' ? 'early-service (bundle)' : 'C reference (gio-peer serve)',
      connections: kind,
      requests_per_s: Math.round(rate(`${who} ${kind}`)),
      p50_ms: median(runs.map((r) => r.p50_ms)),
      p99_ms: median(runs.map((r) => r.p99_ms)),
      errors: runs.reduce((sum, r) => sum + r.errors, 0),
    };
  }));
  printTable(`get_counter, ${CLIENTS} C clients in lockstep, ${seconds} s per run, median of ${rounds} rounds`, rows);
  const freshRatio = rate('ours fresh') / rate('theirs fresh');
  const persistentRatio = rate('ours persistent') / rate('theirs persistent');
  process.stdout.write(`early-service / C reference: fresh ${freshRatio.toFixed(2)}x (target >= 1.2), ` +
    `persistent ${persistentRatio.toFixed(2)}x\n`);
  process.stdout.write(`RSS (MiB): early-service idle ${idle.ours.toFixed(1)}, after the runs ${loaded.ours.toFixed(1)}; ` +
    `C reference idle ${idle.theirs.toFixed(1)}, after ${loaded.theirs.toFixed(1)}\n`);
  process.stdout.write(`written: ${writeJson('c-reference', {
    clients: CLIENTS, seconds, rounds, nodeArgs: process.env.EARLY_SERVICE_BENCH_NODE_ARGS ?? '',
    results, freshRatio, persistentRatio, rssMiB: { idle, loaded },
  })}\n`);
}

void main();
