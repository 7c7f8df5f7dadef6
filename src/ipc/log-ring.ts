// The queue between the ticker and stdout: a ring of bytes (whole log lines)
// with one producer, the ticker thread, which appends without a system call,
// and one consumer, the main thread's LogWriter, which writes it out in
// batches when stdout takes it. It lives in the state page (state-page.ts),
// so a process that systemd restarts after a SIGKILL writes out what its
// predecessor had queued.
//
//   Int32 header: [0] head, [1] tail (bytes appended / written out so far,
//   modulo 2^32; a position is the count modulo the capacity), [2] capacity.
//
// A line that does not fit is refused (the producer's logger counts it and
// says so once room is back: see log-line.ts); nothing is ever overwritten.
export const RING_HEADER_BYTES = 16;
const HEAD = 0;
const TAIL = 1;
const CAPACITY = 2;

export class LogRing {
  private readonly header: Int32Array;
  private readonly data: Uint8Array;
  readonly capacity: number;

  /** The ring at `offset` of `buffer`: its header, then `capacity` bytes. */
  constructor(buffer: ArrayBufferLike, offset: number, capacity?: number) {
    this.header = new Int32Array(buffer, offset, RING_HEADER_BYTES / 4);
    if (capacity !== undefined) Atomics.store(this.header, CAPACITY, capacity);
    this.capacity = Atomics.load(this.header, CAPACITY);
    this.data = new Uint8Array(buffer, offset + RING_HEADER_BYTES, this.capacity);
  }

  /** Bytes queued and not written out yet. */
  get queued(): number {
    return (Atomics.load(this.header, HEAD) - Atomics.load(this.header, TAIL)) >>> 0;
  }

  // --- the producer (the ticker thread) ----------------------------------------

  /** Queues `line` (ASCII, whole lines); false when there is no room for it. */
  append(line: string): boolean {
    const head = Atomics.load(this.header, HEAD) >>> 0;
    const free = this.capacity - ((head - (Atomics.load(this.header, TAIL) >>> 0)) >>> 0);
    const bytes = Buffer.byteLength(line);
    if (bytes > free) return false;
    let position = head % this.capacity;
    if (bytes === line.length) {
      for (let i = 0; i < bytes; i++) {
        this.data[position] = line.charCodeAt(i);
        position = position + 1 === this.capacity ? 0 : position + 1;
      }
    } else {
      for (const byte of Buffer.from(line)) {
        this.data[position] = byte;
        position = position + 1 === this.capacity ? 0 : position + 1;
      }
    }
    // Published after the bytes: the consumer never reads a line half written.
    Atomics.store(this.header, HEAD, (head + bytes) | 0);
    return true;
  }

  // --- the consumer (the main thread) ------------------------------------------

  /** The bytes queued from `from` (a count, as tail()) on, copied out. */
  peek(from: number): Buffer {
    const head = Atomics.load(this.header, HEAD) >>> 0;
    const length = (head - from) >>> 0;
    const start = from % this.capacity;
    const first = Math.min(length, this.capacity - start);
    const out = Buffer.allocUnsafe(length);
    out.set(this.data.subarray(start, start + first), 0);
    if (first < length) out.set(this.data.subarray(0, length - first), first);
    return out;
  }

  /** Where the next line will be appended (a count, like tail()). */
  head(): number {
    return Atomics.load(this.header, HEAD) >>> 0;
  }

  /** Where the bytes not yet written out begin. */
  tail(): number {
    return Atomics.load(this.header, TAIL) >>> 0;
  }

  /** `bytes` more have been written out: their room is free again. */
  release(bytes: number): void {
    Atomics.store(this.header, TAIL, (Atomics.load(this.header, TAIL) + bytes) | 0);
  }
}
