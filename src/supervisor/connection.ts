// One accepted client connection: splits its bytes into lines, answers each in
// order, and closes only after everything it answered has been written.
import type net from 'node:net';
import { addon } from './native';
import { LineReader, REPLY_LINE_TOO_LONG } from '../ipc/protocol';

/** What a line handler returns: the reply, or HOLD to answer it later. */
export const HOLD = Symbol('hold');
export type LineHandler = (line: string, connection: Connection) => string | typeof HOLD;

/** Above this many unwritten reply bytes, stop reading the client. */
const MAX_PENDING_REPLY_BYTES = 256 * 1024;

export class Connection {
  private readonly reader = new LineReader();
  private readonly queue: string[] = [];
  private held = false;
  private readEnded = false;
  private closing = false;
  /** A line over the limit came after the queued ones: answer them, then close. */
  private tooLong = false;
  /** Set by lastCall(): stop reading once the next request is answered, or when this fires. */
  private lastCallTimer: NodeJS.Timeout | undefined;
  /** While held, complete lines go here instead of being answered. */
  private heldLineReader: ((line: string | undefined) => void) | undefined;
  /** The descriptor, while the socket is open (libuv's own, not a copy). */
  readonly fd: number;

  /** `unread`: bytes a predecessor had read from this client but not answered. */
  constructor(
    readonly socket: net.Socket,
    private readonly handleLine: LineHandler,
    unread?: Buffer,
  ) {
    // `_handle.fd` is how Node exposes a pipe's descriptor; the handoff needs
    // it for sendmsg() and shutdown().
    this.fd = (socket as unknown as { _handle: { fd: number } })._handle.fd;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => {
      this.readEnded = true;
      if (this.held && this.queue.length === 0) this.deliverHeldLine(undefined);
      this.flushQueue();
    });
    socket.on('drain', () => socket.resume());
    // A client that vanished (ECONNRESET, EPIPE) only loses its connection.
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      clearTimeout(this.lastCallTimer);
      this.deliverHeldLine(undefined);
    });
    if (unread !== undefined && unread.length > 0) this.onData(unread);
  }

  private onData(chunk: Buffer): void {
    if (this.closing) return;
    const { lines, tooLong } = this.reader.push(chunk);
    for (const line of lines) this.queue.push(line);
    if (tooLong) this.tooLong = true;
    this.flushQueue();
  }

  /** Answers queued lines in order until one is held. */
  private flushQueue(): void {
    if (this.held && this.heldLineReader !== undefined && this.queue.length > 0) {
      this.deliverHeldLine(this.queue.shift());
    }
    let replies = '';
    let index = 0;
    while (!this.held && index < this.queue.length) {
      const reply = this.handleLine(this.queue[index++], this);
      if (reply === HOLD) this.held = true;
      else replies += reply;
    }
    this.queue.splice(0, index);
    if (replies.length > 0 && !this.socket.destroyed) this.socket.write(replies);
    if (this.lastCallTimer !== undefined && index > 0 && this.reader.pendingBytes === 0) this.stopReading();
    // Past this, 'drain' is sure to come (write() returned false) and resumes.
    if (this.socket.writableLength > MAX_PENDING_REPLY_BYTES) this.socket.pause();
    if (this.held || this.queue.length > 0 || this.closing) return;
    if (this.tooLong) {
      this.closing = true;
      this.socket.end(REPLY_LINE_TOO_LONG);
      // Whatever else the client sends is not read: close once the reply is out.
      this.socket.destroySoon();
    } else if (this.readEnded) {
      this.closing = true;
      this.socket.end();
    }
  }

  /** Writes the reply to a held line and goes on with the lines after it. */
  release(reply: string): void {
    if (!this.socket.destroyed && reply.length > 0) this.socket.write(reply);
    this.held = false;
    this.flushQueue();
  }

  /**
   * While held: resolves with the next line the client sends, or undefined
   * if it closes the connection or `timeoutMs` passes first.
   */
  nextHeldLine(timeoutMs: number): Promise<string | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.deliverHeldLine(undefined), timeoutMs);
      this.heldLineReader = (line) => {
        clearTimeout(timer);
        resolve(line);
      };
      if (this.socket.destroyed || (this.readEnded && this.queue.length === 0)) this.deliverHeldLine(undefined);
      else this.flushQueue();
    });
  }

  private deliverHeldLine(line: string | undefined): void {
    const reader = this.heldLineReader;
    this.heldLineReader = undefined;
    reader?.(line);
  }

  /**
   * Whether the connection can be handed to a successor now: open, nothing
   * held or queued, every reply written, reading not paused.
   */
  get isIdle(): boolean {
    return !this.socket.destroyed && !this.held && !this.closing && !this.readEnded && !this.tooLong &&
      this.queue.length === 0 && this.socket.writableLength === 0 && !this.socket.isPaused();
  }

  /** Whether replies are still on their way out (an idle moment may follow soon). */
  get isSettling(): boolean {
    return !this.socket.destroyed && !this.held && !this.closing &&
      (this.socket.writableLength > 0 || this.queue.length > 0 || this.socket.isPaused());
  }

  /**
   * Stops reading (libuv keeps the rest in the kernel, for the successor) and
   * returns the bytes of a line read but not complete yet. Only when isIdle.
   * The descriptor stays open until the socket is destroyed.
   */
  detach(): Buffer {
    this.handle().readStop();
    this.closing = true;
    return this.reader.takePending();
  }

  /** Undoes detach() (a handoff rolled back): reads and answers again. */
  reattach(pending: Buffer): void {
    this.closing = false;
    // An incomplete line by construction: nothing to answer until it ends.
    this.reader.push(pending);
    this.handle().readStart();
  }

  private handle(): { readStop(): number; readStart(): number } {
    return (this.socket as unknown as { _handle: { readStop(): number; readStart(): number } })._handle;
  }

  /** Resolves when every reply so far has reached the kernel. */
  async flushed(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.socket.writableLength > 0) {
      if (this.socket.destroyed) throw new Error('the client closed the connection');
      if (Date.now() > deadline) throw new Error('the client does not read its replies');
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    if (this.socket.destroyed) throw new Error('the client closed the connection');
  }

  /**
   * Answers one more request (a client that just connected has not sent it
   * yet), then stops reading; after `graceMs` without one, stops anyway.
   */
  lastCall(graceMs: number): void {
    if (this.socket.destroyed || this.lastCallTimer !== undefined) return;
    this.lastCallTimer = setTimeout(() => this.stopReading(), graceMs);
  }

  /**
   * From now on the client's writes fail (EPIPE) while what it sent before
   * stays readable: it is answered, then the connection ends.
   */
  stopReading(): void {
    clearTimeout(this.lastCallTimer);
    if (this.socket.destroyed) return;
    try {
      addon.shutdownRead(this.fd);
    } catch {
      this.socket.destroy();
    }
  }
}
