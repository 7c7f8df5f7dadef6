// The seed's socket handoff, both roles, byte-compatible with the C reference
// (GIO's g_unix_connection_send_fd / g_unix_connection_receive_fd):
//
//   successor -> server:  "pass_state_and_terminate\n"
//   server -> successor:  one NUL byte carrying the listening fd (SCM_RIGHTS),
//                         then "<counter>\n"; then the server exits 0.
//
// The path is never unlinked: the successor serves the very same socket, and
// clients waiting in its backlog are accepted by whoever listens next.
import { addon, isSystemError } from '../ipc/addon';
import type { Logger } from '../ipc/log-line';
import { HANDOFF_REQUEST, REPLY_HANDOFF_IN_PROGRESS, formatCounter, parseCounter } from '../ipc/protocol';
import type { SharedState } from '../ipc/shared-state';
import type { Connection } from './connection';
import type { Server } from './server';

export class HandoffError extends Error {}

// --- the serving process (old side) -----------------------------------------

export interface DonorOptions {
  server: Server;
  state: SharedState;
  log: Logger;
  socketPath: string;
  timeoutMs: number;
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

  /** Serves a pass_state_and_terminate request held on `connection`. */
  handle(connection: Connection): void {
    if (this.busy) {
      connection.release(REPLY_HANDOFF_IN_PROGRESS);
      return;
    }
    this.busy = true;
    void this.handOff(connection);
  }

  private async handOff(connection: Connection): Promise<void> {
    const { server, state, log, socketPath, timeoutMs } = this.options;
    // One atomic step: the value returned is the state, and no tick follows.
    const captured = state.freeze();
    server.setCapturedValue(captured);
    const listenFd = server.stopAccepting();
    log.notice(`Passing file descriptor for ${socketPath} to other process`);
    try {
      // The NUL byte must not overtake replies still queued on this connection.
      await connection.flushed(timeoutMs);
      await sendFdWhenWritable(connection.fd, listenFd, timeoutMs);
    } catch (error) {
      // Nothing was handed over: carry on as if the request never came.
      log.warn(`handoff abandoned, still serving: ${error instanceof Error ? error.message : String(error)}`);
      connection.socket.destroy();
      server.serve(listenFd);
      state.unfreeze(captured);
      this.busy = false;
      return;
    }
    addon.close(listenFd);
    log.notice('Returning counter to client and terminating the process');
    connection.release(formatCounter(captured));
    await this.options.onHandedOff();
  }
}

/** sendmsg() never blocks; a full socket buffer is waited out up to the timeout. */
async function sendFdWhenWritable(socketFd: number, fd: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      addon.sendFd(socketFd, fd, 0);
      return;
    } catch (error) {
      if (!isSystemError(error, 'EAGAIN') || Date.now() > deadline) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

// --- the successor (new side) -----------------------------------------------

export interface ReceivedSocket {
  /** The listening socket, ready to serve. */
  fd: number;
  counter: bigint;
}

const COUNTER_LINE_MAX_BYTES = 64;

/**
 * Asks the process serving `socketPath` for its socket and state. Synchronous
 * and bounded by `timeoutMs` as a whole. Anything but exactly one NUL byte
 * carrying exactly one listening UNIX stream socket, then a counter line, is
 * an error, and every descriptor received is closed then.
 */
export function receiveSocket(socketPath: string, timeoutMs: number): ReceivedSocket {
  const deadline = Date.now() + timeoutMs;
  const left = (): number => Math.max(0, deadline - Date.now());
  let control: number;
  try {
    control = addon.connectUnix(socketPath, left());
  } catch (error) {
    throw new HandoffError(`cannot connect to ${socketPath}: ${describe(error)}`);
  }
  const received: number[] = [];
  try {
    addon.writeAll(control, Buffer.from(`${HANDOFF_REQUEST}\n`), left());
    const message = addon.receiveFd(control, left());
    if (message === null) throw new HandoffError('the server closed the connection without sending its socket');
    received.push(...message.fds);
    if (message.fds.length === 0) {
      const rest = addon.readLine(control, COUNTER_LINE_MAX_BYTES, left()).toString('latin1');
      const answer = (String.fromCharCode(message.byte) + rest).trimEnd();
      throw new HandoffError(`the server answered '${answer}' instead of sending its socket`);
    }
    if (message.byte !== 0 || message.fds.length !== 1 || message.truncated) {
      throw new HandoffError(`expected one NUL byte carrying one descriptor, got byte ${message.byte} with ${message.fds.length}`);
    }
    const [fd] = message.fds;
    if (!addon.isListeningUnixStream(fd)) throw new HandoffError('the descriptor received is not a listening UNIX stream socket');
    const line = addon.readLine(control, COUNTER_LINE_MAX_BYTES, left()).toString('latin1');
    const counter = line.endsWith('\n') ? parseCounter(line.replace(/\r?\n$/, '')) : undefined;
    if (counter === undefined) throw new HandoffError(`expected the counter after the socket, got '${line.trimEnd()}'`);
    received.length = 0;
    return { fd, counter };
  } catch (error) {
    for (const fd of received) addon.close(fd);
    if (error instanceof HandoffError) throw error;
    throw new HandoffError(`handoff from ${socketPath} failed: ${describe(error)}`);
  } finally {
    addon.close(control);
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
