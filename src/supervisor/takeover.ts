// The successor's side of a handoff (--takeover_existing_socket): asks the
// serving process for its socket and state, synchronously, before this
// process serves anything. Speaks the extended form (src/ipc/wire.ts) to an
// early-service server and falls back, on the same connection, to the seed's
// form when the server answers "Invalid command" (the C reference does).
//
// Nothing received is trusted or used before it has been checked and, in the
// extended form, before commit() succeeded: until then the predecessor may
// still take it all back.
//
// Who the predecessor is: the uid that created the listening socket
// (SO_PEERCRED) and the process that sends the records (SCM_CREDENTIALS, which
// it cannot forge) must both be root, our own uid or an allowed uid; the
// socket it sends must be a listening UNIX stream socket bound to our
// address; each connection a connected UNIX stream socket; each field of the
// state record believable.
//
// Whether it died: a predecessor that takes everything back says so
// ("abort"); one that closes the connection without saying so has died, and
// what it sent is ours (nobody else holds it any more). That death is
// confirmed on a pidfd of the sending process, which, unlike kill(pid, 0),
// sees a process that is dead but not yet reaped as dead.
import path from 'node:path';
import { isSystemError } from '../ipc/addon';
import { processState } from '../ipc/proc';
import { HANDOFF_REQUEST, REPLY_STOPPING, parseCounter } from '../ipc/protocol';
import {
  COMMIT, EXTENDED_REQUEST, MAX_GENERATION, type StateRecord, formatAbortRecord, parseAbortRecord,
  parseConnectionRecord, parseEndRecord, parseStateRecord,
} from '../ipc/wire';
import { LISTEN_BACKLOG } from './listener';
import { addon } from './native';
import { ProtocolError, RecordReader, type Sender } from './record-reader';

export class HandoffError extends Error {}

/** Nobody answered on the path: no file, connection refused, or no answer in time to connect. */
export class NoPredecessorError extends HandoffError {
  /**
   * `endingPid`: a process did answer on the socket, then closed without a
   * word or said it is stopping: it may still be saving its last value, so a
   * fresh start waits for it to end (Lifecycle.takeOver).
   */
  constructor(message: string, readonly endingPid?: number) {
    super(message);
  }
}

/** The predecessor took everything back (or was told to): it serves on. */
export class RolledBackError extends HandoffError {}

export interface TakeoverOptions {
  socketPath: string;
  timeoutMs: number;
  /** Our tick period: the predecessor's next deadline must be within a few of these. */
  periodNs: bigint;
  /** Besides root and our own uid. */
  allowedUids: readonly number[];
  /** Keep the connection open after the commit (Takeover.control): a reload's donor says more on it. */
  keepControl?: boolean;
  /** Called at the handoff's moments ("asked", "answered", "received"), for the log's timing line. */
  mark?: (moment: string) => void;
}

export interface Takeover {
  /** The listening socket. */
  listenFd: number;
  counter: bigint;
  /** From an early-service predecessor: its tick schedule and history. */
  state: StateRecord | undefined;
  /** Client connections handed over, with the bytes read from them but not answered. */
  connections: Array<{ fd: number; unread: Buffer }>;
  /** The predecessor died during the handoff: what arrived before is ours, the rest is lost. */
  partial: boolean;
  /** The process that handed over. */
  sender: Sender | undefined;
  /** With keepControl, after a successful commit: the connection to the predecessor, still open. */
  control: number | undefined;
  /**
   * Tells the predecessor that this process serves from now on. False when
   * it had already taken everything back: every descriptor received has been
   * closed then, and this process must not serve.
   */
  commit(): boolean;
  /**
   * Gives everything back instead of committing (`reason` is told to the
   * predecessor): closes what was received. False (and nothing done) where
   * the predecessor has already let go (the seed's form, or it died): then
   * this process must serve.
   */
  abandon(reason: string): boolean;
}

/** How long a closed connection may take to be confirmed as the predecessor's death. */
const DEATH_CONFIRM_MS = 500;

/**
 * Takes over from the process serving `socketPath`. Throws NoPredecessorError
 * when nobody serves it, RolledBackError when the predecessor took it all
 * back, HandoffError for anything else wrong (every descriptor received is
 * closed then, and the predecessor, if alive, serves on). Bounded by
 * `timeoutMs` as a whole.
 */
export function takeOver(options: TakeoverOptions): Takeover {
  const { socketPath } = options;
  const deadline = Date.now() + options.timeoutMs;
  let control: number;
  try {
    control = addon.connectUnix(socketPath, options.timeoutMs);
  } catch (error) {
    const message = `nobody answers on ${socketPath}: ${describe(error)}`;
    if (isSystemError(error, 'ENOENT') || isSystemError(error, 'ECONNREFUSED') || isSystemError(error, 'ETIMEDOUT')) {
      throw new NoPredecessorError(message);
    }
    throw new HandoffError(message);
  }
  const session = new Session(control, options, deadline);
  try {
    return session.run();
  } catch (error) {
    session.giveUp(error instanceof ProtocolError || error instanceof HandoffError ? error.message : describe(error));
    throw error instanceof HandoffError ? error : new HandoffError(`handoff from ${socketPath} failed: ${describe(error)}`);
  }
}

