// The line protocol spoken on the socket, shared by both roles of a handoff.
// Pure functions and a byte-level line splitter: no I/O here.
import { COUNTER_MAX, COUNTER_MIN } from './shared-state';
import { EXTENDED_REQUEST } from './wire';

export const MAX_LINE_BYTES = 4096;

export const HANDOFF_REQUEST = 'pass_state_and_terminate';

export const REPLY_INVALID_COMMAND = 'Invalid command\n';
export const REPLY_INVALID_NUMBER = 'error: invalid number\n';
export const REPLY_LINE_TOO_LONG = 'error: line too long\n';
export const REPLY_HANDING_OFF = 'error: handing off, retry\n';
export const REPLY_HANDOFF_IN_PROGRESS = 'error: handoff in progress\n';
export const REPLY_NOT_AUTHORIZED = 'error: not authorized\n';

export type Command =
  | { kind: 'get_counter' }
  | { kind: 'set_counter'; value: bigint }
  | { kind: 'invalid_number' }
  /** seed: pass_state_and_terminate; extended: early-service's own form (src/ipc/wire.ts). */
  | { kind: 'handoff'; form: 'seed' | 'extended' }
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

/**
 * Splits a byte stream into lines (LF, an optional CR before it). Lines are
 * returned as latin1 strings so that any byte sequence compares safely. A line
 * longer than MAX_LINE_BYTES, complete or not, ends the stream: the lines
 * before it are still returned, with `tooLong` set.
 */
export class LineReader {
  private partial: Buffer | undefined;

  push(chunk: Buffer): { lines: string[]; tooLong: boolean } {
    let data = chunk;
    if (this.partial !== undefined) {
      data = Buffer.concat([this.partial, chunk]);
      this.partial = undefined;
    }
    const lines: string[] = [];
    let start = 0;
    for (;;) {
      const end = data.indexOf(0x0a, start);
      if (end < 0) break;
      let stop = end;
      if (stop > start && data[stop - 1] === 0x0d) stop--;
      if (stop - start > MAX_LINE_BYTES) return { lines, tooLong: true };
      lines.push(data.toString('latin1', start, stop));
      start = end + 1;
    }
    if (data.length - start > MAX_LINE_BYTES) return { lines, tooLong: true };
    if (start < data.length) this.partial = Buffer.from(data.subarray(start));
    return { lines, tooLong: false };
  }

  /** Removes and returns the bytes of an incomplete line. */
  takePending(): Buffer {
    const pending = this.partial ?? Buffer.alloc(0);
    this.partial = undefined;
    return pending;
  }

  /** Bytes of an incomplete line waiting for its LF. */
  get pendingBytes(): number {
    return this.partial?.length ?? 0;
  }
}
