// Handoff latency: successor exec -> old process exit broken into its phases
// (each side stamps its own timeline and logs it), the longest tick interval
// across a handoff, and the clients' request latency inside handoff windows
// against outside them, over a chain of handoffs under 8 clients. The chain is
// the stress tool's (it checks every guarantee on the way, and exits 1 if one
// broke); a pause between handoffs gives the "outside" requests.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Report } from '../src/stress/report';
import { MAIN, benchEnv, printTable, writeJson } from './common';

const HANDOFFS = Number(process.env.ES_BENCH_HANDOFFS ?? 50);
const CLIENTS = 8;
const DELAY_MS = 100;
const PAUSE_MS = 300;

function main(): void {
  const raw = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'es-bench-')), 'report.json');
  const run = spawnSync(process.execPath, [MAIN, 'stress', '--handoffs', String(HANDOFFS), '--clients', String(CLIENTS),
    '-d', String(DELAY_MS), '--pause', String(PAUSE_MS), '--json', raw], { stdio: ['ignore', 'ignore', 'inherit'], env: benchEnv() });
  if (!fs.existsSync(raw)) throw new Error(`the stress run wrote no report (status ${run.status})`);
  const report = JSON.parse(fs.readFileSync(raw, 'utf8')) as Report;
  printTable(`Handoff (${report.handoffs} chained handoffs, ${CLIENTS} clients, -d ${DELAY_MS})`, [
    { what: 'successor exec -> old process exit (ms)', p50: report.handoffLatencyMs.p50, p99: report.handoffLatencyMs.p99, max: report.handoffLatencyMs.max },
    { what: 'tick interval across a handoff (ms)', p50: NaN, p99: report.ticks.acrossHandoffP99Ms, max: report.ticks.longestAcrossHandoffMs },
  ]);
  printTable('Where successor exec -> old process exit goes (ms; each phase from the end of the one before)',
    report.handoffPhasesMs.map((p) => ({ phase: p.phase, p50: p.p50, p99: p.p99, max: p.max })));
  const { inside, outside } = report.requestLatencyMs;
  printTable('Request latency (ms): requests overlapping a handoff window, and the others', [
    { requests: 'inside handoff windows', count: inside.requests, p50: inside.p50, p99: inside.p99, max: inside.max },
    { requests: 'outside', count: outside.requests, p50: outside.p50, p99: outside.p99, max: outside.max },
    { requests: 'p99 inside / outside', count: '', p50: NaN, p99: inside.p99 / outside.p99, max: NaN },
  ]);
  process.stdout.write(`violations: ${report.violations.length === 0 ? 'none' : report.violations.join('; ')}\n`);
  process.stdout.write(`written: ${writeJson('handoff', { handoffs: report.handoffs, clients: CLIENTS, timerDelayMs: DELAY_MS, pauseMs: PAUSE_MS,
    latencyMs: report.handoffLatencyMs, acrossHandoffP99Ms: report.ticks.acrossHandoffP99Ms,
    longestAcrossHandoffMs: report.ticks.longestAcrossHandoffMs, phasesMs: report.handoffPhasesMs,
    requestLatencyMs: report.requestLatencyMs, violations: report.violations })}\n`);
  if (report.violations.length > 0) process.exitCode = 1;
}

main();
