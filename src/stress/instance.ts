// One early-service process of a stress run: started, its tick lines read
// with their arrival times, its descriptors and memory sampled, its exit seen.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const MAIN = path.join(__dirname, '..', 'supervisor', 'main.js');

export interface Tick {
  value: bigint;
  /** process.hrtime.bigint() when the line arrived. */
  at: bigint;
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
    this.child = spawn(process.execPath, [MAIN, '--log-format', 'journal', ...args],
      { stdio: ['ignore', 'pipe', 'inherit'], env: childEnv });
    let rest = '';
    this.child.stdout!.on('data', (chunk: Buffer) => {
      const at = process.hrtime.bigint();
      const parts = (rest + chunk.toString('latin1')).split('\n');
      rest = parts.pop() ?? '';
      for (const raw of parts) {
        const line = raw.replace(/^<\d>/, '');
        if (/^-?\d+$/.test(line)) this.ticks.push({ value: BigInt(line), at });
        else this.lines.push(line);
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

  /** Open descriptors and resident memory (KiB), from /proc. */
  sample(): { fds: number; rssKiB: number } {
    const fds = fs.readdirSync(`/proc/${this.pid}/fd`).length;
    const rssKiB = Number(fs.readFileSync(`/proc/${this.pid}/statm`, 'utf8').split(' ')[1]) * 4;
    return { fds, rssKiB };
  }
}
