// One early-service process of a stress run: started, its tick lines read
// with their arrival times, its descriptors and memory sampled, its exit seen.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BUNDLED } from '../ipc/bundled';

// The stress tool ships inside the daemon: it starts the very file it runs from.
const MAIN = BUNDLED ? process.argv[1]! : path.join(__dirname, '..', 'supervisor', 'main.js');

export interface Tick {
  value: bigint;
  /** When the ticker logged it (pino's time, wall clock), in ns. */
  at: bigint;
}

export interface ProcessSample {
  fds: number;
  threads: number;
  rssKiB: number;
}

export class Instance {
  readonly child: ChildProcess;
  readonly startedAt = process.hrtime.bigint();
  readonly ticks: Tick[] = [];
  readonly lines: string[] = [];
  exitedAt: bigint | undefined;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly waiters: Array<() => void> = [];

  constructor(args: string[], env: NodeJS.ProcessEnv = {}) {
    const childEnv = { ...process.env, ...env };
    delete childEnv.NODE_EXTRA_CA_CERTS;
    // JSON: each tick carries the time it was logged at, not when this busy
    // process got round to reading it.
    this.child = spawn(process.execPath, [MAIN, '--log-format', 'json', ...args],
      { stdio: ['ignore', 'pipe', 'inherit'], env: childEnv });
    let rest = '';
    this.child.stdout!.on('data', (chunk: Buffer) => {
      const parts = (rest + chunk.toString('utf8')).split('\n');
      rest = parts.pop() ?? '';
      for (const raw of parts) {
        const { msg, time } = JSON.parse(raw) as { msg: string; time: number };
        if (/^-?\d+$/.test(msg)) this.ticks.push({ value: BigInt(msg), at: BigInt(time) * 1_000_000n });
        else this.lines.push(msg);
      }
      for (const wake of this.waiters.splice(0)) wake();
    });
    this.child.on('exit', () => { this.exitedAt = process.hrtime.bigint(); });
    // 'close' comes after the exit and after the last line left the pipe.
    this.exited = new Promise((resolve) => {
      this.child.on('close', (code, signal) => {
        for (const wake of this.waiters.splice(0)) wake();
        resolve({ code, signal });
      });
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  async waitForLine(pattern: RegExp, timeoutMs = 15_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.lines.find((l) => pattern.test(l));
      if (found !== undefined) return found;
      if (this.exitedAt !== undefined) throw new Error(`pid ${this.pid} exited before logging ${pattern}: ${this.lines.slice(-5).join(' | ')}`);
      if (Date.now() > deadline) throw new Error(`pid ${this.pid} did not log ${pattern} in ${timeoutMs} ms: ${this.lines.slice(-5).join(' | ')}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  /** Open descriptors, threads and resident memory (KiB), from /proc. */
  sample(): ProcessSample {
    const fds = fs.readdirSync(`/proc/${this.pid}/fd`).length;
    const status = fs.readFileSync(`/proc/${this.pid}/status`, 'utf8');
    const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
    return { fds, threads: field('Threads'), rssKiB: field('VmRSS') };
  }
}
