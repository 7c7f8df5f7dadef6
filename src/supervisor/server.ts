// The UNIX socket server, on a listening descriptor it was given (created by
// openListener() or received in a handoff): the commands of the protocol,
// and the connections it serves. New connections are accepted and their
// get_counter answered by the addon's fast path, in C on this thread's loop
// (src/ipc/native/fast_path.c); at their first other line they come here and
// are served as Connections, like those a predecessor handed over.
import net from 'node:net';
import type { Logger } from '../ipc/log-line';
import {
  type Command, REPLY_HANDING_OFF, REPLY_INVALID_COMMAND, REPLY_INVALID_NUMBER,
  describeBytes, formatCounter, formatPrevious, parseCommand,
} from '../ipc/protocol';
import { FROZEN, type SharedState } from '../ipc/shared-state';
import { Connection, HOLD } from './connection';
import { addon } from './native';
import { LogThrottle } from './log-throttle';

/** Called with a connection that asked for the handoff; it is held until released. */
export type HandoffRequestHandler = (connection: Connection, form: 'seed' | 'extended') => void;

export class Server {
  readonly connections = new Set<Connection>();
  private listenFd = -1;
  /**
   * Shared with the fast path: [the most connections, how many are
   * Connections here, how many were refused for being past the most].
   */
  private readonly limits = new Int32Array(new SharedArrayBuffer(12));
  private refusalsLogged = 0;
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
    log: Logger,
    /** Past this many open connections a new one is told so and closed (by the fast path). */
    maxConnections: number,
  ) {
    this.throttle = new LogThrottle(log);
    this.limits[0] = maxConnections;
    // Refusals happen in C; they are reported from here, at most once a second.
    setInterval(() => {
      const refused = Atomics.load(this.limits, 2);
      if (refused === this.refusalsLogged) return;
      log.warn(`refused ${refused - this.refusalsLogged} connections: ${maxConnections} were open (--max-connections)`);
      this.refusalsLogged = refused;
    }, 1000).unref();
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
    addon.fastPathStart(fd, this.state.counterView, (client, unread, unwritten) => this.adopt(client, unread, unwritten), this.limits);
    this.listenFd = fd;
  }

  /**
   * Stops accepting and closes the listening descriptor. The socket (and the
   * clients in its backlog) lives on only in other copies: a successor's, the
   * fd store's, or one the caller dup()ed first.
   */
  stopAccepting(): void {
    if (this.listenFd < 0) return;
    // Every connection the fast path serves becomes a Connection here, for the drain or the handoff.
    addon.fastPathStop();
    addon.close(this.listenFd);
    this.listenFd = -1;
  }

  /** Answers get_counter with `value` while the state is frozen; set_counter gets `setReply`. */
  setCapturedValue(value: bigint, setReply = REPLY_HANDING_OFF): void {
    this.capturedValue = value;
    this.frozenReply = setReply;
  }

  /**
   * Serves a client connection handed over by a predecessor or by the fast
   * path, with the bytes read from it and not answered, and replies not yet
   * written (these go out first).
   */
  adopt(fd: number, unread: Buffer, unwritten?: Buffer): void {
    const socket = new net.Socket({ fd, readable: true, writable: true, allowHalfOpen: true });
    if (unwritten !== undefined && unwritten.length > 0) socket.write(unwritten);
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

  private accept(socket: net.Socket, unread: Buffer): void {
    const connection = new Connection(socket, (line, c) => this.answer(parseCommand(line), c), unread);
    this.connections.add(connection);
    Atomics.store(this.limits, 1, this.connections.size);
    socket.once('close', () => {
      this.connections.delete(connection);
      Atomics.store(this.limits, 1, this.connections.size);
    });
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
