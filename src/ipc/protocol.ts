// The line protocol spoken on the socket, shared by both roles of a handoff.
// Pure functions and a byte-level line splitter: no I/O here.
import { COUNTER_MAX, COUNTER_MIN } from './shared-state';
import { EXTENDED_REQUEST } from './wire';

export const MAX_LINE_BYTES = 4096;

export const HANDOFF_REQUEST = 'pass_state_and_terminate';
export const RELOAD_REQUEST = 'reload';

export const REPLY_INVALID_COMMAND = 'Invalid command\n';
export const REPLY_INVALID_NUMBER = 'error: invalid number\n';
export const REPLY_LINE_TOO_LONG = 'error: line too long\n';
export const REPLY_HANDING_OFF = 'error: handing off, retry\n';
export const REPLY_HANDOFF_IN_PROGRESS = 'error: handoff in progress\n';
export const REPLY_NOT_AUTHORIZED = 'error: not authorized\n';
export const REPLY_STOPPING = 'error: stopping, retry\n';
export const REPLY_TOO_MANY_CONNECTIONS = 'error: too many connections\n';

export type Command =
  | { kind: 'get_counter' }
  | { kind: 'set_counter'; value: bigint }
  | { kind: 'invalid_number' }
  /** seed: pass_state_and_terminate; extended: early-service's own form (src/ipc/wire.ts). */
  | { kind: 'handoff'; form: 'seed' | 'extended' }
  /** Hand over to a fresh process of the installed program (`early-service reload`, systemctl reload). */
  | { kind: 'reload' }
  | { kind: 'unknown'; text: string };

const SET_PREFIX = 'set_counter ';
const DECIMAL = /^[+-]?[0-9]{1,19}$/;

/** A signed 64-bit decimal (FROZEN excluded), or undefined. */
export function parseCounter(text: string): bigint | undefined {
  if (!DECIMAL.test(text)) return undefined;
  const value = BigInt(text);
  return value >= COUNTER_MIN && value <= COUNTER_MAX ? value : undefined;
}

/** `line` is one line without its LF (and without a CR before it), as latin1. */
export function parseCommand(line: string): Command {
  if (line === 'get_counter') return { kind: 'get_counter' };
  if (line === HANDOFF_REQUEST) return { kind: 'handoff', form: 'seed' };
  if (line === EXTENDED_REQUEST) return { kind: 'handoff', form: 'extended' };
  if (line === RELOAD_REQUEST) return { kind: 'reload' };
  if (line.startsWith(SET_PREFIX)) {
    const value = parseCounter(line.slice(SET_PREFIX.length));
    return value === undefined ? { kind: 'invalid_number' } : { kind: 'set_counter', value };
  }
  if (line === 'set_counter') return { kind: 'invalid_number' };
  return { kind: 'unknown', text: line };
}

export const formatCounter = (value: bigint): string => `${value}\n`;
export const formatPrevious = (value: bigint): string => `previous value ${value}\n`;

/** What a log line may show of a client's bytes: printable, escaped, bounded. */
export function describeBytes(text: string, max = 80): string {
  const shown = text.length > max ? text.slice(0, max) : text;
  // eslint-disable-next-line no-control-regex
  const escaped = shown.replace(/[^\x20-\x7e]|\\/g, (c) =>
    c === '\\' ? '\\\\' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return text.length > max ? `${escaped}…(${text.length} bytes)` : escaped;
}

/** What LineReader.next() returns for a line over MAX_LINE_BYTES: the stream ends there. */
export const TOO_LONG = Symbol('line too long');

/**
 * Splits a byte stream into lines (LF, an optional CR before it), one at a
 * time, when the reader asks: the bytes wait as they arrived, so a client
 * that sends a lot costs its bytes, not a string per line. Lines are latin1
 * strings, so that any byte sequence compares safely. A line longer than
 * MAX_LINE_BYTES, complete or not, ends the stream: next() returns TOO_LONG.
 */
export class LineReader {
  private data: Buffer = Buffer.alloc(0);
  private start = 0;

  push(chunk: Buffer): void {
    if (this.start >= this.data.length) this.data = chunk;
    else this.data = Buffer.concat([this.data.subarray(this.start), chunk]);
    this.start = 0;
  }

  /** The next complete line, TOO_LONG, or undefined when no complete line is waiting. */
  next(): string | typeof TOO_LONG | undefined {
    const end = this.data.indexOf(0x0a, this.start);
    if (end < 0) {
      if (this.data.length - this.start > MAX_LINE_BYTES) return TOO_LONG;
      // Keep only the unfinished line, not the whole chunk it came in.
      if (this.start > 0) {
        this.data = Buffer.from(this.data.subarray(this.start));
        this.start = 0;
      }
      return undefined;
    }
    let stop = end;
    if (stop > this.start && this.data[stop - 1] === 0x0d) stop--;
    if (stop - this.start > MAX_LINE_BYTES) return TOO_LONG;
    const line = this.data.toString('latin1', this.start, stop);
    this.start = end + 1;
    return line;
  }

  /** Whether a complete line (or the end of the stream, TOO_LONG) is waiting. */
  get hasLine(): boolean {
    return this.data.indexOf(0x0a, this.start) >= 0 || this.data.length - this.start > MAX_LINE_BYTES;
  }

  /** Removes and returns the bytes not read as lines yet (an incomplete line, when !hasLine). */
  takePending(): Buffer {
    const pending = Buffer.from(this.data.subarray(this.start));
    this.data = Buffer.alloc(0);
    this.start = 0;
    return pending;
  }

  /** Bytes received and not read as lines yet. */
  get pendingBytes(): number {
    return this.data.length - this.start;
  }
}
