// The faults of a chaos campaign: each one acts on the service at a random
// moment of one of its states (a successor's start, takeover and commit; a
// donor's settling, freeze and wait for the commit; serving; stopping) and
// returns; World.settle() then waits for the outcome and checks it.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { waitUntilStopped } from '../ipc/proc';
import type { Member, World } from './chaos-world';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export interface Random {
  /** A whole number in [min, max]. */
  int(min: number, max: number): number;
  pick<T>(items: readonly T[]): T;
}

/** A seeded generator (mulberry32): a campaign can be replayed with its seed. */
export function random(seed: number): Random {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    pick: (items) => items[Math.floor(next() * items.length)]!,
  };
}

type Fault = (w: World, r: Random) => Promise<void>;

const SIGNALS = ['SIGKILL', 'SIGTERM', 'SIGCONT'] as const;

/** Waits until `m` logs `pattern`, or gives up quietly (the fault may have ended it first). */
async function reached(m: Member, pattern: RegExp, timeoutMs = 20_000): Promise<boolean> {
  try {
    await m.instance.waitForLine(pattern, timeoutMs);
    return true;
  } catch {
    return false;
  }
}

/** A process stopped somewhere (SIGSTOP) for `ms`, then continued. */
async function pause(w: World, m: Member, ms: number): Promise<void> {
  w.signal(m, 'SIGSTOP');
  await sleep(ms);
  w.signal(m, 'SIGCONT');
}

/** Client connections held open for a fault: idle, or holding an unfinished line. */
async function hold(w: World, count: number, unfinished: string): Promise<net.Socket[]> {
  const sockets: net.Socket[] = [];
  for (let i = 0; i < count; i++) {
    const socket = net.createConnection(w.socketPath);
    socket.on('error', () => undefined);
    sockets.push(socket);
    await new Promise((resolve) => { socket.once('connect', resolve); socket.once('error', resolve); });
    if (unfinished.length > 0) socket.write(unfinished);
  }
  return sockets;
}

/** A handoff while `sockets` are connected; then they go (finishing their line first, if any). */
async function handoffWhileHeld(w: World, sockets: net.Socket[]): Promise<void> {
  const next = w.successor();
  await reached(next, /^(Took over from pid |Listening on UNIX socket )/);
  for (const socket of sockets) socket.end('\n');
  await sleep(100);
  for (const socket of sockets) socket.destroy();
}

