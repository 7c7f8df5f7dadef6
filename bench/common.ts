// Shared by the benchmarks: starting the service, percentiles, tables, JSON.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** What gets installed: the single-file bundle (`npm run build`). */
export const MAIN = path.join(__dirname, '..', 'bundle', 'early-service.js');
/** tsc's output, one file per module, for comparison. */
export const UNBUNDLED_MAIN = path.join(__dirname, '..', 'src', 'supervisor', 'main.js');

/** The environment every measured process gets: NODE_EXTRA_CA_CERTS costs ~80 ms a start. */
export function benchEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  return env;
}

export function tempSocket(): { dir: string; socketPath: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'es-bench-'));
  return { dir, socketPath: path.join(dir, 's.sock') };
}

/**
 * Node options for the measured service, from EARLY_SERVICE_BENCH_NODE_ARGS (space-separated), for
 * trying V8 and allocator settings with any benchmark; none by default.
 */
export function serviceNodeArgs(): string[] {
  return (process.env.EARLY_SERVICE_BENCH_NODE_ARGS ?? '').split(' ').filter((arg) => arg.length > 0);
}

export function startService(args: string[], main = MAIN, env: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(process.execPath, [...serviceNodeArgs(), main, '--log-format', 'journal', ...args],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...benchEnv(), ...env } });
}

export async function stopService(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  child.kill('SIGTERM');
  await new Promise((resolve) => child.once('close', resolve));
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

export const median = (values: number[]): number => percentile(values, 0.5);

export function printTable(title: string, rows: Array<Record<string, string | number>>): void {
  const columns = Object.keys(rows[0] ?? {});
  const cell = (v: string | number): string => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(3)) : v);
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (values: string[]): string => `| ${values.map((v, i) => v.padEnd(widths[i])).join(' | ')} |`;
  process.stdout.write(`\n${title}\n${line(columns)}\n|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|\n`);
  for (const row of rows) process.stdout.write(`${line(columns.map((c) => cell(row[c])))}\n`);
}

export function writeJson(name: string, data: unknown): string {
  const dir = path.join(__dirname, '..', '..', 'bench-results');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.json`);
  fs.writeFileSync(file, `${JSON.stringify({ machine: machine(), ...data as object }, null, 2)}\n`);
  return file;
}

export function machine(): Record<string, string | number> {
  return { node: process.version, cpus: os.cpus().length, cpu: os.cpus()[0]?.model ?? '?', kernel: os.release() };
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
