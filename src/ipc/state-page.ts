// The state page: the counter, the tick grid and the log queue in a memfd,
// mapped shared by both threads and, under systemd with --fd-store, kept by
// the unit's fd store (FDSTORE=1, FDNAME=state), so that a restart of the
// unit (a crash with Restart=, a watchdog abort, `systemctl restart`) goes on
// from the exact counter and grid and writes out the lines its predecessor
// had queued. The counter's home stays the SharedArrayBuffer (see
// shared-state.ts); this page is its mirror, written right after every change
// with a plain store into the mapping, never a system call.
//
//   bytes 0..4095, BigInt64 slots: 0 magic "ESPAGE02", 1 version, 2 counter
//     (never the frozen marker: while frozen, the captured value), 3 next
//     tick's deadline (CLOCK_MONOTONIC ns), 4 period (ns), 5 writer's pid,
//     6 the page's size in bytes; the log ring's header (log-ring.ts) ends
//     at byte 4096;
//   bytes 4096..: the log ring's bytes.
//
// A page is believed only if it is a sealed memfd of the size it says, with
// this magic and version and believable values; otherwise the state file is
// used.
import type { Addon } from './addon';
import { COUNTER_MAX, COUNTER_MIN } from './counter';
import { LogRing, RING_HEADER_BYTES } from './log-ring';

const HEADER_BYTES = 4096;
const MAGIC = 0x4553504147453032n; // "ESPAGE02"
const VERSION = 2n;
const RING_OFFSET = HEADER_BYTES - RING_HEADER_BYTES;
/** The most a page may claim to be: 64 MiB. */
const MAX_BYTES = 64 * 1024 * 1024;

export const SLOT = { magic: 0, version: 1, counter: 2, nextDeadline: 3, period: 4, pid: 5, bytes: 6 } as const;

export interface PageState {
  counter: bigint;
  nextDeadlineNs: bigint;
  periodNs: bigint;
  pid: number;
}

export interface Page {
  fd: number;
  /** This thread's view of the slots. */
  slots: BigInt64Array;
  /** This thread's view of the log queue. */
  ring: LogRing;
}

/** A page's size for a log queue of at least `queueBytes`: whole 4 KiB pages. */
export function pageBytes(queueBytes: number): number {
  return HEADER_BYTES + Math.ceil(Math.max(queueBytes, 4096) / 4096) * 4096;
}

/** A new page (a fresh memfd) for `state`, with a log queue of at least `queueBytes`. */
export function createPage(addon: Addon, state: PageState, queueBytes: number): Page {
  const bytes = Math.min(pageBytes(queueBytes), MAX_BYTES);
  const fd = addon.memfdCreate('early-service-state', bytes);
  const buffer = addon.mapShared(fd, bytes);
  const slots = new BigInt64Array(buffer, 0, 8);
  const ring = new LogRing(buffer, RING_OFFSET, bytes - HEADER_BYTES);
  Atomics.store(slots, SLOT.counter, state.counter);
  Atomics.store(slots, SLOT.nextDeadline, state.nextDeadlineNs);
  Atomics.store(slots, SLOT.period, state.periodNs);
  Atomics.store(slots, SLOT.pid, BigInt(state.pid));
  Atomics.store(slots, SLOT.bytes, BigInt(bytes));
  Atomics.store(slots, SLOT.version, VERSION);
  // Last: a page is whole once it has its magic.
  Atomics.store(slots, SLOT.magic, MAGIC);
  return { fd, slots, ring };
}

/** This thread's views of a page made by createPage() (each thread maps the memfd itself). */
export function mapPage(addon: Addon, fd: number): Page {
  const bytes = addon.memfdInfo(fd)?.size ?? 0;
  const buffer = addon.mapShared(fd, bytes);
  return { fd, slots: new BigInt64Array(buffer, 0, 8), ring: new LogRing(buffer, RING_OFFSET) };
}

/** A page handed back by the fd store, or why it is not believed. */
export function readPage(addon: Addon, fd: number, nowNs: bigint):
  { kind: 'ok'; state: PageState; page: Page } | { kind: 'rejected'; reason: string } {
  const info = addon.memfdInfo(fd);
  if (info === null || !info.memfd) return { kind: 'rejected', reason: 'not a memfd' };
  if (!info.sealed) return { kind: 'rejected', reason: 'not sealed against resizing' };
  if (info.size < HEADER_BYTES + 4096 || info.size > MAX_BYTES || info.size % 4096 !== 0) {
    return { kind: 'rejected', reason: `${info.size} bytes` };
  }
  const buffer = addon.mapShared(fd, info.size);
  const slots = new BigInt64Array(buffer, 0, 8);
  if (Atomics.load(slots, SLOT.magic) !== MAGIC) return { kind: 'rejected', reason: 'no early-service state page magic' };
  if (Atomics.load(slots, SLOT.version) !== VERSION) return { kind: 'rejected', reason: 'another version wrote it' };
  if (Atomics.load(slots, SLOT.bytes) !== BigInt(info.size)) return { kind: 'rejected', reason: 'its size does not match' };
  const ring = new LogRing(buffer, RING_OFFSET);
  if (ring.capacity !== info.size - HEADER_BYTES || ring.queued > ring.capacity) return { kind: 'rejected', reason: 'a damaged log queue' };
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
  return { kind: 'ok', state, page: { fd, slots, ring } };
}
