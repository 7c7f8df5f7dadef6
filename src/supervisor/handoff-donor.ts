// The serving side of a handoff: gives the listening socket and the state
// (and, to an early-service successor, its client connections) to the
// process that asks, then exits 0. Never unlinks the socket path.
//
// Seed form ("pass_state_and_terminate", what the C reference and its GIO
// client speak): one NUL byte carrying the listening fd, then "<counter>\n".
// Connections this process had accepted are drained: what their clients had
// sent is answered, then they are closed.
//
// Extended form ("pass_state_v1", see src/ipc/wire.ts): the same socket, a
// state record with the tick schedule, and every idle client connection
// with the bytes read from it so far: clients never see their connection end.
import { addon } from '../ipc/addon';
import type { Logger } from '../ipc/log-line';
import { REPLY_HANDOFF_IN_PROGRESS, REPLY_NOT_AUTHORIZED, formatCounter } from '../ipc/protocol';
import type { SharedState } from '../ipc/shared-state';
import { COMMIT, formatConnectionRecord, formatEndRecord, formatStateRecord } from '../ipc/wire';
import type { HandoffAuthorization } from './authorization';
import type { Connection } from './connection';
import type { Server } from './server';

/** How long connections get to write their pending replies before they are handed over. */
const SETTLE_TIMEOUT_MS = 500;

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
  /** Called once the socket and the state are on their way; must end the process. */
  onHandedOff: () => Promise<void>;
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
    void this.handOff(connection, form);
  }

  private async handOff(requester: Connection, form: 'seed' | 'extended'): Promise<void> {
    const { server, state, log, socketPath, timeoutMs } = this.options;
    // One atomic step: the value returned is the state, and no tick follows.
    const captured = state.freeze();
    const nextDeadlineNs = state.nextDeadline();
    server.setCapturedValue(captured);
    const listenFd = server.stopAccepting();
    log.notice(`Passing file descriptor for ${socketPath} to other process`);
    try {
      if (form === 'extended') await server.settle(SETTLE_TIMEOUT_MS);
      // The NUL byte must not overtake replies still queued on this connection.
      await requester.flushed(timeoutMs);
      addon.sendFd(requester.fd, listenFd, 0, timeoutMs);
    } catch (error) {
      // Nothing was handed over: carry on as if the request never came.
      log.warn(`handoff abandoned, still serving: ${error instanceof Error ? error.message : String(error)}`);
      requester.socket.destroy();
      server.serve(listenFd);
      state.unfreeze(captured);
      this.busy = false;
      return;
    }
    addon.close(listenFd);
    log.notice('Returning counter to client and terminating the process');
    if (form === 'seed') {
      requester.release(formatCounter(captured));
    } else {
      try {
        addon.writeAll(requester.fd, Buffer.from(formatStateRecord({
          counter: captured, nextDeadlineNs, periodNs: this.options.periodNs, pid: process.pid,
          generation: this.options.generation() + 1,
        })), timeoutMs);
        const passed = this.passConnections(requester);
        addon.writeAll(requester.fd, Buffer.from(formatEndRecord(passed)), timeoutMs);
        log.info(`Handed over ${passed} client connections`);
        const reply = await requester.nextHeldLine(timeoutMs);
        if (reply !== COMMIT) log.warn(`the successor did not confirm the handoff (${reply ?? 'no answer'})`);
      } catch (error) {
        log.error(`handoff failed after the socket was sent: ${error instanceof Error ? error.message : String(error)}`);
      }
      requester.socket.destroy();
    }
    await this.options.onHandedOff();
  }

  /** Sends every idle connection; returns how many. Busy ones stay to be drained. */
  private passConnections(requester: Connection): number {
    const { server, timeoutMs } = this.options;
    let passed = 0;
    for (const connection of server.connections) {
      if (connection === requester || !connection.isIdle) continue;
      const unread = connection.detach();
      addon.sendFd(requester.fd, connection.fd, 0, timeoutMs);
      addon.writeAll(requester.fd, Buffer.from(formatConnectionRecord(unread)), timeoutMs);
      // Closes this process's descriptor only: the successor holds the connection.
      connection.socket.destroy();
      passed++;
    }
    return passed;
  }
}
