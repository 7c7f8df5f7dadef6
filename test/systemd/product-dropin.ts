// Drop-ins that change how the installed early-service.service runs, the way
// an integrator would: the unit's own ExecStart= (read from
// conf/early-service.service, so it follows the product) with options added,
// and any other [Service] lines.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO } from './harness';

/** The ExecStart= command line of conf/early-service.service. */
export function productExecStart(): string {
  const unit = fs.readFileSync(path.join(REPO, 'conf/early-service.service'), 'utf8');
  const lines = unit.split('\n').filter((l) => l.startsWith('ExecStart='));
  if (lines.length !== 1) throw new Error(`expected one ExecStart= in conf/early-service.service, found ${lines.length}`);
  return lines[0]!.slice('ExecStart='.length);
}

/**
 * Writes a drop-in file named `name` (in a new temporary directory) that runs
 * the unit's command with `args` appended, plus `serviceLines`; returns its path.
 */
export function serviceDropin(name: string, args: string[], serviceLines: string[] = []): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'es-journal-dropin-'));
  const file = path.join(dir, name);
  const exec = args.length > 0 ? ['ExecStart=', `ExecStart=${productExecStart()} ${args.join(' ')}`] : [];
  fs.writeFileSync(file, ['[Service]', ...exec, ...serviceLines, ''].join('\n'));
  return file;
}
