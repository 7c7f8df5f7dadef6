// Interoperability of the socket handoff with GIO, in both directions, against
// test/gio/gio-peer.c: a small GIO program modelled on the seed's C reference
// (g_unix_connection_send_fd / g_unix_connection_receive_fd, GSocketService).
//
//   a. ours -> GIO: the daemon hands its socket and counter to `gio-peer takeover`.
//   b. GIO -> ours: `gio-peer serve` hands its socket and counter to the daemon.
//   c. clients connecting continuously across either handoff are all answered.
//
// The peer is compiled here with cc and pkg-config; a failed build fails every
// test with the compiler's output.
import type { TestContext } from 'node:test';
import { spawnTracked, test } from './harness';
import assert from 'node:assert/strict';
import { type ChildProcess, execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {
  ROOT, type Service, findGap, request, sleep, startService, startServing, tempDir,
} from './helpers';

const PEER_SOURCE = path.join(ROOT, 'test', 'gio', 'gio-peer.c');
const PEER_DIR = path.join(ROOT, 'build', 'gio-peer');
const PEER_BINARY = path.join(PEER_DIR, 'gio-peer');
const TIMEOUT_MS = 10_000;

// --- building the peer -------------------------------------------------------

let built: Promise<string> | undefined;

/** Compiles gio-peer.c once per run; rejects with the compiler output on failure. */
function buildPeer(): Promise<string> {
  built ??= new Promise((resolve, reject) => {
    fs.mkdirSync(PEER_DIR, { recursive: true });
    // Built under a temporary name and renamed: never run a half-written binary.
    const output = `${PEER_BINARY}.${process.pid}.tmp`;
    const command = 'cc -std=gnu11 -Wall -Wextra -Werror -O2 -o "$1" "$2" $(pkg-config --cflags --libs gio-2.0 gio-unix-2.0)';
    execFile('sh', ['-c', command, 'sh', output, PEER_SOURCE], { timeout: 60_000 }, (error, stdout, stderr) => {
      if (error) {
        fs.rmSync(output, { force: true });
        reject(new Error(`compiling ${PEER_SOURCE} failed (${error.message.split('\n')[0]}):\n${stdout}${stderr}\n`
          + 'It needs a C compiler and GLib\'s headers (Debian: apt-get install --no-install-recommends gcc libc6-dev '
          + 'pkg-config libglib2.0-dev; scripts/setup-debian.sh installs everything the tests need)'));
        return;
      }
      fs.renameSync(output, PEER_BINARY);
      resolve(PEER_BINARY);
    });
  });
  return built;
}

// --- running the peer ----------------------------------------------------------

interface Exit { code: number | null; signal: NodeJS.Signals | null }

interface Peer {
  child: ChildProcess;
  lines: string[];
  stderr: string[];
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  exited: Promise<Exit>;
  /** SIGTERM, then the exit status. */
  stop(): Promise<Exit>;
}

async function startPeer(t: TestContext, args: string[]): Promise<Peer> {
  const binary = await buildPeer();
  const child = spawnTracked(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const stderr: string[] = [];
  const waiters: Array<() => void> = [];
  const collect = (target: string[]) => {
    let rest = '';
    return (chunk: Buffer) => {
      const parts = (rest + chunk.toString('utf8')).split('\n');
      rest = parts.pop() ?? '';
      target.push(...parts);
      for (const wake of waiters.splice(0)) wake();
    };
  };
  child.stdout!.on('data', collect(lines));
  child.stderr!.on('data', collect(stderr));
  let done = false;
  const exited = new Promise<Exit>((resolve) => {
    const finish = (exit: Exit) => {
      // Let the pipes deliver their last lines.
      setTimeout(() => { done = true; for (const wake of waiters.splice(0)) wake(); resolve(exit); }, 50);
    };
    child.on('exit', (code, signal) => finish({ code, signal }));
    child.on('error', (error) => { stderr.push(`spawn: ${error.message}`); finish({ code: null, signal: null }); });
  });
  const peer: Peer = {
    child,
    lines,
    stderr,
    async waitForLine(pattern, timeoutMs = TIMEOUT_MS) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = lines.find((l) => pattern.test(l));
        if (found !== undefined) return found;
        const output = `stdout:\n${lines.join('\n')}\nstderr:\n${stderr.join('\n')}`;
        if (done) throw new Error(`gio-peer ${args.join(' ')} exited before printing ${pattern}\n${output}`);
        if (Date.now() > deadline) throw new Error(`gio-peer ${args.join(' ')}: timed out waiting for ${pattern}\n${output}`);
        await new Promise<void>((resolve) => { waiters.push(resolve); setTimeout(resolve, 100); });
      }
    },
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  return peer;
}

function startOurs(t: TestContext, service: Service): Service {
  t.after(() => service.stop());
  return service;
}

async function withTimeout<T>(promise: Promise<T>, what: string, timeoutMs = TIMEOUT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms: ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function waitUntil(condition: () => boolean, what: string, timeoutMs = TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

const describeService = (service: Service): string =>
  `stdout:\n${service.lines.slice(-30).join('\n')}\nstderr:\n${service.stderr.join('\n')}`;

// --- clients across a handoff ----------------------------------------------------

interface Hammer {
  /** The answers so far. */
  readonly answered: readonly bigint[];
  /** Stops sending and resolves once every request sent has settled. */
  stop(): Promise<{ answered: bigint[]; failures: string[] }>;
}

/**
 * Sends `get_counter` on a new connection every `everyMs`, without waiting for
 * the replies. A failure is an error (ECONNREFUSED, ENOENT, EPIPE, …), a
 * timeout or a reply that is not a counter line (an empty one included).
 */
/**
 * A request; a connect that finds the backlog full (EAGAIN: a UNIX socket's
 * connect does not wait) is tried again 5 ms later, as a client must. The
 * GIO peer listens with GLib's default backlog of 10: a client every 3 ms
 * fills it if the successor takes more than ~30 ms from the peer's last
 * accept to its own first (a loaded machine), before it can raise it.
 */
async function requestRetryingFullBacklog(socketPath: string): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await request(socketPath, 'get_counter\n', 1, TIMEOUT_MS);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN' || attempt >= 200) throw error;
      await sleep(5);
    }
  }
}

