// The state page: the counter and the tick grid in a memfd, mapped shared by
// both threads and kept by systemd's fd store (FDSTORE=1, FDNAME=state), so
// that a restart of the unit (a crash with Restart=, a watchdog abort,
// `systemctl restart`) goes on from the exact counter and grid. The counter's
// home stays the SharedArrayBuffer (see shared-state.ts); this page is its
// mirror, written right after every change with a plain store into the
// mapping, never a system call.
//
//   BigInt64 slots: 0 magic "ESPAGE01", 1 layout (version << 32 | bytes),
//   2 counter (never the frozen marker: while frozen, the captured value),
//   3 next tick's deadline (CLOCK_MONOTONIC ns), 4 period (ns), 5 writer's pid.
//
// A page is believed only if it is a sealed memfd of PAGE_BYTES with this
// magic and layout and believable values; otherwise the state file is used.
import type { Addon } from './addon';
import { COUNTER_MAX, COUNTER_MIN } from './counter';

export const PAGE_BYTES = 4096;
const MAGIC = 0x4553504147453031n; // "ESPAGE01"
const VERSION = 1n;
const LAYOUT = (VERSION << 32n) | BigInt(PAGE_BYTES);

export const SLOT = { magic: 0, layout: 1, counter: 2, nextDeadline: 3, period: 4, pid: 5 } as const;

export interface PageState {
  counter: bigint;
  nextDeadlineNs: bigint;
  periodNs: bigint;
  pid: number;
}

/** A new page for `state` (a fresh memfd), ready to be mirrored into and stored. */
export function createPage(addon: Addon, state: PageState): { fd: number; slots: BigInt64Array } {
  const fd = addon.memfdCreate('early-service-state', PAGE_BYTES);
  const slots = new BigInt64Array(addon.mapShared(fd, PAGE_BYTES));
  Atomics.store(slots, SLOT.counter, state.counter);
  Atomics.store(slots, SLOT.nextDeadline, state.nextDeadlineNs);
  Atomics.store(slots, SLOT.period, state.periodNs);
  Atomics.store(slots, SLOT.pid, BigInt(state.pid));
  Atomics.store(slots, SLOT.layout, LAYOUT);
  // Last: a page is whole once it has its magic.
  Atomics.store(slots, SLOT.magic, MAGIC);
  return { fd, slots };
}

/** This thread's view of a page (each thread maps the memfd itself). */
export function mapPage(addon: Addon, fd: number): BigInt64Array {
  return new BigInt64Array(addon.mapShared(fd, PAGE_BYTES));
}

/** A page handed back by the fd store, or why it is not believed. */
export function readPage(addon: Addon, fd: number, nowNs: bigint):
  { kind: 'ok'; state: PageState; slots: BigInt64Array } | { kind: 'rejected'; reason: string } {
  const info = addon.memfdInfo(fd);
  if (info === null || !info.memfd) return { kind: 'rejected', reason: 'not a memfd' };
  if (info.size !== PAGE_BYTES || !info.sealed) return { kind: 'rejected', reason: `${info.size} bytes${info.sealed ? '' : ', not sealed'}` };
  const slots = mapPage(addon, fd);
  if (Atomics.load(slots, SLOT.magic) !== MAGIC) return { kind: 'rejected', reason: 'no early-service state page magic' };
  if (Atomics.load(slots, SLOT.layout) !== LAYOUT) return { kind: 'rejected', reason: 'another layout (a different version wrote it)' };
  const state: PageState = {
    counter: Atomics.load(slots, SLOT.counter),
    nextDeadlineNs: Atomics.load(slots, SLOT.nextDeadline),
    periodNs: Atomics.load(slots, SLOT.period),
    pid: Number(Atomics.load(slots, SLOT.pid)),
  };
  if (state.counter < COUNTER_MIN || state.counter > COUNTER_MAX) return { kind: 'rejected', reason: `counter ${state.counter}` };
  if (state.periodNs <= 0n || state.periodNs > 86_400_000_000_000n) return { kind: 'rejected', reason: `period ${state.periodNs} ns` };
  // CLOCK_MONOTONIC: a memfd cannot outlive the boot; a deadline past now is
  // a restart's downtime, one further than two periods ahead is not believable.
  if (state.nextDeadlineNs <= 0n || state.nextDeadlineNs > nowNs + 2n * state.periodNs + 10_000_000n) {
    return { kind: 'rejected', reason: `next deadline ${state.nextDeadlineNs} ns (now ${nowNs})` };
  }
  return { kind: 'ok', state, slots };
}
