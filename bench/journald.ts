// journald's real ceiling (npm run bench:journald; as root, run it under
// `flock -x /tmp/es-quiet.lock`): boots the systemd harness's containers
// (test/systemd: Debian 12 / systemd 252 and Debian 13 / systemd 257) and runs
// bench/journald-scenario.sh in each: the lines per second journald stores
// from one client and the CPU it spends, per protocol and batching, with the
// runtime and the persistent journal; then the ticks lost in 10 s at 1 kHz
// and 10 kHz with journald's default rate limit, with and without per-unit
// settings. Prints the tables, writes bench-results/journald.json.
//
//   node dist/bench/journald.js [--debian 12|13] [--scale N] [--parts "ceiling ticks"]
import fs from 'node:fs';
import path from 'node:path';
import { printTable, writeJson } from './common';
import { type Debian, REPO, runScenario, SYSTEMD_OF } from '../test/systemd/harness';

interface Row {
  part: string; storage: string; mode: string; unit_limits: string; sent: number; arrived: number; seconds: number;
  lines_per_s: number; journald_cpu: number; journald_us_per_line: number; emitter_cpu: number; emitter_late_max_ms: number;
}

function parseTsv(text: string): Row[] {
  const [header, ...lines] = text.trim().split('\n');
  const keys = header.split('\t');
  return lines.map((line) => {
    const values = line.split('\t');
    const row: Record<string, string | number> = {};
    keys.forEach((k, i) => { row[k] = /^-?[0-9.]+$/.test(values[i]) ? Number(values[i]) : values[i]; });
    return row as unknown as Row;
  });
}

function argument(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const debians: Debian[] = argument('--debian') ? [Number(argument('--debian')) as Debian] : [12, 13];
  const results: Record<string, Row[]> = {};
  for (const debian of debians) {
    process.stdout.write(`\nDebian ${debian} (systemd ${SYSTEMD_OF[debian]}): booting the container and running the bench...\n`);
    const run = await runScenario({
      debian,
      scenario: path.join(REPO, 'bench/journald-scenario.sh'),
      product: false,
      cPrograms: [path.join(REPO, 'bench/journald-emit.c')],
      env: { ES_BENCH_SCALE: argument('--scale') ?? '1', ES_BENCH_PARTS: argument('--parts') ?? 'ceiling ticks' },
      timeoutSec: 1200,
    });
    if (run.exitCode !== 0 || !fs.existsSync(path.join(run.results, 'journald.tsv'))) {
      throw new Error(`the bench failed on Debian ${debian} (exit ${run.exitCode}; ${run.out})\n${run.harnessOutput}`);
    }
    const rows = parseTsv(run.readText('journald.tsv'));
    results[`systemd ${SYSTEMD_OF[debian]}`] = rows;
    const ceiling = rows.filter((r) => r.part === 'ceiling');
    if (ceiling.length > 0) {
      printTable(`journald ceiling, one client, systemd ${SYSTEMD_OF[debian]} (rate limit off)`, ceiling.map((r) => ({
        storage: r.storage, mode: r.mode, lines: r.arrived, 'lines/s': Math.round(r.lines_per_s),
        'journald CPU (cores)': r.journald_cpu, 'journald µs/line': r.journald_us_per_line, 'emitter CPU (cores)': r.emitter_cpu,
      })));
    }
    const ticks = rows.filter((r) => r.part === 'ticks');
    if (ticks.length > 0) {
      printTable(`ticks lost in 10 s, journald's default rate limit, systemd ${SYSTEMD_OF[debian]}`, ticks.map((r) => ({
        storage: r.storage, emitter: r.mode, 'unit settings': r.unit_limits, sent: r.sent, arrived: r.arrived,
        lost: r.sent - r.arrived, 'lost %': Number((100 * (r.sent - r.arrived) / r.sent).toFixed(1)),
        'emitter late max (ms)': r.emitter_late_max_ms,
      })));
    }
  }
  process.stdout.write(`\nresults: ${writeJson('journald', { results })}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
