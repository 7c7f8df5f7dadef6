// The successor's side of a handoff (--takeover_existing_socket): asks the
// serving process for its socket and state, synchronously, before this
// process serves anything. Speaks the extended form to an early-service
// server and falls back, on the same connection, to the seed's form when the
// server answers "Invalid command" (the C reference does).
import { addon } from '../ipc/addon';
import { HANDOFF_REQUEST, parseCounter } from '../ipc/protocol';
import {
  COMMIT, EXTENDED_REQUEST, type StateRecord, parseConnectionRecord, parseEndRecord, parseStateRecord,
} from '../ipc/wire';

export class HandoffError extends Error {}

export interface Takeover {
  /** The listening socket, ready to serve. */
  listenFd: number;
  counter: bigint;
  /** From an early-service predecessor: its tick schedule and history. */
  state: StateRecord | undefined;
  /** Client connections handed over, with the bytes read from them but not answered. */
  connections: Array<{ fd: number; unread: Buffer }>;
  /** Tells the predecessor this process serves now (it exits then). */
  commit(): void;
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
    throw new HandoffError(`cannot connect to ${socketPath}: ${describe(error)}`);
  }
  const received: number[] = [];
  const readLine = (): string => {
    const line = addon.readLine(control, LINE_MAX_BYTES, left()).toString('latin1');
    if (!line.endsWith('\n')) throw new HandoffError(`the server closed the connection in the middle of the handoff ('${line}')`);
    return line.slice(0, -1);
  };
  /** The next descriptor and the line after it, or the line the server sent instead. */
  const readRecord = (): { fd?: number; line: string } => {
    const message = addon.receiveFd(control, left());
    if (message === null) throw new HandoffError('the server closed the connection without sending its socket');
    received.push(...message.fds);
    if (message.fds.length === 0) return { line: String.fromCharCode(message.byte) + readLine() };
    if (message.byte !== 0 || message.fds.length !== 1 || message.truncated) {
      throw new HandoffError(`expected one NUL byte carrying one descriptor, got byte ${message.byte} with ${message.fds.length}`);
    }
    return { fd: message.fds[0], line: readLine() };
  };

  try {
    addon.writeAll(control, Buffer.from(`${EXTENDED_REQUEST}\n`), left());
    let first = readRecord();
    if (first.fd === undefined && first.line === 'Invalid command') {
      addon.writeAll(control, Buffer.from(`${HANDOFF_REQUEST}\n`), left());
      first = readRecord();
    }
    if (first.fd === undefined) throw new HandoffError(`the server answered '${first.line}' instead of sending its socket`);
    const listenFd = first.fd;
    if (!addon.isListeningUnixStream(listenFd)) {
      throw new HandoffError('the descriptor received is not a listening UNIX stream socket');
    }

    const state = parseStateRecord(first.line);
    const connections: Takeover['connections'] = [];
    if (state === undefined) {
      const counter = parseCounter(first.line.replace(/\r$/, ''));
      if (counter === undefined) throw new HandoffError(`expected the counter after the socket, got '${first.line}'`);
      addon.close(control);
      return { listenFd, counter, state, connections, commit: () => undefined };
    }
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
    const commit = (): void => {
      try {
        addon.writeAll(control, Buffer.from(`${COMMIT}\n`), Math.max(left(), 1000));
      } catch {
        // The predecessor is gone already: nothing left to tell it.
      }
      addon.close(control);
    };
    received.length = 0;
    return { listenFd, counter: state.counter, state, connections, commit };
  } catch (error) {
    for (const fd of received) addon.close(fd);
    addon.close(control);
    if (error instanceof HandoffError) throw error;
    throw new HandoffError(`handoff from ${socketPath} failed: ${describe(error)}`);
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