class Session {
  private readonly reader: RecordReader;
  /** Claimed from the reader: ours to close if the handoff does not happen. */
  private readonly held: number[] = [];
  private pidfd: number | undefined;
  private closed = false;

  constructor(
    private readonly control: number,
    private readonly options: TakeoverOptions,
    private readonly deadline: number,
  ) {
    this.reader = new RecordReader(control);
  }

  run(): Takeover {
    const peer = addon.peerCredentials(this.control);
    this.checkUid(peer.uid, 'the listening socket was created by');
    this.send(`${EXTENDED_REQUEST}\n`);
    this.options.mark?.('asked');
    // A server that closes without a word has died or is ending (it sent
    // nothing, so it gave nothing away): as if nobody answered, once it is
    // gone. A live one would still be found by the fresh start's probe,
    // which then refuses to replace it.
    const silent = new NoPredecessorError(`the server on ${this.options.socketPath} closed the connection without answering`, peer.pid);
    let first = this.next();
    if (first === 'eof') throw silent;
    if (first.fd === undefined && first.line === 'Invalid command') {
      // A C server (the seed's protocol): ask again the way it understands.
      this.send(`${HANDOFF_REQUEST}\n`);
      first = this.next();
      if (first === 'eof') throw silent;
    }
    this.options.mark?.('answered');
    const sender = this.reader.sender;
    if (sender !== undefined) {
      this.checkUid(sender.uid, 'the records were sent by');
      this.watchSender(sender.pid);
    }
    if (first.fd === undefined) {
      if (`${first.line}\n` === REPLY_STOPPING) {
        throw new NoPredecessorError(`the server on ${this.options.socketPath} is stopping`, peer.pid);
      }
      const reason = parseAbortRecord(first.line);
      if (reason !== undefined) throw new RolledBackError(`the server refused the handoff: ${reason}`);
      throw new HandoffError(`the server answered '${first.line}' instead of sending its socket`);
    }
    const listenFd = this.claim(first.fd);
    this.checkListener(listenFd);
    // Clients keep arriving while nobody accepts; a C server's backlog is small.
    addon.setBacklog(listenFd, LISTEN_BACKLOG);

    const state = parseStateRecord(first.line);
    if (state === undefined) {
      // The seed's form: the counter follows the socket, and that is all.
      const counter = parseCounter(first.line);
      if (counter === undefined) throw new HandoffError(`expected the counter after the socket, got '${first.line}'`);
      this.close();
      return this.result(listenFd, counter, undefined, [], false, sender);
    }
    this.checkState(state, sender);

    const connections: Takeover['connections'] = [];
    let partial = false;
    for (;;) {
      const record = this.next();
      if (record === 'eof') {
        // No "end" and no "abort": the predecessor died, or is taking it all back.
        if (!this.senderExited()) throw new RolledBackError('the server ended the handoff before sending everything');
        partial = true;
        break;
      }
      const reason = parseAbortRecord(record.line);
      if (reason !== undefined) throw new RolledBackError(`the server took everything back: ${reason}`);
      if (record.fd === undefined) {
        if (parseEndRecord(record.line) !== connections.length) throw new HandoffError(`unexpected record '${record.line}'`);
        break;
      }
      const fd = this.claim(record.fd);
      const unread = parseConnectionRecord(record.line);
      if (unread === undefined) throw new HandoffError(`unexpected record '${record.line.slice(0, 60)}'`);
      if (!addon.isConnectedUnixStream(fd)) throw new HandoffError('a client connection handed over is not a connected UNIX stream socket');
      connections.push({ fd, unread });
    }
    // What arrived after the last complete record (a descriptor without its line) is not ours to serve.
    this.reader.closeUnclaimed();
    this.options.mark?.('received');
    return this.result(listenFd, state.counter, state, connections, partial, sender);
  }

  /** Ends the handoff from this side: tells the server why, closes everything received. */
  giveUp(reason: string): void {
    if (!this.closed) {
      try {
        addon.writeAll(this.control, Buffer.from(formatAbortRecord(reason)), 100);
      } catch {
        // It will see the end of the connection instead.
      }
    }
    for (const fd of this.held.splice(0)) addon.close(fd);
    this.reader.closeUnclaimed();
    this.close();
  }

