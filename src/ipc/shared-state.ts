// The state the supervisor (main thread) and the ticker (worker thread) share:
// one SharedArrayBuffer, accessed only with Atomics, never behind a lock.
//
// The counter is a signed 64-bit integer. One value, FROZEN (-2^63), is
// reserved: set_counter cannot store it, and capturing the state for a handoff
// is a single Atomics.exchange(counter, FROZEN). Its return value IS the
// state, and every tick after it fails its compare-exchange, so no tick can
// ever follow the capture.

import { COUNTER_MAX, COUNTER_MIN, FROZEN } from './counter';
import { SLOT as PAGE_SLOT } from './state-page';

export { COUNTER_MAX, COUNTER_MIN, FROZEN };

// BigInt64 slots.
const COUNTER = 0;
/** CLOCK_MONOTONIC nanoseconds of the next tick, published by the ticker. */
const NEXT_DEADLINE_NS = 1;
/** Ticks the ticker skipped because it was too late for them. */
const MISSED_TICKS = 2;
/**
 * Grid points due up to this CLOCK_MONOTONIC time are ticked however late
 * (see the ticker): they fell into an interval the state was frozen for a
 * handoff, and the ticks of that interval are owed, not lost.
 */
const CATCH_UP_UNTIL_NS = 3;
const BIG_SLOTS = 4;

// Int32 slots (futex words).
/** HOLD, RUN or STOP, written by the supervisor. */
const RUN_STATE = 0;
/** 1 from just before a tick's compare-exchange until its line is written. */
const TICK_IN_PROGRESS = 1;
/** Bumped (and notified) by the supervisor whenever the ticker must look again. */
const WAKE = 2;
/** Set by the ticker once its loop runs. */
const TICKER_READY = 3;
/** A fault the tests ask the ticker thread to act out (TICKER_FAULTS); 0 = none. */
const FAULT = 4;
/** 1 while the main thread's log writer waits for lines (see logQueued). */
const LOG_WAITING = 5;
const INT_SLOTS = 6;

/** Not started yet: the ticker waits (a zeroed buffer starts here). */
export const HOLD = 0;
export const RUN = 1;
export const STOP = 2;

/** Faults for tests: the thread exits (as if it crashed), or stops ticking (as if it hung). */
export const TICKER_FAULTS = { exit: 1, hang: 2 } as const;
export type TickerFault = keyof typeof TICKER_FAULTS;

export class SharedState {
  readonly buffer: SharedArrayBuffer;
  private readonly big: BigInt64Array;
  private readonly int: Int32Array;
  /** This thread's view of the state page (state-page.ts), if there is one: the counter's mirror. */
  private mirror: BigInt64Array | undefined;

  /** A new state holds the ticker (counter 0) until start() says from where and when. */
  constructor(buffer?: SharedArrayBuffer) {
    this.buffer = buffer ?? new SharedArrayBuffer(BIG_SLOTS * 8 + INT_SLOTS * 4);
    this.big = new BigInt64Array(this.buffer, 0, BIG_SLOTS);
    this.int = new Int32Array(this.buffer, BIG_SLOTS * 8, INT_SLOTS);
  }

  /**
   * Mirrors the counter and the next deadline into a state page from now on
   * (each thread attaches its own mapping of the same memfd). The deadline
   * is mirrored from the next start() or tick on.
   */
  attachMirror(slots: BigInt64Array): void {
    this.mirror = slots;
    this.syncMirror();
  }

  /**
   * Brings the mirror up to the counter. Both threads change the counter;
   * each stores what it then reads and stores again until what it read is
   * still current, so once changes stop the mirror holds the last one, and
   * in between it lags by the change in flight at most. The frozen marker is
   * never mirrored: freeze() stores the captured value instead.
   */
  private syncMirror(): void {
    const mirror = this.mirror;
    if (mirror === undefined) return;
    for (;;) {
      const value = Atomics.load(this.big, COUNTER);
      if (value === FROZEN) return;
      Atomics.store(mirror, PAGE_SLOT.counter, value);
      if (Atomics.load(this.big, COUNTER) === value) return;
    }
  }

