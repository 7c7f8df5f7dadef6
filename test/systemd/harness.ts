// The programmatic entry to the real-systemd harness (test/systemd/boot.sh):
// boots a Debian 12 (systemd 252) or 13 (systemd 257) container with
// early-service installed as a package would install it, runs a scenario in
// it after boot and returns what the scenario left in its results directory.
// For node:test files (test/systemd/*.test.ts, `npm run test:systemd`) and
// benches. Needs root; `npm run build` first (the product is installed from
// dist/bundle).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The repository (this file runs as dist/test/systemd/harness.js). */
export const REPO = path.resolve(__dirname, '../../..');
const BOOT_SH = path.join(REPO, 'test/systemd/boot.sh');

export type Debian = 12 | 13;
/** The systemd version each Debian release ships. */
export const SYSTEMD_OF: Record<Debian, number> = { 12: 252, 13: 257 };

export interface ScenarioOptions {
  debian: Debian;
  /** A name under test/systemd/scenarios/ (without .sh) or a script path. */
  scenario: string;
  /** Hard limit for the whole boot in seconds; the container is killed after it (default 120). */
  timeoutSec?: number;
  /** Install early-service (default true). */
  product?: boolean;
  /** Enable early-service.service (default true; ignored without the product). */
  enableProduct?: boolean;
  /** Drop-ins: `file` becomes /etc/systemd/system/`unit`.d/<its basename>. */
  dropins?: Array<{ unit: string; file: string }>;
  /** Unit files copied to /etc/systemd/system/. */
  units?: string[];
  /** Units to enable (after the units above are installed). */
  enable?: string[];
  /** Files (or directories) copied into the container. */
  files?: Array<{ src: string; dest: string }>;
  /** C programs compiled statically into /usr/lib/es-systemd-test/ (test/systemd/probe/*.c always are). */
  cPrograms?: string[];
  /** Environment of the scenario. */
  env?: Record<string, string>;
  /** The run's directory (default: a new one under the harness's cache). */
  out?: string;
}

export interface ScenarioRun {
  /** The scenario's exit status; 124: the boot hit the hard timeout; 125: the harness failed. */
  exitCode: number;
  timedOut: boolean;
  /** The run's directory: results/, console.log, prepare.log, timings.env. */
  out: string;
  results: string;
  consoleLog: string;
  /** What the harness printed (progress, errors). */
  harnessOutput: string;
  /** KEY=VALUE lines the scenario recorded with es_fact (results/facts.env); the last one wins. */
  facts: Record<string, string>;
  /** Milliseconds: preparing the root, and the boot through the power-off. */
  timings: { prepareMs: number; bootMs: number };
  readText(name: string): string;
  readJson<T = unknown>(name: string): T;
}

/** Why this process cannot run the harness, or undefined if it can. */
export function harnessUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'the systemd harness needs root (debootstrap, overlay mounts, systemd-nspawn)';
  if (!fs.existsSync(path.join(REPO, 'dist/bundle/early-service.js'))) return "no dist/bundle: run 'npm run build'";
  return undefined;
}

function readEnvFile(file: string): Record<string, string> {
  const values: Record<string, string> = {};
  if (!fs.existsSync(file)) return values;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) values[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return values;
}

/** The harness's cache (bases, runs, builds): ES_SYSTEMD_CACHE, or one under the temporary directory. */
export function harnessCacheDir(): string {
  return process.env.ES_SYSTEMD_CACHE ?? path.join(os.tmpdir(), 'early-service-systemd-test');
}

export async function runScenario(options: ScenarioOptions): Promise<ScenarioRun> {
  const cacheDir = harnessCacheDir();
  fs.mkdirSync(path.join(cacheDir, 'runs'), { recursive: true });
  const out = options.out ?? fs.mkdtempSync(path.join(cacheDir, 'runs', `${options.debian}-${path.basename(options.scenario, '.sh')}-`));
  const args = [BOOT_SH, '--debian', String(options.debian), '--out', out, '--scenario', options.scenario,
    '--timeout', String(options.timeoutSec ?? 120)];
  if (options.product === false) args.push('--no-product');
  if (options.enableProduct === false) args.push('--no-enable');
  for (const d of options.dropins ?? []) args.push('--dropin', `${d.unit}:${d.file}`);
  for (const u of options.units ?? []) args.push('--unit', u);
  for (const u of options.enable ?? []) args.push('--enable', u);
  for (const f of options.files ?? []) args.push('--file', `${f.src}:${f.dest}`);
  for (const c of options.cPrograms ?? []) args.push('--c-program', c);
  for (const [k, v] of Object.entries(options.env ?? {})) args.push('--env', `${k}=${v}`);

  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  const child = spawn('bash', args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let harnessOutput = '';
  child.stdout.on('data', (chunk: Buffer) => { harnessOutput += chunk.toString(); });
  child.stderr.on('data', (chunk: Buffer) => { harnessOutput += chunk.toString(); });
  const exitCode = await new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });

  const results = path.join(out, 'results');
  const timings = readEnvFile(path.join(out, 'timings.env'));
  return {
    exitCode,
    timedOut: exitCode === 124,
    out,
    results,
    consoleLog: path.join(out, 'console.log'),
    harnessOutput,
    facts: readEnvFile(path.join(results, 'facts.env')),
    timings: { prepareMs: Number(timings.prepare_ms ?? NaN), bootMs: Number(timings.boot_ms ?? NaN) },
    readText: (name) => fs.readFileSync(path.join(results, name), 'utf8'),
    readJson: <T>(name: string) => JSON.parse(fs.readFileSync(path.join(results, name), 'utf8')) as T,
  };
}

/** The summary es-probe writes (test/systemd/probe/es-probe.c). */
export interface ProbeSummary {
  clients: number;
  attempts: number;
  answered: number;
  retried: number;
  failed: number;
  failures: Record<string, number>;
  refused: number;
  resets: number;
  firstValue: number | null;
  lastValue: number | null;
  finalValue: number | null;
  counterWentBack: number;
  maxBackwardStep: number;
  writes: { attempted: number; acknowledged: number; lost: number };
  latencyUs: { p50: number; p99: number; max: number };
}
