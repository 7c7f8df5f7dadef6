// The serving side of a handoff: gives the listening socket and the state
// (and, to an early-service successor, its client connections) to the
// process that asks, then exits 0. Never unlinks the socket path.
//
// Seed form ("pass_state_and_terminate", what the C reference and its GIO
// client speak): one NUL byte carrying the listening fd, then "<counter>\n".
// Fire and forget, as in the seed. Connections this process had accepted are
// drained: what their clients had sent is answered, then they are closed.
//
// Extended form ("pass_state_v1", see src/ipc/wire.ts), a two-phase commit:
// the same socket, a state record with the tick schedule, and every idle
// client connection, each a copy: this process keeps its own until the
// successor commits. If it does not (it died, closed, or let the handoff
// timeout pass), this process takes everything back and carries on as if
// nothing happened: same counter, same tick grid, same connections.
import { addon } from './native';
import type { Logger } from '../ipc/log-line';
import { REPLY_HANDOFF_IN_PROGRESS, REPLY_NOT_AUTHORIZED, formatCounter } from '../ipc/protocol';
import type { SharedState } from '../ipc/shared-state';
import { COMMIT, formatConnectionRecord, formatEndRecord, formatStateRecord } from '../ipc/wire';
import type { HandoffAuthorization } from './authorization';
import type { Connection } from './connection';
import type { Server } from './server';

/** How long connections get to write their pending replies before they are handed over. */
const SETTLE_TIMEOUT_MS = 500;
/** The most a handoff waits for the next tick, so that the successor has time before the one after. */
const MAX_TICK_WAIT_NS = 50_000_000n;

export interface DonorOptions {
  server: Server;
  state: SharedState;
  log: Logger;
  socketPath: string;
  timeoutMs: number;
  periodNs: bigint;
  authorization: HandoffAuthorization;
  /** Handoffs this process's state has been through so far. */
  generation: () => number;
  /** Called once the socket and the state belong to the successor; must end the process. */
  onHandedOff: () => Promise<void>;
  /** Where the handoff stands, in words (for systemd's STATUS=). */
  onProgress?: (text: string) => void;
}

/** What a handoff took from this process, to give back if it does not complete. */
interface Taken {
  requester: Connection;
  captured: bigint;
  listenFd: number;
  detached: Array<{ connection: Connection; unread: Buffer }>;
}

export class HandoffDonor {
  private busy = false;

  constructor(private readonly options: DonorOptions) {}

  /** Whether a handoff is under way (or done): nothing else may start. */
  get inProgress(): boolean {
    return this.busy;
  }

  /** Serves a handoff request held on `connection`. */
  handle(connection: Connection, form: 'seed' | 'extended'): void {
    const { allowed, peer } = this.options.authorization.check(connection.fd);
    if (!allowed) {
      this.options.log.warn(`handoff refused: pid ${peer.pid} (uid ${peer.uid}) is not authorized`);
      connection.release(REPLY_NOT_AUTHORIZED);
      return;
    }
    if (this.busy) {
      connection.release(REPLY_HANDOFF_IN_PROGRESS);
      return;
    }
    this.busy = true;
    this.options.onProgress?.(`handing off to pid ${peer.pid}`);
    void this.handOff(connection, form);
  }

  private async handOff(requester: Connection, form: 'seed' | 'extended'): Promise<void> {
    const { server, state, log, socketPath, timeoutMs } = this.options;
    await this.awayFromTheNextTick();
    // One atomic step: the value returned is the state, and no tick follows.
    const captured = state.freeze();
    const nextDeadlineNs = state.nextDeadline();
    server.setCapturedValue(captured);
    const taken: Taken = { requester, captured, listenFd: server.stopAccepting(), detached: [] };
    log.notice(`Passing file descriptor for ${socketPath} to other process`);
    try {
      if (form === 'extended') await server.settle(SETTLE_TIMEOUT_MS);
      // The NUL byte must not overtake replies still queued on this connection.
      await requester.flushed(timeoutMs);
      addon.sendFd(requester.fd, taken.listenFd, 0, timeoutMs);
    } catch (error) {
      this.rollBack(taken, describe(error));
      return;
    }
    if (form === 'seed') {
      addon.close(taken.listenFd);
      log.notice('Returning counter to client and terminating the process');
      requester.release(formatCounter(captured));
      await this.options.onHandedOff();
      return;
    }

    try {
      this.send(requester, formatStateRecord({
        counter: captured, nextDeadlineNs, periodNs: this.options.periodNs, pid: process.pid,
        generation: this.options.generation() + 1,
      }));
      for (const connection of server.connections) {
        if (connection === requester || !connection.isIdle) continue;
        const unread = connection.detach();
        taken.detached.push({ connection, unread });
        // A copy travels; this process keeps its own until the commit.
        addon.sendFd(requester.fd, connection.fd, 0, timeoutMs);
        this.send(requester, formatConnectionRecord(unread));
      }
      this.send(requester, formatEndRecord(taken.detached.length));
    } catch (error) {
      this.rollBack(taken, describe(error));
      return;
    }
    if (!(await this.committed(requester))) {
      this.rollBack(taken, 'the successor did not commit');
      return;
    }
    // The successor serves: this process's copies go, and so does it.
    for (const { connection } of taken.detached) connection.socket.destroy();
    addon.close(taken.listenFd);
    requester.socket.destroy();
    log.notice('Returning counter to client and terminating the process');
    log.info(`Handed over counter ${captured} and ${taken.detached.length} client connections`);
    await this.options.onHandedOff();
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
   * Waits for the successor's commit. On timeout or end of connection the
   * decision is made atomically: after shutdown(SHUT_RD) a commit still on
   * its way fails at the successor (EPIPE), and one that already arrived is
   * still read, so both sides always agree on who serves.
   */
  private async committed(requester: Connection): Promise<boolean> {
    const reply = await requester.nextHeldLine(this.options.timeoutMs);
    if (reply !== undefined) return reply === COMMIT;
    try {
      addon.shutdownRead(requester.fd);
    } catch {
      // Already closed: nothing more can arrive.
    }
    return (await requester.nextHeldLine(this.options.timeoutMs)) === COMMIT;
  }

  /** Puts everything back as it was before the request. */
  private rollBack(taken: Taken, why: string): void {
    const { server, state, log } = this.options;
    log.warn(`handoff rolled back, still serving: ${why}`);
    taken.requester.socket.destroy();
    server.serve(taken.listenFd);
    for (const { connection, unread } of taken.detached) connection.reattach(unread);
    state.unfreeze(taken.captured);
    this.busy = false;
    this.options.onProgress?.(`serving; the last handoff was rolled back (${why})`);
  }

  private send(requester: Connection, record: string): void {
    addon.writeAll(requester.fd, Buffer.from(record), this.options.timeoutMs);
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