  /** The counter's slot (index 0) as the native fast path reads it (src/ipc/native/fast_path.c). */
  get counterView(): BigInt64Array {
    return this.big;
  }

  // --- supervisor side -------------------------------------------------------

  /** The counter, or FROZEN while a handoff holds it. */
  load(): bigint {
    return Atomics.load(this.big, COUNTER);
  }

  /**
   * Stores `value` and returns the previous one in one step, unless the state
   * is frozen: then nothing changes and FROZEN is returned.
   */
  set(value: bigint): bigint {
    for (;;) {
      const previous = Atomics.load(this.big, COUNTER);
      if (previous === FROZEN) return FROZEN;
      if (Atomics.compareExchange(this.big, COUNTER, previous, value) === previous) {
        this.syncMirror();
        return previous;
      }
    }
  }

  /**
   * Captures the counter for a handoff and stops all further ticks, then waits
   * for a tick that won its compare-exchange just before to finish writing its
   * line: when this returns, every value below the result has been logged.
   */
  freeze(): bigint {
    const captured = Atomics.exchange(this.big, COUNTER, FROZEN);
    if (this.mirror !== undefined && captured !== FROZEN) Atomics.store(this.mirror, PAGE_SLOT.counter, captured);
    while (Atomics.load(this.int, TICK_IN_PROGRESS) === 1) {
      Atomics.wait(this.int, TICK_IN_PROGRESS, 1, 10);
    }
    return captured;
  }

  /**
   * Lets the ticker go on from `value` after freeze() (a handoff that did
   * not happen); the grid points it missed meanwhile are ticked at once.
   */
  unfreeze(value: bigint): void {
    Atomics.store(this.big, CATCH_UP_UNTIL_NS, process.hrtime.bigint());
    Atomics.store(this.big, COUNTER, value);
    this.syncMirror();
    this.wakeTicker();
  }

  /**
   * Starts ticking: the counter is set to `value`, the first tick is due at
   * `firstDeadlineNs` (CLOCK_MONOTONIC), and grid points due until
   * `catchUpUntilNs` are ticked however late they are (a predecessor's grid
   * continued after a slow handoff). Until then set_counter works and the
   * ticker waits. Does nothing if a stop was requested meanwhile.
   */
  start(value: bigint, firstDeadlineNs: bigint, catchUpUntilNs = 0n): void {
    if (Atomics.load(this.int, RUN_STATE) !== HOLD) return;
    Atomics.store(this.big, CATCH_UP_UNTIL_NS, catchUpUntilNs);
    Atomics.store(this.big, NEXT_DEADLINE_NS, firstDeadlineNs);
    Atomics.store(this.big, COUNTER, value);
    if (this.mirror !== undefined) Atomics.store(this.mirror, PAGE_SLOT.nextDeadline, firstDeadlineNs);
    this.syncMirror();
    // Only from HOLD: a stop requested by now must stay a stop.
    Atomics.compareExchange(this.int, RUN_STATE, HOLD, RUN);
    this.wakeTicker();
  }

  /**
   * Whether the ticker keeps its schedule: true while it holds, is frozen or
   * stopping, or its next deadline is less than `toleranceNs` past. A stuck
   * ticker thread leaves a deadline in the past.
   */
  tickerOnSchedule(nowNs: bigint, toleranceNs: bigint): boolean {
    if (Atomics.load(this.int, RUN_STATE) !== RUN || this.load() === FROZEN) return true;
    return nowNs < Atomics.load(this.big, NEXT_DEADLINE_NS) + toleranceNs;
  }

  injectTickerFault(fault: TickerFault): void {
    Atomics.store(this.int, FAULT, TICKER_FAULTS[fault]);
    this.wakeTicker();
  }

  requestStop(): void {
    Atomics.store(this.int, RUN_STATE, STOP);
    this.wakeTicker();
  }

