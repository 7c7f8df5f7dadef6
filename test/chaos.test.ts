// The fault campaign (early-service stress --chaos), CI-sized: every kind of
// fault at random moments while clients hammer the socket, every guarantee
// checked; the long run is `npm run stress:chaos` (2000 faults). The seed is
// printed with the report, so a failure can be replayed.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnTracked, test } from './harness';
import type { ChaosReport } from '../src/stress/chaos';
import { ROOT } from './helpers';

test('a campaign of 60 faults at random moments under 8 clients: no violation, every kind injected', { timeout: 900_000 }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'es-chaos-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const json = path.join(dir, 'report.json');
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  const child = spawnTracked(process.execPath, [path.join(ROOT, 'dist', 'src', 'stress', 'stress.js'), '--chaos', '60',
    '--clients', '8', '--json', json], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let output = '';
  child.stdout!.on('data', (d) => { output += d; });
  child.stderr!.on('data', (d) => { output += d; });
  const code = await new Promise((resolve) => child.on('close', resolve));
  const report = JSON.parse(fs.readFileSync(json, 'utf8')) as ChaosReport;
  assert.deepEqual(report.violations, [], output);
  assert.equal(code, 0, output);
  assert.equal(Object.values(report.byKind).reduce((sum, k) => sum + k.injected, 0), 60);
  assert.ok(report.requests.answered > 10_000, `only ${report.requests.answered} requests`);
  assert.ok(report.writes.acknowledged > 1000);
  assert.ok(report.ticks.processes > 30, `${report.ticks.processes} processes`);
});
