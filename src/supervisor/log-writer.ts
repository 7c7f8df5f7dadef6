// The one writer of stdout (under systemd: journald's stream). It writes the
// ticker's lines from the log ring (src/ipc/log-ring.ts) and this thread's own
// messages, in the order they were logged, in batches (many lines per
// write(2)) whenever stdout takes them: a slow reader (journald busy for a
// moment) makes the lines wait in the ring, bounded, never the ticker or the
// server. Lines are lost only when the ring is full (the ticker counts them
// and says so), or when stdout is gone.
//
// The ring's room is released only once a batch has reached the kernel: a
// process killed with a batch still on its way leaves it in the ring, for
// the process systemd restarts to write out (see state-page.ts).
import type { LogRing } from '../ipc/log-ring';
import type { SharedState } from '../ipc/shared-state';

/** The most one write(2) carries. */
const MAX_BATCH_BYTES = 64 * 1024;
/** At high rates, at most one write per this many ms: the lines gather meanwhile. */
const MIN_WRITE_INTERVAL_MS = 1;
/** This thread's own messages waiting beyond this are dropped (counted): a bound for a stdout that never drains. */
const MAX_PENDING_BYTES = 1024 * 1024;

interface Chunk {
  data: Buffer;
  /** How many of the ring's bytes it holds (released once written). */
  ringBytes: number;
}

export class LogWriter {
  private ring: LogRing | undefined;
  private state: SharedState | undefined;
  /** The ring's count up to which bytes are pending or written. */
  private cursor = 0;
  private pending: Chunk[] = [];
  private pendingBytes = 0;
  private writing = false;
  private waiting = false;
  private lastWrite = 0;
  private broken = false;
  private dropped = 0;
  private idle: Array<() => void> = [];

  constructor(
    private readonly out: NodeJS.WritableStream,
    /** The format's warning line for a count of lost messages. */
    private readonly droppedNotice: (count: number) => string,
  ) {
    // EPIPE and the like arrive as 'error': without a listener they would end the process.
    out.on('error', () => { this.broken = true; });
  }

  /** Writes out the ticker's ring from now on (and whatever a predecessor left queued in it). */
  attach(ring: LogRing, state: SharedState): void {
    this.ring = ring;
    this.state = state;
    this.cursor = ring.tail();
    this.pump();
  }

  /** One line of this thread's: after every ticker line queued before it. */
  write(text: string): boolean {
    this.collect();
    if (this.pendingBytes > MAX_PENDING_BYTES) {
      this.dropped++;
      return true;
    }
    if (this.dropped > 0) {
      this.push(Buffer.from(this.droppedNotice(this.dropped)), 0);
      this.dropped = 0;
    }
    this.push(Buffer.from(text), 0);
    this.pump();
    return true;
  }

  /** Resolves once everything logged so far is written, or after `timeoutMs`. */
  async flush(timeoutMs: number): Promise<void> {
    this.collect();
    this.pump();
    if (this.done()) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((resolve) => { this.idle.push(resolve); }),
      new Promise<void>((resolve) => { timer = setTimeout(resolve, timeoutMs); }),
    ]);
    clearTimeout(timer);
  }

  private done(): boolean {
    return !this.writing && this.pending.length === 0 && (this.ring === undefined || this.ring.queued === 0);
  }

  private push(data: Buffer, ringBytes: number): void {
    this.pending.push({ data, ringBytes });
    this.pendingBytes += data.length;
  }

  /** Moves what the ticker queued since the last call into `pending`, in order. */
  private collect(): void {
    const ring = this.ring;
    if (ring === undefined) return;
    if (ring.head() === this.cursor) return;
    const data = ring.peek(this.cursor);
    this.cursor = (this.cursor + data.length) >>> 0;
    this.push(data, data.length);
  }

  private pump(): void {
    if (this.writing) return;
    this.collect();
    if (this.pending.length === 0) {
      for (const resolve of this.idle.splice(0)) resolve();
      this.sleep();
      return;
    }
    // Gather more at high rates: a write per millisecond carries them all.
    const sinceLast = Date.now() - this.lastWrite;
    if (sinceLast < MIN_WRITE_INTERVAL_MS && this.pendingBytes < MAX_BATCH_BYTES / 4 && this.idle.length === 0) {
      setTimeout(() => this.pump(), MIN_WRITE_INTERVAL_MS - sinceLast);
      return;
    }
    const batch = this.takeBatch();
    const ringBytes = batch.reduce((sum, c) => sum + c.ringBytes, 0);
    const data = batch.length === 1 ? batch[0]!.data : Buffer.concat(batch.map((c) => c.data));
    if (this.broken) {
      this.ring?.release(ringBytes);
      setImmediate(() => this.pump());
      return;
    }
    this.writing = true;
    this.lastWrite = Date.now();
    this.out.write(data, () => {
      this.writing = false;
      this.ring?.release(ringBytes);
      this.pump();
    });
  }

  /** Up to MAX_BATCH_BYTES of pending chunks (at least one), in order. */
  private takeBatch(): Chunk[] {
    let bytes = 0;
    let count = 0;
    while (count < this.pending.length && (count === 0 || bytes + this.pending[count]!.data.length <= MAX_BATCH_BYTES)) {
      bytes += this.pending[count]!.data.length;
      count++;
    }
    this.pendingBytes -= bytes;
    return this.pending.splice(0, count);
  }

  /** Nothing to write: wake up when the ticker queues its next line. */
  private sleep(): void {
    const { ring, state } = this;
    if (ring === undefined || state === undefined || this.waiting) return;
    this.waiting = true;
    void state.waitForLog(() => ring.head() !== this.cursor).then(() => {
      this.waiting = false;
      this.pump();
    });
  }
}