function hammer(t: TestContext, socketPath: string, everyMs = 3): Hammer {
  const answered: bigint[] = [];
  const failures: string[] = [];
  const pending = new Set<Promise<void>>();
  let running = true;
  // Never outlive the test, even when an assertion ends it early.
  t.after(() => { running = false; });
  const start = Date.now();
  const loop = (async () => {
    while (running) {
      const sent = Date.now() - start;
      const one: Promise<void> = requestRetryingFullBacklog(socketPath).then(
        (reply) => {
          if (/^-?[0-9]+\n$/.test(reply)) answered.push(BigInt(reply.trim()));
          else failures.push(`reply ${JSON.stringify(reply)} (sent at +${sent} ms)`);
        },
        (error: Error) => { failures.push(`${error.message} (sent at +${sent} ms)`); },
      ).finally(() => pending.delete(one));
      pending.add(one);
      await sleep(everyMs);
    }
  })();
  return {
    answered,
    async stop() {
      running = false;
      await loop;
      while (pending.size > 0) await Promise.all([...pending]);
      return { answered, failures };
    },
  };
}

// --- the tests -------------------------------------------------------------------

test('gio-peer compiles against GIO', { timeout: 60_000 }, async () => {
  const binary = await buildPeer();
  assert.ok(fs.statSync(binary).mode & 0o100, 'the peer binary is executable');
});

/** Direction a, optionally with clients across the handoff; returns what they saw. */
async function oursToGio(t: TestContext,
  withClients: boolean): Promise<{ answered: bigint[]; failures: string[]; counter: bigint }> {
  await buildPeer();
  const sock = path.join(tempDir(t), 'early-service.sock');
  const ours = startOurs(t, await startServing(sock, ['-d', '20']));
  await waitUntil(() => ours.ticks().length >= 3, 'our first ticks');

  assert.match(await request(sock, 'set_counter 1000\n'), /^previous value [0-9]+\n$/);
  await waitUntil(() => ours.ticks().filter((v) => v >= 1000n).length >= 5, 'ticks from 1000');

  const clients = withClients ? hammer(t, sock) : undefined;
  if (clients) await sleep(100);

  const peer = await startPeer(t, ['takeover', sock]);
  const counterLine = await peer.waitForLine(/^counter /);
  const counter = BigInt(counterLine.slice('counter '.length));

  const oursExit = await withTimeout(ours.exited, 'our process to exit after the handoff');
  assert.deepEqual(oursExit, { code: 0, signal: null }, describeService(ours));

  const ticks = ours.ticks();
  const fromSet = ticks.slice(ticks.indexOf(1000n));
  assert.equal(fromSet[0], 1000n, 'the tick after set_counter 1000 is 1000');
  assert.equal(findGap(fromSet), undefined);
  const last = ticks[ticks.length - 1];
  assert.ok(last >= 1004n);
  assert.equal(counter, last + 1n, `the GIO peer got the value after our last tick ${last}`);
  assert.ok(ours.lines.includes(`Passing file descriptor for ${sock} to other process`), describeService(ours));

  assert.ok(fs.lstatSync(sock).isSocket(), 'the socket path still exists');
  await peer.waitForLine(/^serving$/);
  assert.equal(await request(sock, 'get_counter\n', 1, TIMEOUT_MS), `${counter}\n`, 'the GIO peer answers on the path');

  // However slow the machine: enough answers, some of them the GIO peer's, before the clients stop.
  if (clients) await waitUntil(() => clients.answered.length >= 30 && clients.answered.includes(counter), 'answers from the GIO peer');
  const seen = clients ? await clients.stop() : { answered: [], failures: [] };
  const peerExit = await withTimeout(peer.stop(), 'the GIO peer to stop');
  assert.deepEqual(peerExit, { code: 0, signal: null }, peer.stderr.join('\n'));
  return { ...seen, counter };
}

