// The C programs the benchmarks run, compiled at run time with cc (as the
// tests compile test/gio): the load client (bench/load-client.c) and the C
// reference service (test/gio/gio-peer.c in `serve` mode, GIO like the seed).
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.join(__dirname, '..', '..');
const BUILD = path.join(ROOT, 'build', 'bench');

/** Compiles `source` to build/bench/`name` (under a temporary name first); returns the binary. */
function compile(name: string, source: string, flags: string): string {
  fs.mkdirSync(BUILD, { recursive: true });
  const binary = path.join(BUILD, name);
  const output = `${binary}.${process.pid}.tmp`;
  execFileSync('sh', ['-c', `cc -std=gnu11 -Wall -Wextra -Werror -O2 -o "$1" "$2" ${flags}`, 'sh', output, source],
    { stdio: ['ignore', 'inherit', 'inherit'], timeout: 60_000 });
  fs.renameSync(output, binary);
  return binary;
}

export const buildLoadClient = (): string => compile('load-client', path.join(ROOT, 'bench', 'load-client.c'), '-pthread');

export const buildCReference = (): string =>
  compile('gio-peer', path.join(ROOT, 'test', 'gio', 'gio-peer.c'), '$(pkg-config --cflags --libs gio-2.0 gio-unix-2.0)');

export interface LoadResult {
  requests: number;
  errors: number;
  seconds: number;
  requests_per_s: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
}

/** Runs the load client to its end; `fresh`: a new connection per request. */
export function runLoad(client: string, socketPath: string, clients: number, seconds: number,
  kind: 'persistent' | 'fresh'): LoadResult {
  const output = execFileSync(client, [socketPath, String(clients), String(seconds), kind],
    { encoding: 'utf8', timeout: (seconds + 30) * 1000 });
  return JSON.parse(output) as LoadResult;
}

/** Starts the load client and returns it (for load while something else is measured). */
export function startLoad(client: string, socketPath: string, clients: number, seconds: number,
  kind: 'persistent' | 'fresh'): { child: ChildProcess; result: Promise<LoadResult> } {
  const child = spawn(client, [socketPath, String(clients), String(seconds), kind], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => { output += chunk.toString(); });
  const result = new Promise<LoadResult>((resolve, reject) => child.once('close', (code) => {
    if (code === 0) resolve(JSON.parse(output) as LoadResult);
    else reject(new Error(`load-client exited ${code}`));
  }));
  return { child, result };
}

/** Starts `gio-peer serve`; resolves once it listens. */
export async function startCReference(binary: string, socketPath: string): Promise<ChildProcess> {
  const child = spawn(binary, ['serve', socketPath, '0'], { stdio: ['ignore', 'pipe', 'ignore'] });
  await new Promise<void>((resolve, reject) => {
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('ready\n')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`gio-peer exited ${code} before it was ready`)));
  });
  return child;
}

/** VmRSS of a process, in MiB. */
export function rssMiB(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1]) / 1024;
}
