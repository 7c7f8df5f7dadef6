// The UNIX socket server: a net.Server on a listening descriptor it was
// given (created by openListener() or received in a handoff), the commands of
// the protocol, and the connections it has accepted.
import net from 'node:net';
import { addon } from './native';
import type { Logger } from '../ipc/log-line';
import {
  type Command, REPLY_HANDING_OFF, REPLY_INVALID_COMMAND, REPLY_INVALID_NUMBER,
  describeBytes, formatCounter, formatPrevious, parseCommand,
} from '../ipc/protocol';
import { FROZEN, type SharedState } from '../ipc/shared-state';
import { Connection, HOLD } from './connection';
import { LISTEN_BACKLOG } from './listener';

/** Called with a connection that asked for the handoff; it is held until released. */
export type HandoffRequestHandler = (connection: Connection, form: 'seed' | 'extended') => void;

/** At most this many "Unknown message" lines a second, so clients cannot flood the log. */
const UNKNOWN_LOG_PER_SECOND = 20;

export class Server {
  readonly connections = new Set<Connection>();
  private netServer: net.Server | undefined;
  private listenFd = -1;
  /** The value captured by freeze(), answered to get_counter while frozen. */
  private capturedValue = 0n;
  private unknownLogged = 0;
  private unknownSuppressed = 0;
  private unknownWindowStart = 0;
  onHandoffRequest: HandoffRequestHandler = (connection) => connection.release(REPLY_INVALID_COMMAND);

  constructor(
    private readonly state: SharedState,
    private readonly log: Logger,
  ) {}

  /** Starts accepting on a listening descriptor; the server owns it from now on. */
  serve(fd: number): void {
    const server = net.createServer({ allowHalfOpen: true }, (socket) => this.accept(socket));
    server.on('error', (error) => this.log.error(`server error: ${error.message}`));
    server.listen({ fd, backlog: LISTEN_BACKLOG });
    this.netServer = server;
    this.listenFd = fd;
  }

  /**
   * Stops accepting. Returns a duplicate of the listening descriptor: closing
   * the net.Server closes its own, but the socket (and the clients waiting in
   * its backlog) must live on for whoever is served next.
   */
  stopAccepting(): number {
    const kept = addon.dup(this.listenFd);
    this.netServer?.close();
    this.netServer = undefined;
    this.listenFd = -1;
    return kept;
  }

  /** Answers get_counter with `value` while the state is frozen. */
  setCapturedValue(value: bigint): void {
    this.capturedValue = value;
  }

  /** Serves a client connection handed over by a predecessor. */
  adopt(fd: number, unread: Buffer): void {
    const socket = new net.Socket({ fd, readable: true, writable: true, allowHalfOpen: true });
    this.accept(socket, unread);
  }

  /** Resolves once no connection is settling (see Connection.isSettling), or after `timeoutMs`. */
  async settle(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && [...this.connections].some((c) => c.isSettling)) {
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }

  /**
   * Lets every connection finish: each gets one more request answered (or
   * `graceMs` to send it: a client that has just connected is about to), then
   * its later writes are refused at its end (EPIPE: never delivered, safe to
   * retry elsewhere) while all it sent before is answered. Resolves when all
   * are closed; after `timeoutMs` the rest (clients that do not read) are cut off.
   */
  async drain(graceMs: number, timeoutMs: number): Promise<void> {
    const closed = [...this.connections].map((c) => new Promise((resolve) => c.socket.once('close', resolve)));
    for (const connection of this.connections) connection.lastCall(graceMs);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise((resolve) => { timer = setTimeout(resolve, timeoutMs); });
    await Promise.race([Promise.all(closed), timedOut]);
    clearTimeout(timer);
    for (const connection of this.connections) connection.socket.destroy();
  }

  private accept(socket: net.Socket, unread?: Buffer): void {
    const connection = new Connection(socket, (line, c) => this.answer(parseCommand(line), c), unread);
    this.connections.add(connection);
    socket.once('close', () => this.connections.delete(connection));
  }

  private answer(command: Command, connection: Connection): string | typeof HOLD {
    switch (command.kind) {
      case 'get_counter': {
        const value = this.state.load();
        return formatCounter(value === FROZEN ? this.capturedValue : value);
      }
      case 'set_counter': {
        const previous = this.state.set(command.value);
        // Frozen: the value was captured for a successor; a change now would be lost.
        if (previous === FROZEN) return REPLY_HANDING_OFF;
        this.log.info(`Setting the counter to ${command.value}`);
        return formatPrevious(previous);
      }
      case 'invalid_number':
        return REPLY_INVALID_NUMBER;
      case 'handoff':
        // After this line is marked held: the handler may release it at once.
        queueMicrotask(() => this.onHandoffRequest(connection, command.form));
        return HOLD;
      case 'unknown':
        this.logUnknown(command.text);
        return REPLY_INVALID_COMMAND;
    }
  }

  private logUnknown(text: string): void {
    const now = Date.now();
    if (now - this.unknownWindowStart >= 1000) {
      if (this.unknownSuppressed > 0) {
        this.log.warn(`${this.unknownSuppressed} more unknown messages were not logged`);
      }
      this.unknownWindowStart = now;
      this.unknownLogged = 0;
      this.unknownSuppressed = 0;
    }
    if (this.unknownLogged++ < UNKNOWN_LOG_PER_SECOND) this.log.warn(`Unknown message '${describeBytes(text)}' from client`);
    else this.unknownSuppressed++;
  }
}
