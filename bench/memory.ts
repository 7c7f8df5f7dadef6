// Memory and throughput per node/allocator configuration, in one run: for
// each configuration a fresh service, VmRSS idle 1 s after READY=1 and 3 s
// after (the service drops start-up's pages of the node executable 2 s after
// it serves), then
// 8 C clients hammering get_counter for 4 s (4 on persistent connections,
// 4 on a fresh connection per request), VmRSS right after, and the
// requests/s of each kind during those 4 s. Configurations are interleaved
// over the repetitions; medians are reported.
//
//   node dist/bench/memory.js [--repeat N] [--seconds S] [--only NAME,...] [--configs FILE]
//
// --configs: a JSON array of {name, nodeArgs, env?, main?} measured instead of the built-in set.
import fs from 'node:fs';
import path from 'node:path';
import { DgramSocket } from 'node-unix-socket';
import { MAIN, benchEnv, median, printTable, sleep, tempSocket, writeJson } from './common';
import { buildLoadClient, rssMiB, startLoad } from './c-tools';
import { spawn } from 'node:child_process';

interface Configuration {
  name: string;
  nodeArgs: string[];
  env?: NodeJS.ProcessEnv;
  /** Another build of the service (a prototype); the installed bundle by default. */
  main?: string;
}

const CONFIGURATIONS: Configuration[] = [
  { name: 'default', nodeArgs: [] },
  { name: '--max-semi-space-size=1', nodeArgs: ['--max-semi-space-size=1'] },
  { name: 'MALLOC_ARENA_MAX=2', nodeArgs: [], env: { MALLOC_ARENA_MAX: '2' } },
  { name: 'semi 1 + arenas 2', nodeArgs: ['--max-semi-space-size=1'], env: { MALLOC_ARENA_MAX: '2' } },
  { name: 'as the units run it (semi 1 + stgc + arenas 2)', nodeArgs: ['--max-semi-space-size=1', '--single-threaded-gc'], env: { MALLOC_ARENA_MAX: '2' } },
];

function option(name: string): string | undefined {
  const index = process.argv.indexOf(name);
  return index < 0 ? undefined : process.argv[index + 1];
}

interface Sample { idleAt1sMiB: number; idleMiB: number; loadedMiB: number; persistentPerS: number; freshPerS: number }

async function measure(configuration: Configuration, client: string, seconds: number): Promise<Sample> {
  const { dir, socketPath } = tempSocket();
  const notify = new DgramSocket();
  notify.bind(path.join(dir, 'notify'));
  const ready = new Promise<void>((resolve) => notify.on('data', (data: Buffer) => {
    if (data.toString().includes('READY=1')) resolve();
  }));
  const service = spawn(process.execPath, [...configuration.nodeArgs, configuration.main ?? MAIN, '--log-format', 'journal', '-s', socketPath, '-d', '100'],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...benchEnv(), ...configuration.env, NOTIFY_SOCKET: path.join(dir, 'notify') } });
  service.stdout!.resume();
  await ready;
  notify.close();
  await sleep(1000);
  const idleAt1sMiB = rssMiB(service.pid!);
  await sleep(2000);
  const idleMiB = rssMiB(service.pid!);
  const persistent = startLoad(client, socketPath, 4, seconds, 'persistent');
  const fresh = startLoad(client, socketPath, 4, seconds, 'fresh');
  const [p, f] = await Promise.all([persistent.result, fresh.result]);
  const loadedMiB = rssMiB(service.pid!);
  service.kill('SIGTERM');
  await new Promise((resolve) => service.once('close', resolve));
  fs.rmSync(dir, { recursive: true, force: true });
  return { idleAt1sMiB, idleMiB, loadedMiB, persistentPerS: p.requests_per_s, freshPerS: f.requests_per_s };
}

async function main(): Promise<void> {
  const repeat = Number(option('--repeat') ?? 3);
  const seconds = Number(option('--seconds') ?? 4);
  const only = option('--only')?.split(',');
  const file = option('--configs');
  const all = file === undefined ? CONFIGURATIONS : JSON.parse(fs.readFileSync(file, 'utf8')) as Configuration[];
  const configurations = only === undefined ? all : all.filter((c) => only.includes(c.name));
  const client = buildLoadClient();
  const samples = new Map<string, Sample[]>();
  for (let round = 0; round < repeat; round++) {
    for (const configuration of configurations) {
      const sample = await measure(configuration, client, seconds);
      samples.set(configuration.name, [...(samples.get(configuration.name) ?? []), sample]);
    }
  }
  const rows = configurations.map((configuration) => {
    const runs = samples.get(configuration.name)!;
    const of = (key: keyof Sample): number => median(runs.map((run) => run[key]));
    return {
      configuration: configuration.name,
      idle_1s_MiB: Number(of('idleAt1sMiB').toFixed(1)),
      idle_3s_MiB: Number(of('idleMiB').toFixed(1)),
      loaded_MiB: Number(of('loadedMiB').toFixed(1)),
      persistent_per_s: Math.round(of('persistentPerS')),
      fresh_per_s: Math.round(of('freshPerS')),
    };
  });
  printTable(`RSS idle and after ${seconds} s of 8 C clients (4 persistent + 4 fresh), median of ${repeat}`, rows);
  process.stdout.write(`written: ${writeJson('memory', { seconds, repeat, configurations, samples: Object.fromEntries(samples) })}\n`);
}

void main();
