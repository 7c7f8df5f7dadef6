// The UNIX socket server: a net.Server on a listening descriptor it was
// given (created by openListener() or received in a handoff), the commands of
// the protocol, and the connections it has accepted.
import net from 'node:net';
import type { Logger } from '../ipc/log-line';
import {
  type Command, REPLY_HANDING_OFF, REPLY_INVALID_COMMAND, REPLY_INVALID_NUMBER, REPLY_TOO_MANY_CONNECTIONS,
  describeBytes, formatCounter, formatPrevious, parseCommand,
} from '../ipc/protocol';
import { FROZEN, type SharedState } from '../ipc/shared-state';
import { Connection, HOLD } from './connection';
import { LISTEN_BACKLOG } from './listener';
import { LogThrottle } from './log-throttle';

/** Called with a connection that asked for the handoff; it is held until released. */
export type HandoffRequestHandler = (connection: Connection, form: 'seed' | 'extended') => void;

export class Server {
  readonly connections = new Set<Connection>();
  private netServer: net.Server | undefined;
  private listenFd = -1;
  /** The value captured by freeze(), answered to get_counter while frozen. */
  private capturedValue = 0n;
  /** What set_counter gets while frozen: retry soon (a handoff), or elsewhere (a stop). */
  private frozenReply = REPLY_HANDING_OFF;
  private readonly throttle: LogThrottle;
  onHandoffRequest: HandoffRequestHandler = (connection) => connection.release(REPLY_INVALID_COMMAND);
  /** Called with a connection that asked for a reload; it is held until released. */
  onReloadRequest: (connection: Connection) => void = (connection) => connection.release(REPLY_INVALID_COMMAND);

  constructor(
    private readonly state: SharedState,
    private readonly log: Logger,
    /** Past this many open connections a new one is told so and closed. */
    private readonly maxConnections: number,
  ) {
    this.throttle = new LogThrottle(log);
  }

  /** Client-triggered lines go through here: at most a few a second of each kind. */
  logThrottled(kind: string, level: 'info' | 'warn' | 'notice', message: string): void {
    this.throttle.line(kind, level, message);
  }

  /** The listening descriptor while serving, else -1. */
  get listeningFd(): number {
    return this.listenFd;
  }

  /** Starts accepting on a listening descriptor; the server owns it from now on. */
  serve(fd: number): void {
    const server = net.createServer({ allowHalfOpen: true }, (socket) => this.accept(socket));
    server.on('error', (error) => this.log.error(`server error: ${error.message}`));
    server.listen({ fd, backlog: LISTEN_BACKLOG });
    this.netServer = server;
    this.listenFd = fd;
  }

  /**
   * Stops accepting and closes the listening descriptor. The socket (and the
   * clients in its backlog) lives on only in other copies: a successor's, the
   * fd store's, or one the caller dup()ed first.
   */
  stopAccepting(): void {
    this.netServer?.close();
    this.netServer = undefined;
    this.listenFd = -1;
  }

  /** Answers get_counter with `value` while the state is frozen; set_counter gets `setReply`. */
  setCapturedValue(value: bigint, setReply = REPLY_HANDING_OFF): void {
    this.capturedValue = value;
    this.frozenReply = setReply;
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
    if (this.connections.size >= this.maxConnections && unread === undefined) {
      this.logThrottled('too many connections', 'warn', `refused a connection: ${this.maxConnections} are open (--max-connections)`);
      socket.on('error', () => socket.destroy());
      socket.end(REPLY_TOO_MANY_CONNECTIONS);
      socket.destroySoon();
      return;
    }
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
        if (previous === FROZEN) return this.frozenReply;
        this.logThrottled('Setting the counter', 'info', `Setting the counter to ${command.value}`);
        return formatPrevious(previous);
      }
      case 'invalid_number':
        return REPLY_INVALID_NUMBER;
      case 'handoff':
        // After this line is marked held: the handler may release it at once.
        queueMicrotask(() => this.onHandoffRequest(connection, command.form));
        return HOLD;
      case 'reload':
        queueMicrotask(() => this.onReloadRequest(connection));
        return HOLD;
      case 'unknown':
        this.logThrottled('Unknown message', 'warn', `Unknown message '${describeBytes(command.text)}' from client`);
        return REPLY_INVALID_COMMAND;
    }
  }
}