export const FAULTS: Record<string, Fault> = {
  'successor: SIGKILL at a random moment': async (w, r) => {
    const next = w.successor();
    await sleep(r.int(0, 800));
    // Killed after its commit it was the server: that is a crash of the service.
    w.signal(next, 'SIGKILL');
  },
  'successor: SIGTERM at a random moment': async (w, r) => {
    const next = w.successor();
    await sleep(r.int(0, 800));
    w.signal(next, 'SIGTERM');
  },
  'successor: SIGSTOP at a random moment, SIGCONT later': async (w, r) => {
    const next = w.successor();
    await sleep(r.int(0, 800));
    await pause(w, next, r.int(10, 2 * w.handoffTimeoutMs));
  },
  'successor: stopped at a phase of its takeover, then SIGKILL, SIGTERM or SIGCONT': async (w, r) => {
    const phase = r.pick(['before-request', 'after-receive', 'after-commit']);
    const next = w.successor({ env: { EARLY_SERVICE_FAULT: `stop-${phase}` } });
    if (!(await reached(next, /^fault injection: stopping /))) return;
    await waitUntilStopped(next.instance.pid).catch(() => undefined);
    await sleep(r.int(0, 300));
    const signal = r.pick(SIGNALS);
    w.signal(next, signal);
    if (signal === 'SIGTERM') w.signal(next, 'SIGCONT');
  },
  'donor: SIGKILL at a random moment of a handoff': async (w, r) => {
    const donor = w.server;
    w.successor();
    await sleep(r.int(0, 800));
    w.signal(donor, 'SIGKILL');
  },
  'donor: SIGTERM at a random moment of a handoff': async (w, r) => {
    const donor = w.server;
    w.successor();
    await sleep(r.int(0, 800));
    w.signal(donor, 'SIGTERM');
  },
  'donor: SIGSTOP at a random moment of a handoff, SIGCONT later': async (w, r) => {
    const donor = w.server;
    w.successor();
    await sleep(r.int(0, 800));
    await pause(w, donor, r.int(10, 2 * w.handoffTimeoutMs));
  },
  'donor: dies after sending, and is not reaped (a zombie)': async (w, r) => {
    // First the service moves to a process whose parent never reaps it.
    const unreaped = w.successor({ unreaped: true });
    await reached(unreaped, /^Took over from pid /);
    await w.settle('donor: dies after sending, and is not reaped (a zombie)');
    const next = w.successor({ env: { EARLY_SERVICE_FAULT: 'stop-after-receive' } });
    if (!(await reached(next, /^fault injection: stopping /))) return;
    await waitUntilStopped(next.instance.pid).catch(() => undefined);
    w.signal(unreaped, 'SIGKILL');
    await sleep(r.int(0, 100));
    w.signal(next, 'SIGCONT');
  },
  'a successor started on a dead socket': async (w, r) => {
    w.signal(w.server, 'SIGKILL');
    await sleep(r.int(0, 300));
    w.successor();
  },
  'a restart right after a crash': async (w) => {
    w.signal(w.server, 'SIGKILL');
    w.successor();
  },
  'a stop, then a start': async (w) => {
    const server = w.server;
    w.signal(server, 'SIGTERM');
    await server.instance.exited;
    w.successor();
  },
  'a predecessor of a foreign uid': async (w) => {
    if (process.getuid?.() !== 0) return;
    // Its own directory: the service's socket is not touched.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'early-service-chaos-foreign-'));
    fs.chmodSync(dir, 0o777);
    const sock = path.join(dir, 's.sock');
    const foreign = w.spawn(['-s', sock, '-d', '10'], { uid: 65534 }, true);
    try {
      if (!(await reached(foreign, /^Listening on UNIX socket /))) return;
      const next = w.spawn(['-s', sock, '--takeover_existing_socket', '-d', '10'], {}, true);
      const exit = await next.instance.exited;
      if (exit.code !== 1 || !next.instance.lines.some((l) => /uid 65534, which may not hand over/.test(l))) {
        w.violation('a predecessor of a foreign uid', `the successor did not refuse it (exit ${exit.code}): ${next.instance.lines.slice(-3).join(' | ')}`);
      }
    } finally {
      foreign.instance.kill('SIGTERM');
      await foreign.instance.exited;
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
  'a client that never reads its replies, during a handoff': async (w) => {
    const hog = net.createConnection(w.socketPath);
    hog.on('error', () => undefined);
    await new Promise((resolve) => { hog.once('connect', resolve); hog.once('error', resolve); });
    hog.pause();
    hog.write('get_counter\n'.repeat(50_000));
    await sleep(100);
    const next = w.successor();
    await reached(next, /^(Took over from pid |Listening on UNIX socket )/);
    hog.destroy();
  },
  'clients holding unfinished lines, during a handoff': async (w, r) => {
    await handoffWhileHeld(w, await hold(w, r.int(10, 100), 'get_coun'));
  },
  'hundreds of idle connections, during a handoff': async (w, r) => {
    await handoffWhileHeld(w, await hold(w, r.int(200, 400), ''));
  },
  'a successor out of descriptors (EMFILE)': async (w) => {
    const sockets = await hold(w, 120, '');
    const next = w.successor({ prefix: ['prlimit', '--nofile=64:64'] });
    await Promise.race([next.instance.exited, reached(next, /^Took over from pid /)]);
    for (const socket of sockets) socket.destroy();
  },
  'the state file replaced by a FIFO, a symlink or garbage': async (w, r) => {
    const how = r.pick(['fifo', 'symlink', 'garbage'] as const);
    replaceStateFile(w.stateFile, how);
    // The next save replaces it with a good one.
    await sleep(400);
  },
  'the state file replaced, then a crash': async (w, r) => {
    replaceStateFile(w.stateFile, r.pick(['fifo', 'symlink', 'garbage'] as const));
    w.stateFileLost = true;
    w.signal(w.server, 'SIGKILL');
  },
  'a plain handoff': async (w) => {
    const next = w.successor();
    await reached(next, /^(Took over from pid |Listening on UNIX socket )/);
  },
};

/** Puts something that is not a state file at its path (the service's saves race with this: retried). */
function replaceStateFile(file: string, how: 'fifo' | 'symlink' | 'garbage'): void {
  for (let attempt = 0; ; attempt++) {
    fs.rmSync(file, { force: true });
    try {
      if (how === 'fifo') execFileSync('mkfifo', [file], { stdio: 'ignore' });
      if (how === 'symlink') fs.symlinkSync('/etc/hostname', file);
      if (how === 'garbage') fs.writeFileSync(file, 'early-service-state 1\ncounter 12\nchecksum 0000000000000000\n', { flag: 'wx' });
      return;
    } catch (error) {
      if (attempt >= 20) throw error;
    }
  }
}
