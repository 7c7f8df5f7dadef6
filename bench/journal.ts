// Ticks lost between the product and the journal (npm run bench:journal; as
// root, under `flock -x /tmp/es-quiet.lock`): boots the test/systemd
// containers (Debian 12 / systemd 252, Debian 13 / systemd 257) with
// early-service installed and enabled as a package does it, at 1 kHz and
// 10 kHz from boot, with the unit's journald settings as shipped
// (LogRateLimitIntervalSec=1s, LogRateLimitBurst=1000000) and without them
// (a drop-in setting both to 0: journald's defaults apply); counts the tick
// values of the first 10 s (0..rate*10-1) in `journalctl -u early-service`;
// then the main process's RSS after 4 s of 8 clients hammering
// (test/systemd/scenarios/journal-loss.sh). Prints the table, writes
// bench-results/journal.json.
//
//   node dist/bench/journal.js [--debian 12|13] [--seconds 10]
import { printTable, writeJson } from './common';
import { type Debian, runScenario, SYSTEMD_OF } from '../test/systemd/harness';
import { serviceDropin } from '../test/systemd/product-dropin';

function argument(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const mib = (kib: string | undefined): number => Number((Number(kib) / 1024).toFixed(1));

async function main(): Promise<void> {
  const debians: Debian[] = argument('--debian') ? [Number(argument('--debian')) as Debian] : [12, 13];
  const seconds = Number(argument('--seconds') ?? 10);
  const results: Array<Record<string, string | number>> = [];
  for (const debian of debians) {
    for (const delayMs of ['1', '0.1']) {
      for (const unitSettings of [true, false]) {
        const ticks = Math.round(seconds * 1000 / Number(delayMs));
        const limits = unitSettings ? [] : ['LogRateLimitIntervalSec=0', 'LogRateLimitBurst=0'];
        process.stdout.write(`systemd ${SYSTEMD_OF[debian]}, -d ${delayMs}, unit settings ${unitSettings ? 'yes' : 'no'}...\n`);
        const run = await runScenario({
          debian,
          scenario: 'journal-loss',
          dropins: [{ unit: 'early-service.service', file: serviceDropin('70-bench.conf', ['-d', delayMs], limits) }],
          env: { ES_TICKS: String(ticks) },
          timeoutSec: 240,
        });
        const f = run.facts;
        if (run.exitCode !== 0 || f.window_distinct === undefined) {
          throw new Error(`the run failed (exit ${run.exitCode}; ${run.out})\n${run.harnessOutput}`);
        }
        const arrived = Number(f.window_distinct);
        const probe = run.readJson<{ answered: number; failed: number }>('probe.json');
        results.push({
          systemd: SYSTEMD_OF[debian], rate: `${1000 / Number(delayMs)} Hz`, 'unit settings': unitSettings ? 'yes' : 'no (journald defaults)',
          'ticks (first s)': `${ticks} (${seconds})`, 'in journal': arrived, lost: ticks - arrived,
          'lost %': Number((100 * (ticks - arrived) / ticks).toFixed(1)),
          'journald "Suppressed"': Number(f.suppressed_total ?? 0), 'repeated lines': Number(f.window_lines) - arrived,
          'service drop notices': Number(f.dropped_notices ?? 0),
          'RSS after 4 s of 8 clients (MiB)': mib(f.vmrss_kib), 'anon / file / shmem (MiB)': `${mib(f.rssanon_kib)} / ${mib(f.rssfile_kib)} / ${mib(f.rssshmem_kib)}`,
          'requests/s': Math.round(probe.answered / 4), run: run.out,
        });
        const { run: _, ...row } = results[results.length - 1]!;
        process.stdout.write(`  ${JSON.stringify(row)}\n`);
      }
    }
  }
  printTable(`Ticks lost in the first ${seconds} s from boot, the product under systemd`, results.map(({ run: _, ...r }) => r));
  process.stdout.write(`\nresults: ${writeJson('journal', { seconds, results })}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
