// The successor's side of a handoff (--takeover_existing_socket): asks the
// serving process for its socket and state, synchronously, before this
// process serves anything. Speaks the extended form (src/ipc/wire.ts) to an
// early-service server and falls back, on the same connection, to the seed's
// form when the server answers "Invalid command" (the C reference does).
//
// In the extended form nothing received is used before commit() succeeded:
// until then the predecessor may still take it all back.
import { isSystemError } from '../ipc/addon';
import { addon } from './native';
import { HANDOFF_REQUEST, parseCounter } from '../ipc/protocol';
import {
  COMMIT, EXTENDED_REQUEST, type StateRecord, parseConnectionRecord, parseEndRecord, parseStateRecord,
} from '../ipc/wire';

export class HandoffError extends Error {}

/** Nobody answered on the path: no file, connection refused, or no answer in time to connect. */
export class NoPredecessorError extends HandoffError {}

export interface Takeover {
  /** The listening socket. */
  listenFd: number;
  counter: bigint;
  /** From an early-service predecessor: its tick schedule and history. */
  state: StateRecord | undefined;
  /** Client connections handed over, with the bytes read from them but not answered. */
  connections: Array<{ fd: number; unread: Buffer }>;
  /**
   * The predecessor died in the middle of the handoff: what arrived before is
   * kept (nobody else can serve it now), the rest is lost.
   */
  partial: boolean;
  /**
   * Tells the predecessor that this process serves from now on. False when
   * it had already taken everything back: every descriptor received has been
   * closed then, and this process must not serve.
   */
  commit(): boolean;
  /**
   * Gives everything back instead of committing: closes what was received
   * and the connection, and the predecessor, still holding its own copies,
   * carries on. False (and nothing done) where the predecessor has already
   * let go (the seed's form, or it died): then this process must serve.
   */
  abandon(): boolean;
}

const LINE_MAX_BYTES = 16 * 1024;

/**
 * Anything but one NUL byte carrying one listening UNIX stream socket followed
 * by the counter (or the state record) is an error; every descriptor
 * received is closed then. Bounded by `timeoutMs` as a whole.
 */
export function takeOver(socketPath: string, timeoutMs: number): Takeover {
  const deadline = Date.now() + timeoutMs;
  const left = (): number => Math.max(0, deadline - Date.now());
  let control: number;
  try {
    control = addon.connectUnix(socketPath, left());
  } catch (error) {
    const message = `nobody answers on ${socketPath}: ${describe(error)}`;
    if (isSystemError(error, 'ENOENT') || isSystemError(error, 'ECONNREFUSED') || isSystemError(error, 'ETIMEDOUT')) {
      throw new NoPredecessorError(message);
    }
    throw new HandoffError(message);
  }
  const received: number[] = [];
  const closeAll = (): void => {
    for (const fd of received.splice(0)) addon.close(fd);
    addon.close(control);
  };
  const readLine = (): string => {
    const line = addon.readLine(control, LINE_MAX_BYTES, left()).toString('latin1');
    if (!line.endsWith('\n')) throw new HandoffError(`the server closed the connection in the middle of the handoff ('${line}')`);
    return line.slice(0, -1);
  };
  /** The next descriptor and the line after it, or the line the server sent instead. */
  const readRecord = (): { fd?: number; line: string } => {
    const message = addon.receiveFd(control, left());
    if (message === null) throw new HandoffError('the server closed the connection in the middle of the handoff');
    received.push(...message.fds);
    if (message.fds.length === 0) return { line: String.fromCharCode(message.byte) + readLine() };
    if (message.byte !== 0 || message.fds.length !== 1 || message.truncated) {
      throw new HandoffError(`expected one NUL byte carrying one descriptor, got byte ${message.byte} with ${message.fds.length}`);
    }
    return { fd: message.fds[0], line: readLine() };
  };

  let first: { fd?: number; line: string };
  try {
    addon.writeAll(control, Buffer.from(`${EXTENDED_REQUEST}\n`), left());
    first = readRecord();
    if (first.fd === undefined && first.line === 'Invalid command') {
      addon.writeAll(control, Buffer.from(`${HANDOFF_REQUEST}\n`), left());
      first = readRecord();
    }
    if (first.fd === undefined) throw new HandoffError(`the server answered '${first.line}' instead of sending its socket`);
    if (!addon.isListeningUnixStream(first.fd)) {
      throw new HandoffError('the descriptor received is not a listening UNIX stream socket');
    }
  } catch (error) {
    closeAll();
    throw asHandoffError(error, socketPath);
  }
  const listenFd = first.fd;

  const state = parseStateRecord(first.line);
  if (state === undefined) {
    // The seed's form: the counter follows the socket, and that is all.
    const counter = parseCounter(first.line.replace(/\r$/, ''));
    if (counter === undefined) {
      closeAll();
      throw new HandoffError(`expected the counter after the socket, got '${first.line}'`);
    }
    addon.close(control);
    return { listenFd, counter, state, connections: [], partial: false, commit: () => true, abandon: () => false };
  }

  const connections: Takeover['connections'] = [];
  let partial = false;
  try {
    for (;;) {
      const record = readRecord();
      if (record.fd === undefined) {
        if (parseEndRecord(record.line) !== connections.length) throw new HandoffError(`unexpected record '${record.line}'`);
        break;
      }
      const unread = parseConnectionRecord(record.line);
      if (unread === undefined) throw new HandoffError(`unexpected record '${record.line}'`);
      connections.push({ fd: record.fd, unread });
    }
  } catch (error) {
    // A predecessor that is still alive will take everything back.
    if (isAlive(state.pid)) {
      closeAll();
      throw asHandoffError(error, socketPath);
    }
    partial = true;
  }

  const commit = (): boolean => {
    if (partial) {
      addon.close(control);
      return true;
    }
    try {
      addon.writeAll(control, Buffer.from(`${COMMIT}\n`), Math.max(left(), 1000));
    } catch {
      // EPIPE: the predecessor stopped listening for the commit. If it is
      // alive it took everything back; if it died, what we hold is ours.
      if (isAlive(state.pid)) {
        for (const fd of [listenFd, ...connections.map((c) => c.fd)]) addon.close(fd);
        addon.close(control);
        return false;
      }
    }
    addon.close(control);
    return true;
  };
  const abandon = (): boolean => {
    if (partial) return false;
    for (const fd of [listenFd, ...connections.map((c) => c.fd)]) addon.close(fd);
    addon.close(control);
    return true;
  };
  received.length = 0;
  return { listenFd, counter: state.counter, state, connections, partial, commit, abandon };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return !isSystemError(error, 'ESRCH');
  }
}

function asHandoffError(error: unknown, socketPath: string): HandoffError {
  return error instanceof HandoffError ? error : new HandoffError(`handoff from ${socketPath} failed: ${describe(error)}`);
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
