// One early-service process of a stress run: started, its tick lines read
// with their arrival times, its descriptors and memory sampled, its exit seen.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BUNDLED } from '../ipc/bundled';
import { processState } from '../ipc/proc';

// The stress tool ships inside the daemon: it starts the very file it runs from.
const MAIN = BUNDLED ? process.argv[1]! : path.join(__dirname, '..', 'supervisor', 'main.js');

export interface Tick {
  value: bigint;
  /** When the ticker logged it (pino's time, wall clock), in ns. */
  at: bigint;
}

export interface ProcessSample {
  fds: number;
  /** Descriptors that are not sockets (client connections come and go; these must not). */
  otherFds: number;
  /** What those are (readlink, numbers dropped: "pipe:", "anon_inode:[eventfd]", paths). */
  otherKinds: string[];
  threads: number;
  rssKiB: number;
}

export interface InstanceOptions {
  env?: NodeJS.ProcessEnv;
  /** Run as this uid (and gid): a predecessor of another user. */
  uid?: number;
  /** Words before node, e.g. ['prlimit', '--nofile=40:40'] (a command that execs the rest). */
  prefix?: string[];
  /**
   * Its parent never reaps it: once dead it stays a zombie (started as
   * `sh -c 'node … & exec sleep'`). Its exit status is never known.
   */
  unreaped?: boolean;
}

export class Instance {
  readonly child: ChildProcess;
  readonly startedAt = process.hrtime.bigint();
  readonly ticks: Tick[] = [];
  readonly lines: string[] = [];
  /** Each line that is not a tick, with the time it was logged at (ms). */
  readonly events: Array<{ msg: string; at: number }> = [];
  exitedAt: bigint | undefined;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly unreaped: boolean;
  /** The daemon's own pid, as its log lines say (under a wrapper it is not the child's). */
  private daemonPid: number | undefined;
  private readonly waiters: Array<() => void> = [];

  constructor(args: string[], options: InstanceOptions = {}) {
    const childEnv = { ...process.env, ...options.env };
    delete childEnv.NODE_EXTRA_CA_CERTS;
    this.unreaped = options.unreaped === true;
    // JSON: each tick carries the time it was logged at, not when this busy
    // process got round to reading it.
    // node's own options too (the installed wrapper's --max-semi-space-size=…): run as deployed.
    const command = [...(options.prefix ?? []), process.execPath, ...process.execArgv, MAIN, '--log-format', 'json', ...args];
    const [file, ...words] = this.unreaped ? ['sh', '-c', '"$@" & exec sleep 86400', 'sh', ...command] : command;
    this.child = spawn(file!, words, {
      stdio: ['ignore', 'pipe', 'inherit'], env: childEnv,
      ...(options.uid === undefined ? {} : { uid: options.uid, gid: options.uid }),
    });
    let rest = '';
    this.child.stdout!.on('data', (chunk: Buffer) => {
      const parts = (rest + chunk.toString('utf8')).split('\n');
      rest = parts.pop() ?? '';
      for (const raw of parts) {
        const { msg, time, pid } = JSON.parse(raw) as { msg: string; time: number; pid: number };
        this.daemonPid ??= pid;
        if (/^-?\d+$/.test(msg)) this.ticks.push({ value: BigInt(msg), at: BigInt(time) * 1_000_000n });
        else {
          this.lines.push(msg);
          this.events.push({ msg, at: time });
        }
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
    return this.daemonPid ?? this.child.pid!;
  }

  /** Whether the daemon still runs (a zombie does not). */
  get alive(): boolean {
    if (this.exitedAt !== undefined) return false;
    const state = processState(this.pid);
    return state !== undefined && state !== 'Z' && state !== 'X';
  }

  /** Sends `signal` to the daemon itself (not to a wrapper around it). */
  kill(signal: NodeJS.Signals): void {
    try {
      process.kill(this.pid, signal);
    } catch {
      // Gone already.
    }
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
    const entries = fs.readdirSync(`/proc/${this.pid}/fd`);
    const otherKinds: string[] = [];
    for (const entry of entries) {
      try {
        const target = fs.readlinkSync(`/proc/${this.pid}/fd/${entry}`);
        if (!target.startsWith('socket:')) otherKinds.push(target.replace(/\[[0-9]+\]$/, ''));
      } catch {
        // Closed meanwhile.
      }
    }
    const fds = entries.length;
    const status = fs.readFileSync(`/proc/${this.pid}/status`, 'utf8');
    const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
    // Counted from what was read: a client's socket closed between readdir and
    // readlink is neither a socket nor another kind of descriptor.
    return { fds, otherFds: otherKinds.length, otherKinds: otherKinds.sort(), threads: field('Threads'), rssKiB: field('VmRSS') };
  }
}