  private result(listenFd: number, counter: bigint, state: StateRecord | undefined,
    connections: Takeover['connections'], partial: boolean, sender: Sender | undefined): Takeover {
    // The seed's form and a dead predecessor leave nobody to give anything back to.
    const final = state === undefined || partial;
    if (final) this.close();
    const takeover: Takeover = {
      listenFd, counter, state, connections, partial, sender, control: undefined,
      commit: () => {
        if (final) return true;
        const committed = this.commit();
        if (committed && this.options.keepControl === true && !this.closed) takeover.control = this.control;
        else if (committed) this.close();
        return committed;
      },
      abandon: (reason) => {
        if (final) return false;
        this.giveUp(reason);
        return true;
      },
    };
    return takeover;
  }

  /**
   * Sends the commit. A write that goes through is decisive: the server
   * reads it before it could decide otherwise, or dies with our copies the
   * only ones. A failed write (EPIPE) means the server stopped reading: it
   * then says "abort" (it took everything back), or it has died.
   */
  private commit(): boolean {
    try {
      addon.writeAll(this.control, Buffer.from(`${COMMIT}\n`), Math.max(this.deadline - Date.now(), 1000));
      this.held.length = 0;
      if (this.pidfd !== undefined) addon.close(this.pidfd);
      this.pidfd = undefined;
      return true;
    } catch {
      // It says "abort" right after it stopped reading, if it is alive.
      let dead = false;
      try {
        dead = this.reader.next(Date.now() + 1000) === 'eof' && this.senderExited();
      } catch {
        dead = false;
      }
      if (dead) {
        this.held.length = 0;
        this.close();
        return true;
      }
      this.giveUp('too late');
      return false;
    }
  }

  private next(): ReturnType<RecordReader['next']> {
    try {
      return this.reader.next(this.deadline);
    } catch (error) {
      if (isSystemError(error, 'ETIMEDOUT')) throw new HandoffError(`no answer from the server within ${this.options.timeoutMs} ms`);
      throw error;
    }
  }

  private send(text: string): void {
    addon.writeAll(this.control, Buffer.from(text), Math.max(0, this.deadline - Date.now()));
  }

  private claim(fd: number): number {
    this.held.push(fd);
    return fd;
  }

  private checkUid(uid: number, what: string): void {
    if (uid === 0 || uid === process.getuid?.() || this.options.allowedUids.includes(uid)) return;
    throw new HandoffError(`${what} uid ${uid}, which may not hand over to this process (root, our own uid, or --handoff-allow-uid)`);
  }

  private checkListener(fd: number): void {
    if (!addon.isListeningUnixStream(fd)) throw new HandoffError('the descriptor received is not a listening UNIX stream socket');
    const name = addon.socketName(fd);
    const ours = this.options.socketPath;
    if (name !== ours && !(name.startsWith('/') && name === path.resolve(ours))) {
      throw new HandoffError(`the socket received is bound to '${name}', not to ${ours}`);
    }
  }

  private checkState(state: StateRecord, sender: Sender | undefined): void {
    const { periodNs, timeoutMs } = this.options;
    if (sender !== undefined && state.pid !== sender.pid) {
      throw new HandoffError(`the state record names pid ${state.pid}, but pid ${sender.pid} sent it`);
    }
    if (state.generation > MAX_GENERATION) throw new HandoffError(`generation ${state.generation} is not believable`);
    if (state.periodNs <= 0n) throw new HandoffError(`period ${state.periodNs} ns is not believable`);
    // A predecessor hands over just after a tick: its next one is due within
    // its period (ours, if the two agree), or somewhat in the past when the
    // handoff was slow. Anything else would make this process tick at the
    // wrong time, or never.
    const now = process.hrtime.bigint();
    const period = state.periodNs > periodNs ? state.periodNs : periodNs;
    const earliest = now - BigInt(timeoutMs) * 1_000_000n - 4n * period - 1_000_000_000n;
    const latest = now + 2n * period + 10_000_000n;
    if (state.nextDeadlineNs < earliest || state.nextDeadlineNs > latest) {
      const inMs = Number(state.nextDeadlineNs - now) / 1e6;
      throw new HandoffError(`the predecessor's next tick is due in ${inMs.toFixed(1)} ms: not believable`);
    }
  }

  private watchSender(pid: number): void {
    try {
      this.pidfd = addon.pidfdOpen(pid);
    } catch {
      // No pidfd (an old kernel, a filter): /proc tells it, less precisely.
      this.pidfd = undefined;
    }
  }

  /** Whether the sender has exited (zombie or reaped), waiting a moment for it. */
  private senderExited(): boolean {
    const pid = this.reader.sender?.pid;
    if (this.pidfd !== undefined) return addon.waitReadable(this.pidfd, DEATH_CONFIRM_MS);
    if (pid === undefined) return false;
    const until = Date.now() + DEATH_CONFIRM_MS;
    do {
      const state = processState(pid);
      if (state === undefined || state === 'Z' || state === 'X') return true;
    } while (Date.now() < until && sleepSync(5));
    return false;
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    addon.close(this.control);
    if (this.pidfd !== undefined) addon.close(this.pidfd);
    this.pidfd = undefined;
  }
}

function sleepSync(ms: number): true {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  return true;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
