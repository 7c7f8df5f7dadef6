// Test helpers: real processes of the built daemon, real UNIX sockets.
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { endProcess, spawnTracked } from './harness';

export const ROOT = path.resolve(__dirname, '..', '..');
/** The daemon the tests run; ES_TEST_MAIN runs them against another build (e.g. an older one, to see a test fail). */
export const MAIN = process.env.ES_TEST_MAIN ?? path.join(ROOT, 'dist', 'src', 'supervisor', 'main.js');
/** The installable single-file build (`npm run build`). */
export const BUNDLE = path.join(ROOT, 'dist', 'bundle', 'early-service.js');

/** A fresh directory for one test's socket, removed when the test ends. */
export function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'es-test-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface Service {
  child: ChildProcess;
  pid: number;
  /** Every stdout line so far, journal format (`<6>15`), prefix removed. */
  lines: string[];
  stderr: string[];
  /** The tick values logged so far, in order. */
  ticks(): bigint[];
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Resolves once `count` more ticks than now have been logged. */
  waitForTicks(count: number, timeoutMs?: number): Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(): Promise<void>;
}

const TICK = /^-?[0-9]+$/;

/** What the units run node with (conf/*.service, docs/BENCHMARKS.md "RSS"): the tests run the daemon as deployed. */
export const NODE_OPTIONS = ['--max-semi-space-size=1', '--single-threaded-gc'];

/** Starts `node main.js args` (or another build) with journal-style output and collects its lines. */
export function startService(args: string[], env: NodeJS.ProcessEnv = {}, main = MAIN): Service {
  return startProgram(process.execPath, [...NODE_OPTIONS, main, '--log-format', 'journal', ...args],
    { MALLOC_ARENA_MAX: '2', ...env });
}

/** Starts any program speaking the protocol (the C reference, say) and collects its lines the same way. */
export function startProgram(command: string, args: string[], env: NodeJS.ProcessEnv = {}): Service {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  delete childEnv.NODE_EXTRA_CA_CERTS;
  return watchService(spawnTracked(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv }));
}

/** A Service for a process already started (its stdout and stderr piped), e.g. under a wrapper. */
export function watchService(child: ChildProcess, pid = child.pid!): Service {
  const lines: string[] = [];
  const stderr: string[] = [];
  const waiters: Array<() => void> = [];
  const onLines = (target: string[]) => {
    let rest = '';
    return (chunk: Buffer) => {
      const parts = (rest + chunk.toString('utf8')).split('\n');
      rest = parts.pop() ?? '';
      for (const part of parts) target.push(part.replace(/^<[0-7]>/, ''));
      for (const wake of waiters.splice(0)) wake();
    };
  };
  child.stdout!.on('data', onLines(lines));
  child.stderr!.on('data', onLines(stderr));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => {
      // Let the pipes deliver their last lines.
      setTimeout(() => { for (const wake of waiters.splice(0)) wake(); resolve({ code, signal }); }, 50);
    });
  });
  const service: Service = {
    child,
    pid,
    lines,
    stderr,
    ticks: () => lines.filter((l) => TICK.test(l)).map((l) => BigInt(l)),
    async waitForLine(pattern, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      let exitedAlready = false;
      void exited.then(() => { exitedAlready = true; });
      for (;;) {
        const found = lines.find((l) => pattern.test(l));
        if (found !== undefined) return found;
        if (exitedAlready) throw new Error(`exited before printing ${pattern}: ${[...lines, ...stderr].join('\n')}`);
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern}; got:\n${lines.slice(-20).join('\n')}\n${stderr.join('\n')}`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 100);
        });
      }
    },
    async waitForTicks(count, timeoutMs = 10_000) {
      const target = service.ticks().length + count;
      const deadline = Date.now() + timeoutMs;
      while (service.ticks().length < target) {
        if (Date.now() > deadline) throw new Error(`waited ${timeoutMs} ms for ${count} ticks, got ${target - count - service.ticks().length}`);
        await service.waitForLine(/^-?[0-9]+$/, Math.max(1, deadline - Date.now())).catch(() => undefined);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
    exited,
    /** SIGTERM, escalating to SIGKILL of its process group if it does not exit in time. */
    async stop() {
      await endProcess(child);
      await exited;
    },
  };
  return service;
}

/** Starts a serving instance and waits until it listens. */
export async function startServing(socketPath: string, extra: string[] = [], env?: NodeJS.ProcessEnv,
  main = MAIN): Promise<Service> {
  const service = startService(['-s', socketPath, ...extra], env, main);
  await service.waitForLine(/^Listening on UNIX socket /);
  return service;
}

/**
 * Sends `text` on a new connection and resolves with what the server sent back
 * once it has sent `replyLines` lines (or closed the connection).
 */
export function request(socketPath: string, text: string | Buffer, replyLines = 1, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(socketPath);
    let data = '';
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`no reply to ${JSON.stringify(String(text))} (got ${JSON.stringify(data)})`)); }, timeoutMs);
    const done = () => { clearTimeout(timer); socket.destroy(); resolve(data); };
    socket.on('connect', () => socket.write(text));
    socket.on('data', (chunk) => {
      data += chunk.toString('latin1');
      if (data.split('\n').length - 1 >= replyLines) done();
    });
    socket.on('end', done);
    socket.on('error', (error) => { clearTimeout(timer); reject(error); });
  });
}

export class NotDelivered extends Error {}

/** A persistent client connection answering one request at a time. */
export class Client {
  private readonly socket: net.Socket;
  private buffer = '';
  private pending: Array<{ resolve: (line: string) => void; reject: (e: Error) => void }> = [];
  closed = false;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk) => {
      this.buffer += chunk.toString('latin1');
      let index: number;
      while ((index = this.buffer.indexOf('\n')) >= 0) {
        const line = this.buffer.slice(0, index);
        this.buffer = this.buffer.slice(index + 1);
        this.pending.shift()?.resolve(line);
      }
    });
    const fail = (error: Error) => {
      this.closed = true;
      // Deferred so that a failed write has reported itself first.
      const pending = this.pending.splice(0);
      setImmediate(() => { for (const p of pending) p.reject(error); });
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('connection closed')));
  }

  static connect(socketPath: string): Promise<Client> {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection(socketPath);
      socket.once('connect', () => resolve(new Client(socket)));
      socket.once('error', reject);
    });
  }

  /**
   * Sends one line and resolves with the reply line (without its LF). When
   * the server refused the bytes themselves (EPIPE: it had stopped reading),
   * the error is a NotDelivered: the request never reached it.
   */
  ask(line: string): Promise<string> {
    if (this.closed) return Promise.reject(new NotDelivered('connection closed before the request'));
    return new Promise((resolve, reject) => {
      let notDelivered = false;
      this.pending.push({ resolve, reject: (error) => reject(notDelivered ? new NotDelivered(error.message) : error) });
      this.socket.write(`${line}\n`, (error) => {
        if (error) notDelivered = true;
      });
    });
  }

  /** Sends bytes as they are, with no line end and no reply expected. */
  send(bytes: string): void {
    this.socket.write(bytes);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Descriptors a process has open (from /proc). */
export function openFds(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Asserts that `values` are consecutive integers; returns a message or undefined. */
export function findGap(values: bigint[]): string | undefined {
  for (let i = 1; i < values.length; i++) {
    if (values[i] !== values[i - 1] + 1n) return `tick ${values[i - 1]} followed by ${values[i]} at index ${i}`;
  }
  return undefined;
}
