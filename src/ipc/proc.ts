// What /proc says about a process, for the stress tool and the tests.
import fs from 'node:fs';

/** The process's state letter (R, S, D, T, t, Z…), or undefined once it is gone. */
export function processState(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The state follows the command name, which may hold spaces and parentheses.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

/**
 * Resolves once `pid` is stopped (state T). A process that logs "stopping"
 * and then SIGSTOPs itself is not stopped yet when the line arrives: a
 * SIGCONT sent in between is lost, and it would stay stopped for good.
 */
export async function waitUntilStopped(pid: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const state = processState(pid);
    if (state === undefined) throw new Error(`process ${pid} is gone; it was expected to stop itself`);
    if (state === 'T' || state === 't') return;
    if (Date.now() > deadline) throw new Error(`process ${pid} did not stop within ${timeoutMs} ms (state ${state})`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