/** Direction b, optionally with clients across the handoff. */
async function gioToOurs(t: TestContext,
  withClients: boolean): Promise<{ answered: bigint[]; failures: string[] }> {
  const sock = path.join(tempDir(t), 'early-service.sock');
  const peer = await startPeer(t, ['serve', sock, '4242']);
  await peer.waitForLine(/^ready$/);
  assert.equal(await request(sock, 'get_counter\n'), '4242\n', 'the GIO peer serves 4242');

  const clients = withClients ? hammer(t, sock) : undefined;
  if (clients) await sleep(100);

  const ours = startOurs(t, startService(['-s', sock, '--takeover_existing_socket', '-d', '20']));
  const peerExit = await withTimeout(peer.exited, 'the GIO peer to exit after the handoff');
  assert.deepEqual(peerExit, { code: 0, signal: null }, `${peer.stderr.join('\n')}\n${describeService(ours)}`);

  await ours.waitForLine(/^Successfully received file descriptor for /);
  assert.ok(ours.lines.includes(`Successfully received file descriptor for ${sock}`), describeService(ours));
  await waitUntil(() => ours.ticks().length >= 5, 'our first ticks');
  const ticks = ours.ticks();
  assert.equal(ticks[0], 4242n, `our first tick is the GIO peer's counter\n${describeService(ours)}`);
  assert.equal(findGap(ticks), undefined);

  assert.ok(fs.lstatSync(sock).isSocket(), 'the socket path still exists');
  const reply = await request(sock, 'get_counter\n', 1, TIMEOUT_MS);
  assert.match(reply, /^[0-9]+\n$/);
  assert.ok(BigInt(reply.trim()) >= 4242n, `get_counter answered by ours: ${reply.trim()}`);

  const seen = clients ? await clients.stop() : { answered: [], failures: [] };
  await ours.stop();
  assert.deepEqual(await ours.exited, { code: 0, signal: null }, describeService(ours));
  assert.equal(findGap(ours.ticks()), undefined);
  return seen;
}

test('a. ours -> GIO: g_unix_connection_receive_fd takes our socket and counter', { timeout: 30_000 }, async (t) => {
  await oursToGio(t, false);
});

test('b. GIO -> ours: we take the socket and counter from g_unix_connection_send_fd', { timeout: 30_000 }, async (t) => {
  await gioToOurs(t, false);
});

// A client the old (Node) process accepted just before the handoff is drained
// by it (seed form: connections cannot go to a GIO successor): what it sends
// within the drain's grace period is answered. Everything must be answered:
// no ECONNREFUSED / ENOENT / EPIPE, no empty reply.
test('c1. clients connecting continuously across ours -> GIO are all answered', { timeout: 30_000 }, async (t) => {
  const { answered, failures, counter } = await oursToGio(t, true);
  assert.deepEqual(failures, [], `${failures.length} of ${failures.length + answered.length} requests failed`);
  assert.ok(answered.length >= 30, `only ${answered.length} requests answered`);
  assert.ok(answered.every((v) => v >= 1000n && v <= counter), `answers within [1000, ${counter}]`);
  assert.ok(answered.includes(counter), 'some answers came from the GIO peer');
});

test('c2. clients connecting continuously across GIO -> ours are all answered', { timeout: 30_000 }, async (t) => {
  const { answered, failures } = await gioToOurs(t, true);
  assert.deepEqual(failures, [], `${failures.length} of ${failures.length + answered.length} requests failed`);
  assert.ok(answered.length >= 30, `only ${answered.length} requests answered`);
  assert.ok(answered.every((v) => v >= 4242n), 'answers from 4242 on');
  assert.ok(answered.some((v) => v > 4242n), 'some answers came from ours after it ticked');
});
