// One accepted client connection: splits its bytes into lines, answers each in
// order, and closes only after everything it answered has been written.
//
// Memory is bounded per connection whatever the client does: lines are taken
// from the received bytes one at a time, and answering stops (and with it
// reading, so the kernel holds the rest) once MAX_PENDING_REPLY_BYTES of
// replies wait for a client that does not read them.
import type net from 'node:net';
import { addon } from './native';
import { LineReader, REPLY_LINE_TOO_LONG, TOO_LONG } from '../ipc/protocol';

/** What a line handler returns: the reply, or HOLD to answer it later. */
export const HOLD = Symbol('hold');
export type LineHandler = (line: string, connection: Connection) => string | typeof HOLD;

/**
 * Above this many unwritten reply bytes, stop answering and reading the
 * client until it reads: with at most one read chunk (64 KiB) waiting, a
 * client that floods and never reads holds a bounded amount of memory.
 */
const MAX_PENDING_REPLY_BYTES = 16 * 1024;

export class Connection {
  private readonly reader = new LineReader();
  private held = false;
  /** Reading stopped until the client has read some replies (see pump). */
  private throttled = false;
  private readEnded = false;
  private closing = false;
  /** A line over the limit came after the ones answered: close once they are written. */
  private tooLong = false;
  /** Set by lastCall(): stop reading once the next request is answered, or when this fires. */
  private lastCallTimer: NodeJS.Timeout | undefined;
  /** While held, the next complete line goes here instead of being answered. */
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
      if (this.held && !this.reader.hasLine) this.deliverHeldLine(undefined);
      this.pump();
    });
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
    this.reader.push(chunk);
    this.pump();
  }

  /** Answers waiting lines in order until one is held or the reply budget is spent. */
  private pump(): void {
    if (this.held && this.heldLineReader !== undefined && this.reader.hasLine) this.deliverHeldLine(this.takeLine());
    // Replies joined into one flat string: `+=` would build a rope of one
    // heap object per reply, about 15 times their bytes while they wait.
    const replies: string[] = [];
    let bytes = 0;
    let answered = 0;
    const budget = MAX_PENDING_REPLY_BYTES - this.socket.writableLength;
    while (!this.held && !this.tooLong && bytes <= budget) {
      const line = this.takeLine();
      if (line === undefined) break;
      answered++;
      const reply = this.handleLine(line, this);
      if (reply === HOLD) this.held = true;
      else {
        replies.push(reply);
        bytes += reply.length;
      }
    }
    if (bytes > 0 && !this.socket.destroyed) this.socket.write(replies.join(''), () => this.afterWrite());
    if (this.lastCallTimer !== undefined && answered > 0 && this.reader.pendingBytes === 0) this.stopReading();
    // Over budget: the rest waits, and nothing more is read, until what was
    // written has left (afterWrite), i.e. until the client reads.
    const waiting = !this.held && !this.tooLong && this.reader.hasLine;
    if (this.socket.writableLength > MAX_PENDING_REPLY_BYTES || waiting) {
      // libuv stops at once (a paused stream would still buffer what arrives).
      if (!this.throttled && !this.closing) this.handle().readStop();
      this.throttled = true;
      return;
    }
    if (this.held || this.closing) return;
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

  /** The next complete line; a line too long ends the stream (tooLong). */
  private takeLine(): string | undefined {
    if (this.tooLong) return undefined;
    const line = this.reader.next();
    if (line === TOO_LONG) {
      this.tooLong = true;
      return undefined;
    }
    return line;
  }

  /** A write has reached the kernel: answer what waited for it, then read again. */
  private afterWrite(): void {
    if (this.socket.destroyed || this.closing) return;
    if (!this.held && this.reader.hasLine) this.pump();
    if (this.throttled && !this.reader.hasLine && this.socket.writableLength <= MAX_PENDING_REPLY_BYTES) {
      this.throttled = false;
      this.handle().readStart();
    }
  }

  /** Writes the reply to a held line and goes on with the lines after it. */
  release(reply: string): void {
    if (!this.socket.destroyed && reply.length > 0) this.socket.write(reply, () => this.afterWrite());
    this.held = false;
    this.pump();
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
      if (this.socket.destroyed || (this.readEnded && !this.reader.hasLine)) this.deliverHeldLine(undefined);
      else this.pump();
    });
  }

  private deliverHeldLine(line: string | undefined): void {
    const reader = this.heldLineReader;
    this.heldLineReader = undefined;
    reader?.(line);
  }

  /**
   * Whether the connection can be handed to a successor now: open, nothing
   * held, no complete line waiting, every reply written, reading not paused.
   */
  get isIdle(): boolean {
    return !this.socket.destroyed && !this.held && !this.closing && !this.readEnded && !this.tooLong &&
      !this.reader.hasLine && this.socket.writableLength === 0 && !this.throttled;
  }

  /** Bytes of an incomplete line read from the client and not answered yet. */
  get pendingBytes(): number {
    return this.reader.pendingBytes;
  }

  /** Whether replies are still on their way out (an idle moment may follow soon). */
  get isSettling(): boolean {
    return !this.socket.destroyed && !this.held && !this.closing &&
      (this.socket.writableLength > 0 || this.reader.hasLine || this.throttled);
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
