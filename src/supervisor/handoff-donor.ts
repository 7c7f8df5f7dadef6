// The serving side of a handoff: gives the listening socket and the state
// (and, to an early-service successor, its client connections) to the
// process that asked. Never unlinks the socket path. The lifecycle
// (lifecycle.ts) decides whether a request is served at all, and what
// happens to this process afterwards.
//
// Seed form ("pass_state_and_terminate", what the C reference and its GIO
// client speak): one NUL byte carrying the listening fd, then "<counter>\n".
// Fire and forget, as in the seed.
//
// Extended form ("pass_state_v1", see src/ipc/wire.ts), a two-phase commit:
// the same socket, a state record with the tick schedule, and every idle
// client connection, each a copy: this process keeps its own until the
// successor commits. If it does not (it died, closed, said "abort", or let
// the deadline pass), this process takes everything back and carries on:
// same counter, same tick grid (the grid points it missed meanwhile are
// ticked, not skipped), same connections.
//
// The state is frozen (no tick, no write) only for the part that must be
// atomic: everything slow (waiting for connections to settle, for a save in
// flight, past an imminent tick) comes before, and the frozen part is bounded
// by the deadline whatever the successor or the clients do: records go out
// without blocking the event loop, what is handed over is capped.
import { addon } from './native';
import { isSystemError } from '../ipc/addon';
import type { Logger } from '../ipc/log-line';
import { formatCounter } from '../ipc/protocol';
import type { SharedState } from '../ipc/shared-state';
import { COMMIT, formatAbortRecord, formatConnectionRecord, formatEndRecord, formatStateRecord, parseAbortRecord } from '../ipc/wire';
import type { Connection } from './connection';
import { injectFault } from './faults';
import type { Server } from './server';
import { Timeline } from './timeline';

/** How long connections get to write their pending replies before they are handed over (before the freeze). */
const SETTLE_TIMEOUT_MS = 500;
/** The most a handoff waits for the next tick, so that the successor has time before the one after. */
const MAX_TICK_WAIT_NS = 50_000_000n;
/** How long the log lines queued before the freeze may take to reach stdout, of the frozen part's time. */
const FLUSH_LOG_MS = 500;
/** At most this many client connections travel; the rest are drained by this process. */
export const MAX_HANDED_CONNECTIONS = 1024;
/** A connection holding more unanswered bytes than this is drained, not handed over. */
export const MAX_HANDED_UNREAD_BYTES = 1024;

export interface DonorOptions {
  server: Server;
  state: SharedState;
  log: Logger;
  socketPath: string;
  /** The frozen part of a handoff (records sent, commit received) must end within this. */
  timeoutMs: number;
  periodNs: bigint;
  /** Handoffs this process's state has been through so far. */
  generation: () => number;
  /** Writes out the log lines queued so far (bounded): the successor's first tick line comes after them. */
  flushLog: (timeoutMs: number) => Promise<void>;
}

export type Donation =
  /** `timeline`: the handoff's moments so far, for the process's last lines. */
  | { outcome: 'committed'; captured: bigint; connections: number; timeline: Timeline }
  /** Nothing was taken: the request was answered with an error. */
  | { outcome: 'refused'; why: string }
  | { outcome: 'rolled-back'; why: string };

/** What a handoff took from this process, to give back if it does not complete. */
interface Taken {
  requester: Connection;
  captured: bigint;
  listenFd: number;
  detached: Array<{ connection: Connection; unread: Buffer }>;
}

export class HandoffDonor {
  constructor(private readonly options: DonorOptions) {}