  wakeTicker(): void {
    Atomics.add(this.int, WAKE, 1);
    Atomics.notify(this.int, WAKE);
  }

  /**
   * The log writer (main thread) waits for the ticker's next line: resolves
   * once logQueued() was called after this, or at once if `pending()` says
   * lines are already there (checked after arming, so none is missed).
   */
  async waitForLog(pending: () => boolean): Promise<void> {
    Atomics.store(this.int, LOG_WAITING, 1);
    if (pending()) {
      Atomics.store(this.int, LOG_WAITING, 0);
      return;
    }
    const waiting = Atomics.waitAsync(this.int, LOG_WAITING, 1);
    if (waiting.async) await waiting.value;
  }

  /** Resolves once the ticker's loop is running. */
  async tickerReady(): Promise<void> {
    while (Atomics.load(this.int, TICKER_READY) === 0) {
      const waiting = Atomics.waitAsync(this.int, TICKER_READY, 0);
      if (waiting.async) await waiting.value;
    }
  }

  // --- ticker side -----------------------------------------------------------

  runState(): number {
    return Atomics.load(this.int, RUN_STATE);
  }

  wakeGeneration(): number {
    return Atomics.load(this.int, WAKE);
  }

  /** Sleeps until woken by the supervisor or until `timeoutMs` passed. */
  sleep(generation: number, timeoutMs: number): void {
    Atomics.wait(this.int, WAKE, generation, timeoutMs);
  }

  /** A line was queued: wakes the log writer if it waits (one notify per wait, not per line). */
  logQueued(): void {
    if (Atomics.load(this.int, LOG_WAITING) === 1 && Atomics.compareExchange(this.int, LOG_WAITING, 1, 0) === 1) {
      Atomics.notify(this.int, LOG_WAITING);
    }
  }

  /** The fault asked for, once (0 when none). */
  takeFault(): number {
    return Atomics.exchange(this.int, FAULT, 0);
  }

  markReady(): void {
    Atomics.store(this.int, TICKER_READY, 1);
    Atomics.notify(this.int, TICKER_READY);
  }

  nextDeadline(): bigint {
    return Atomics.load(this.big, NEXT_DEADLINE_NS);
  }

  /** Moves the deadline on, unless the supervisor replaced it meanwhile. */
  advanceDeadline(from: bigint, to: bigint): void {
    Atomics.compareExchange(this.big, NEXT_DEADLINE_NS, from, to);
    if (this.mirror !== undefined) Atomics.store(this.mirror, PAGE_SLOT.nextDeadline, Atomics.load(this.big, NEXT_DEADLINE_NS));
  }

  /** Grid points due until this time are owed: ticked, never skipped. */
  catchUpUntil(): bigint {
    return Atomics.load(this.big, CATCH_UP_UNTIL_NS);
  }

  addMissedTicks(count: bigint): bigint {
    return Atomics.add(this.big, MISSED_TICKS, count) + count;
  }

  /**
   * One tick: increments the counter unless it is frozen and calls `log` with
   * the value it had (print-then-increment, as the seed does). A concurrent
   * set_counter makes the compare-exchange fail; the tick is then retried on
   * the new value. Returns false when frozen (no tick happened).
   */
  tick(log: (value: bigint) => void): boolean {
    Atomics.store(this.int, TICK_IN_PROGRESS, 1);
    try {
      for (;;) {
        const value = Atomics.load(this.big, COUNTER);
        if (value === FROZEN) return false;
        // Past the maximum the counter wraps to the minimum, skipping FROZEN.
        const next = value === COUNTER_MAX ? COUNTER_MIN : value + 1n;
        if (Atomics.compareExchange(this.big, COUNTER, value, next) === value) {
          // Mirrored before the line is written: a SIGKILL in between loses
          // the line of this one tick, and never repeats a value.
          this.syncMirror();
          log(value);
          return true;
        }
      }
    } finally {
      Atomics.store(this.int, TICK_IN_PROGRESS, 0);
      Atomics.notify(this.int, TICK_IN_PROGRESS);
    }
  }
}
