// Handoff latency: successor exec -> old process exit, and the longest tick
// interval across a handoff, over a chain of handoffs with clients connected.
// The chain is the stress tool's (it checks every guarantee on the way, and
// exits 1 if one broke); this prints its timing figures as a table.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Report } from '../src/stress/report';
import { MAIN, benchEnv, printTable, writeJson } from './common';

const HANDOFFS = 50;
const CLIENTS = 4;
const DELAY_MS = 100;

function main(): void {
  const raw = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'es-bench-')), 'report.json');
  const run = spawnSync(process.execPath, [MAIN, 'stress', '--handoffs', String(HANDOFFS), '--clients', String(CLIENTS),
    '-d', String(DELAY_MS), '--json', raw], { stdio: ['ignore', 'ignore', 'inherit'], env: benchEnv() });
  if (!fs.existsSync(raw)) throw new Error(`the stress run wrote no report (status ${run.status})`);
  const report = JSON.parse(fs.readFileSync(raw, 'utf8')) as Report;
  printTable(`Handoff (${report.handoffs} chained handoffs, ${CLIENTS} clients, -d ${DELAY_MS})`, [
    { what: 'successor exec -> old process exit (ms)', p50: report.handoffLatencyMs.p50, p99: report.handoffLatencyMs.p99, max: report.handoffLatencyMs.max },
    { what: 'tick interval across a handoff (ms)', p50: NaN, p99: report.ticks.acrossHandoffP99Ms, max: report.ticks.longestAcrossHandoffMs },
  ]);
  process.stdout.write(`violations: ${report.violations.length === 0 ? 'none' : report.violations.join('; ')}\n`);
  process.stdout.write(`written: ${writeJson('handoff', { handoffs: report.handoffs, clients: CLIENTS, timerDelayMs: DELAY_MS,
    latencyMs: report.handoffLatencyMs, acrossHandoffP99Ms: report.ticks.acrossHandoffP99Ms,
    longestAcrossHandoffMs: report.ticks.longestAcrossHandoffMs, violations: report.violations })}\n`);
  if (report.violations.length > 0) process.exitCode = 1;
}

main();
