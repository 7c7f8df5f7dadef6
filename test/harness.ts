// The test suite's bounds: no test, no cleanup and no process a test starts
// can outlive its budget, however the test ends (it passes, fails, times out,
// or the test file is killed).
//
// - `test()` is node:test's, with a default timeout, so a hang fails naming
//   the test. Its cleanups (`t.after`) run inside the test, in order, each one
//   bounded: node's own after hooks are not covered by a test's timeout.
// - Every process a test starts goes through `spawnTracked()`: it gets its own
//   process group, and `endProcess()` escalates (SIGTERM, then SIGCONT and
//   SIGKILL to the whole group) within a bound. When a test ends, whatever it
//   started and left running is ended that way; when the test file's process
//   exits or is killed (the runner's per-file budget), every group is killed.
import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import nodeTest, { type TestContext, type TestOptions } from 'node:test';

export { waitUntilStopped } from '../src/ipc/proc';

/** A test that takes longer fails, named; slow tests give their own `timeout`. */
export const DEFAULT_TEST_TIMEOUT_MS = 120_000;
/** Each cleanup of a test gets this long. */
const CLEANUP_TIMEOUT_MS = 30_000;
/** How long a process gets to exit after SIGTERM before the group is killed. */
const TERM_GRACE_MS = 10_000;
const KILL_WAIT_MS = 5_000;

type TestFn = (t: TestContext) => unknown;

const live = new Set<ChildProcess>();

/** node:test's `test`, bounded (see above). */
export function test(name: string, fn: TestFn): Promise<void>;
export function test(name: string, options: TestOptions, fn: TestFn): Promise<void>;
export function test(name: string, optionsOrFn: TestOptions | TestFn, maybeFn?: TestFn): Promise<void> {
  const options = typeof optionsOrFn === 'function' ? {} : optionsOrFn;
  const fn = typeof optionsOrFn === 'function' ? optionsOrFn : maybeFn!;
  const timeoutMs = typeof options.timeout === 'number' ? options.timeout : DEFAULT_TEST_TIMEOUT_MS;
  // node's own timeout is only the backstop: the test's cleanups must run after a timeout too.
  return nodeTest(name, { ...options, timeout: timeoutMs + 4 * CLEANUP_TIMEOUT_MS }, async (t) => {
    const cleanups: Array<() => unknown> = [];
    const before = new Set(live);
    // An own property shadows TestContext.prototype.after for this test only.
    (t as { after: unknown }).after = (cleanup: () => unknown) => { cleanups.push(cleanup); };
    const outcome = await bounded(Promise.resolve().then(() => fn(t)), timeoutMs);
    const failures: string[] = outcome === undefined ? [] : [String(outcome)];
    for (const cleanup of cleanups) {
      const failure = await bounded(Promise.resolve().then(cleanup), CLEANUP_TIMEOUT_MS);
      if (failure !== undefined) failures.push(`a cleanup: ${failure}`);
    }
    await Promise.all([...live].filter((child) => !before.has(child)).map(endProcess));
    if (outcome !== undefined && failures.length === 1) throw outcome.error;
    if (failures.length > 0) throw new Error(`"${name}": ${failures.join('; ')}`);
  });
}

interface Failure {
  error: unknown;
  toString(): string;
}

/** Resolves with undefined when `promise` settles fine within `ms`, else with what went wrong. */
async function bounded(promise: Promise<unknown>, ms: number): Promise<Failure | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const failure = (error: unknown): Failure => ({ error, toString: () => (error instanceof Error ? error.message : String(error)) });
  const timeout = new Promise<Failure>((resolve) => {
    timer = setTimeout(() => resolve(failure(new Error(`timed out after ${ms} ms`))), ms);
  });
  try {
    return await Promise.race([promise.then(() => undefined, failure), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** `spawn()` in a process group of its own, ended with the test that started it. */
export function spawnTracked(command: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
  const child = spawn(command, args, { ...options, detached: true });
  if (child.pid === undefined) return child;
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // The group is gone already.
  }
}

function exitWithin(child: ChildProcess, ms: number): Promise<boolean> {
  if (hasExited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => { child.off('exit', onExit); resolve(false); }, ms);
    const onExit = (): void => { clearTimeout(timer); resolve(true); };
    child.once('exit', onExit);
  });
}

/**
 * Ends `child` and everything in its process group: SIGTERM to the process
 * (the way systemd stops a service), then, if it has not exited within the
 * grace period, SIGCONT (a stopped process cannot act on its SIGTERM) and
 * SIGKILL to the group. Never waits longer than the two bounds together.
 * The rest of the group is killed once the process has exited.
 */
export async function endProcess(child: ChildProcess): Promise<void> {
  if (child.pid === undefined) return;
  if (!hasExited(child)) {
    child.kill('SIGTERM');
    if (!(await exitWithin(child, TERM_GRACE_MS))) {
      signalGroup(child, 'SIGCONT');
      signalGroup(child, 'SIGKILL');
      await exitWithin(child, KILL_WAIT_MS);
    }
  }
  signalGroup(child, 'SIGKILL');
}

// The test file's process ends: nothing it started may live on. On the
// runner's SIGTERM (a file over its budget) the groups are killed first.
function killAll(): void {
  for (const child of live) signalGroup(child, 'SIGKILL');
}
process.on('exit', killAll);
// A test that timed out may still hold a handle (a timer, a socket) that
// would keep this process, and with it the whole run, waiting: once every
// test has ended, the process gets a moment to finish its output, then ends.
nodeTest.after(() => {
  setTimeout(() => {
    process.stderr.write(`harness: ${process.argv[1]}: still busy after its last test ` +
      `(${process.getActiveResourcesInfo().join(', ')}); ending it\n`);
    process.exit();
  }, 2000).unref();
});
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    killAll();
    process.kill(process.pid, signal);
  });
}
