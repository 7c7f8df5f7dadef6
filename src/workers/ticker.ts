// The ticker: a piscina task that never returns until told to stop. It owns
// the tick schedule and is the only writer of tick lines. The supervisor
// talks to it only through the shared state (see src/ipc/shared-state.ts).
//
// Schedule: absolute deadlines on CLOCK_MONOTONIC (process.hrtime), next =
// previous + period, so lateness never accumulates into drift. Between ticks
// the thread sleeps in Atomics.wait, which the supervisor can cut short, and
// spins through the last stretch before a deadline (--timer-spin; by default
// only at periods of 2 ms and below): a sleeping thread wakes up late, on a
// VM now and then by a millisecond, a spinning one does not.
//
// Late ticks: grid points up to CATCH_UP_NS in the past are still ticked, at
// once, one after the other: a scheduling hiccup (a preempted vCPU, a GC
// pause) costs timing, not ticks. Further behind than that (the process was
// stopped, the machine suspended) the ticker does not replay a stale burst:
// the grid points already past are skipped and counted ("missed ticks").
// Either way the counter moves by exactly one per logged line, so values stay
// consecutive, in this process and across a handoff. The exception to the
// skipping: grid points of an interval the state was frozen for a handoff
// (up to SharedState.catchUpUntil()) are owed ticks and are all ticked.
import { loadAddon } from '../ipc/addon';
import { createLogger, type LogFormat } from '../ipc/log-line';
import { HOLD, SharedState, STOP, TICKER_FAULTS } from '../ipc/shared-state';
import { mapPage } from '../ipc/state-page';

/** How far behind the schedule the ticker still catches up (ticks them at once). */
const CATCH_UP_NS = 50_000_000n;

export interface TickerTask {
  buffer: SharedArrayBuffer;
  periodNs: bigint;
  /** How long before a deadline to stop sleeping and spin (see --timer-spin). */
  spinNs: bigint;
  logFormat: LogFormat;
  /** The main thread's addon path: loading it by that name never touches the disk again. */
  addonPath: string;
  /** The state page's memfd (see src/ipc/state-page.ts): this thread mirrors its ticks into its own mapping and queues its lines there. */
  stateFd: number;
}

function runTicker(task: TickerTask): void {
  const addon = loadAddon(task.addonPath);
  // Without this, every sleep may end up to 50 us late (the default slack).
  addon.setTimerSlack(1);
  const state = new SharedState(task.buffer);
  const page = mapPage(addon, task.stateFd);
  state.attachMirror(page.slots);
  // Lines go to the log ring, without a system call; the main thread writes them out.
  const log = createLogger(task.logFormat, (text) => {
    const queued = page.ring.append(text);
    state.logQueued();
    return queued;
  });
  const period = task.periodNs;
  const spinNs = task.spinNs;
  const logValue = (value: bigint): void => log.info(String(value));

  warmUp(task.logFormat);
  state.markReady();
  for (;;) {
    // Read the wake generation first: a change after this line makes the
    // sleep below return at once, so no wake-up is ever missed.
    const generation = state.wakeGeneration();
    const runState = state.runState();
    if (runState === STOP) return;
    actOutFault(state.takeFault());
    if (runState === HOLD) {
      state.sleep(generation, Infinity);
      continue;
    }
    const deadline = state.nextDeadline();
    const now = process.hrtime.bigint();
    if (now < deadline) {
      if (deadline - now > spinNs) {
        state.sleep(generation, Number(deadline - now - spinNs) / 1e6);
      } else {
        // The last stretch, on the CPU; a wake-up from the supervisor ends it too.
        while (process.hrtime.bigint() < deadline && state.wakeGeneration() === generation) { /* spin */ }
      }
      continue;
    }
    if (!state.tick(logValue)) {
      // Frozen for a handoff: nothing to do until the supervisor says so.
      state.sleep(generation, Infinity);
      continue;
    }
    let next = deadline + period;
    if (next <= now - CATCH_UP_NS && next > state.catchUpUntil()) {
      const missed = (now - deadline) / period;
      next += missed * period;
      const total = state.addMissedTicks(missed);
      log.warn(`missed ${missed} ticks (late by ${Number(now - deadline) / 1e6} ms; ${total} in all)`);
    }
    // The supervisor may have published a new deadline meanwhile; it wins.
    state.advanceDeadline(deadline, next);
  }
}

/** Test faults (EARLY_SERVICE_FAULT=ticker-exit|ticker-hang, on SIGUSR2). */
function actOutFault(fault: number): void {
  // In a worker thread, process.exit ends the thread only: a crash as piscina sees one.
  if (fault === TICKER_FAULTS.exit) process.exit(70);
  if (fault === TICKER_FAULTS.hang) for (;;) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
}

/**
 * Runs the tick path (compare-exchange, formatting, the logger) on scratch
 * state into a discarded output, so that V8 has compiled it before the first
 * real tick: in a successor that first tick continues its predecessor's
 * schedule and must be on time, not late by warm-up.
 */
function warmUp(format: LogFormat): void {
  const scratch = new SharedState();
  scratch.start(0n, 0n);
  const log = createLogger(format, () => true);
  for (let i = 0; i < 200; i++) scratch.tick((value) => log.info(String(value)));
}

export default runTicker;
