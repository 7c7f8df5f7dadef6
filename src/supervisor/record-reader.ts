// Reads a handoff's records (src/ipc/wire.ts) from the control connection,
// synchronously and in bulk: one recvmsg(2) per record, not one per byte, so
// no client of the server can make a handoff slow by the size of what is
// handed over. A record is one line, optionally preceded by a NUL byte that
// carried exactly one descriptor (the seed's form and ours alike).
//
// Every descriptor received is owned here until it is claimed with its
// record; closeUnclaimed() closes the rest (one that arrived without its
// line, extras on one NUL byte, anything after a protocol error).
import type { ReceivedMessage } from '../ipc/addon';
import { addon } from './native';

/** A record line longer than this ends the handoff (a connection record carries at most a few hundred bytes). */
const MAX_RECORD_BYTES = 16 * 1024;
const READ_BYTES = 64 * 1024;

export class ProtocolError extends Error {}

export interface RecordLine {
  /** The descriptor its NUL byte carried, if it had one. */
  fd?: number;
  line: string;
}

/** The process that sent the records, as the kernel told it (SCM_CREDENTIALS). */
export interface Sender {
  pid: number;
  uid: number;
}

export class RecordReader {
  private buffer = Buffer.alloc(0);
  /** Descriptors by the offset in `buffer` of the NUL byte they came with. */
  private fdsAt = new Map<number, number[]>();
  private ended = false;
  /** Who sent the first message; every later one must come from the same process. */
  sender: Sender | undefined;

  constructor(private readonly fd: number) {
    addon.setPassCredentials(fd);
  }

  /** The next record, or 'eof' when the peer closed the connection (after the records before it). */
  next(deadlineMs: number): RecordLine | 'eof' {
    for (;;) {
      const record = this.take();
      if (record !== undefined) return record;
      if (this.ended) {
        if (this.buffer.length > 0) this.buffer = Buffer.alloc(0);
        return 'eof';
      }
      this.read(deadlineMs);
    }
  }

  /** Closes every descriptor received but not claimed with its record. */
  closeUnclaimed(): void {
    for (const fds of this.fdsAt.values()) for (const fd of fds) addon.close(fd);
    this.fdsAt.clear();
  }

  private read(deadlineMs: number): void {
    const message = addon.receiveMessage(this.fd, READ_BYTES, Math.max(0, deadlineMs - Date.now()));
    if (message === null) {
      this.ended = true;
      return;
    }
    this.checkSender(message);
    if (message.fds.length > 0) {
      // The descriptors came with the last segment read, which starts with its NUL.
      const nul = message.data.lastIndexOf(0);
      if (nul < 0) {
        for (const fd of message.fds) addon.close(fd);
        throw new ProtocolError('descriptors arrived without a NUL byte');
      }
      this.fdsAt.set(this.buffer.length + nul, message.fds);
    }
    if (message.truncated) throw new ProtocolError('descriptors were dropped on the way (too many, or out of descriptors)');
    this.buffer = Buffer.concat([this.buffer, message.data]);
  }

  private checkSender(message: ReceivedMessage): void {
    if (message.pid <= 0) return;
    if (this.sender === undefined) this.sender = { pid: message.pid, uid: message.uid };
    else if (this.sender.pid !== message.pid) {
      throw new ProtocolError(`records from two processes (pid ${this.sender.pid}, then pid ${message.pid})`);
    }
  }

  /** A complete record from the buffer, if there is one. */
  private take(): RecordLine | undefined {
    const withFd = this.buffer.length > 0 && this.buffer[0] === 0;
    const end = this.buffer.indexOf(0x0a);
    if (end < 0) {
      if (this.buffer.length > MAX_RECORD_BYTES) throw new ProtocolError(`a record longer than ${MAX_RECORD_BYTES} bytes`);
      return undefined;
    }
    const start = withFd ? 1 : 0;
    const text = this.buffer.subarray(start, end);
    if (text.includes(0)) throw new ProtocolError('a NUL byte inside a record');
    const line = text.toString('latin1').replace(/\r$/, '');
    let fd: number | undefined;
    if (withFd) {
      const fds = this.fdsAt.get(0) ?? [];
      if (fds.length !== 1) throw new ProtocolError(`a NUL byte carrying ${fds.length} descriptors, not one`);
      this.fdsAt.delete(0);
      fd = fds[0];
    }
    this.consume(end + 1);
    return { fd, line };
  }

  private consume(bytes: number): void {
    this.buffer = this.buffer.subarray(bytes);
    const moved = new Map<number, number[]>();
    for (const [offset, fds] of this.fdsAt) {
      if (offset < bytes) for (const fd of fds) addon.close(fd);
      else moved.set(offset - bytes, fds);
    }
    this.fdsAt = moved;
  }
}