  /**
   * Serves one handoff request held on `requester`. `afterCommit`, if given,
   * runs once the successor has committed and returns a line for it before
   * the connection closes (a reload's "main <pid>": see lifecycle.ts).
   */
  async donate(requester: Connection, form: 'seed' | 'extended', afterCommit?: () => string): Promise<Donation> {
    const { server, state, log, socketPath } = this.options;
    const timeline = Timeline.fromNow();
    // Slow steps first, while clients are served and the counter ticks.
    if (form === 'extended') await server.settle(SETTLE_TIMEOUT_MS);
    timeline.mark('settled');
    await this.awayFromTheNextTick();
    timeline.mark('past the tick');
    // A copy of the listening socket for the successor (and for a rollback):
    // if the descriptor table is full, refuse now, with nothing taken yet.
    let listenFd: number;
    try {
      listenFd = addon.dup(server.listeningFd);
    } catch (error) {
      const why = `cannot copy the listening socket (${isSystemError(error) ? error.code : String(error)})`;
      requester.release(formatAbortRecord(why));
      return { outcome: 'refused', why };
    }
    // One atomic step: the value returned is the state, and no tick follows.
    const captured = state.freeze();
    const nextDeadlineNs = state.nextDeadline();
    server.setCapturedValue(captured);
    server.stopAccepting();
    timeline.mark('frozen');
    const taken: Taken = { requester, captured, listenFd, detached: [] };
    await injectFault('donor-frozen', log, this.options.flushLog);
    const deadline = Date.now() + this.options.timeoutMs;
    log.notice(`Passing file descriptor for ${socketPath} to other process`);
    // In the journal, this process's last tick comes before the successor's first.
    await this.options.flushLog(Math.min(FLUSH_LOG_MS, this.options.timeoutMs / 4));
    timeline.mark('log flushed');
    try {
      // The NUL byte must not overtake replies still queued on this connection.
      await requester.flushed(deadline - Date.now());
      if (form === 'seed') {
        await this.send(requester, Buffer.from([0]), listenFd, deadline);
        addon.close(listenFd);
        log.notice('Returning counter to client and terminating the process');
        requester.release(formatCounter(captured));
        timeline.mark('sent');
        return { outcome: 'committed', captured, connections: 0, timeline };
      }
      await this.send(requester, record(formatStateRecord({
        counter: captured, nextDeadlineNs, periodNs: this.options.periodNs, pid: process.pid,
        generation: this.options.generation() + 1,
      })), listenFd, deadline);
      for (const connection of server.connections) {
        if (taken.detached.length >= MAX_HANDED_CONNECTIONS) break;
        if (connection === requester || !connection.isIdle || connection.pendingBytes > MAX_HANDED_UNREAD_BYTES) continue;
        const unread = connection.detach();
        taken.detached.push({ connection, unread });
        // A copy travels; this process keeps its own until the commit.
        await this.send(requester, record(formatConnectionRecord(unread)), connection.fd, deadline);
      }
      await this.send(requester, Buffer.from(formatEndRecord(taken.detached.length)), -1, deadline);
    } catch (error) {
      return this.rollBack(taken, describe(error));
    }
    timeline.mark('sent');
    await injectFault('donor-sent', log, this.options.flushLog);
    const verdict = await this.verdict(requester, deadline);
    if (verdict !== COMMIT) return this.rollBack(taken, verdict);
    timeline.mark('committed');
    // The successor serves: this process's copies go.
    for (const { connection } of taken.detached) connection.socket.destroy();
    addon.close(listenFd);
    const last = afterCommit?.();
    if (last !== undefined) requester.socket.end(last);
    else requester.socket.destroy();
    log.notice('Returning counter to client and terminating the process');
    return { outcome: 'committed', captured, connections: taken.detached.length, timeline };
  }

  /**
   * The successor ticks on from the deadline it receives: a handoff that
   * began just before that deadline would make its first tick late. Such a
   * handoff lets the tick happen first, so that it has (nearly) a whole
   * period, or at least MAX_TICK_WAIT_NS, to complete.
   */
  private async awayFromTheNextTick(): Promise<void> {
    const margin = this.options.periodNs / 2n < MAX_TICK_WAIT_NS ? this.options.periodNs / 2n : MAX_TICK_WAIT_NS;
    const untilTick = this.options.state.nextDeadline() - process.hrtime.bigint();
    if (untilTick <= 0n || untilTick >= margin) return;
    await new Promise((resolve) => setTimeout(resolve, Number(untilTick) / 1e6 + 1));
  }

  /**
   * Sends `data` (with `fd` on its first byte) without blocking the event
   * loop: a full socket buffer is waited out in 1 ms steps until `deadline`.
   */
  private async send(requester: Connection, data: Buffer, fd: number, deadline: number): Promise<void> {
    let offset = 0;
    while (offset < data.length) {
      if (requester.socket.destroyed) throw new Error('the successor closed the connection');
      const sent = addon.trySendMessage(requester.fd, data.subarray(offset), offset === 0 ? fd : -1);
      offset += sent;
      if (sent > 0) continue;
      if (Date.now() >= deadline) throw new Error(`the successor did not read what was sent within ${this.options.timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }

  /**
   * COMMIT, or why not. On the deadline or the end of the connection the
   * decision is made atomically: after shutdown(SHUT_RD) a commit still on
   * its way fails at the successor (EPIPE), and one that already arrived is
   * still read, so both sides always agree on who serves.
   */
  private async verdict(requester: Connection, deadline: number): Promise<string> {
    const reply = await requester.nextHeldLine(Math.max(0, deadline - Date.now()));
    if (reply !== undefined) return reply === COMMIT ? COMMIT : why(reply);
    try {
      addon.shutdownRead(requester.fd);
    } catch {
      // Already closed: nothing more can arrive.
    }
    const late = await requester.nextHeldLine(1000);
    if (late === COMMIT) return COMMIT;
    return late === undefined ? 'the successor did not commit' : why(late);
  }

  /** Puts everything back as it was before the request, and tells the successor so. */
  private rollBack(taken: Taken, why: string): Donation {
    const { server, state, log } = this.options;
    log.warn(`handoff rolled back, still serving: ${why}`);
    // Best effort: a successor that reads learns it at once (it would also
    // learn it from its commit failing, then reading this line).
    try {
      addon.trySendMessage(taken.requester.fd, Buffer.from(formatAbortRecord(why)), -1);
    } catch {
      // The successor is gone.
    }
    taken.requester.socket.destroy();
    server.serve(taken.listenFd);
    for (const { connection, unread } of taken.detached) connection.reattach(unread);
    // The grid points of the frozen interval are ticked at once, not skipped.
    state.unfreeze(taken.captured);
    return { outcome: 'rolled-back', why };
  }
}

/** A record that carries a descriptor: its NUL byte first, in one message. */
function record(line: string): Buffer {
  return Buffer.concat([Buffer.from([0]), Buffer.from(line, 'latin1')]);
}

function why(reply: string): string {
  const reason = parseAbortRecord(reply);
  return reason !== undefined ? `the successor gave up: ${reason}` : `the successor answered '${reply.slice(0, 60)}'`;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
