// The records of the extended handoff, spoken only between two early-service
// processes (a C peer answers the request with "Invalid command", and the
// successor falls back to the seed's exchange on the same connection).
//
//   successor -> server:  "pass_state_v1\n"
//   server -> successor:  NUL+fd(listening socket) "state v1 counter=… next_deadline_ns=… period_ns=… pid=… generation=…\n"
//                         then, for each client connection it hands over,
//                         NUL+fd(connection)       "connection <bytes it had read but not yet answered, base64, or ->\n"
//                         then                     "end <number of connections>\n"
//   successor -> server:  "commit\n" once it has checked everything; then the server exits 0.
//
// Either side may instead end the handoff with "abort <reason>\n": the server
// has taken (or the successor gives) everything back. A server that closes
// the connection WITHOUT saying "abort" has died; the successor then keeps
// what it received (see takeover.ts). Each record with a descriptor is one
// sendmsg(2): the descriptor rides on its NUL byte, and the successor reads
// whole records with one recvmsg(2) each. Version 1 is what every
// early-service release has spoken: "abort" and one-segment records are
// additions that older peers tolerate (an older successor treats "abort" as a
// broken handoff, an older server sends NUL and line separately, which the
// reader below assembles all the same).
import { parseCounter } from './protocol';

export const EXTENDED_REQUEST = 'pass_state_v1';
export const COMMIT = 'commit';
export const WIRE_VERSION = 1;

export interface StateRecord {
  counter: bigint;
  /** CLOCK_MONOTONIC nanoseconds at which the next tick is due. */
  nextDeadlineNs: bigint;
  periodNs: bigint;
  pid: number;
  /** How many handoffs this state has been through, this one included. */
  generation: number;
}

/** The most handoffs a state may claim; beyond this the record is not believed. */
export const MAX_GENERATION = 1_000_000_000;

export function formatStateRecord(record: StateRecord): string {
  return `state v${WIRE_VERSION} counter=${record.counter} next_deadline_ns=${record.nextDeadlineNs} ` +
    `period_ns=${record.periodNs} pid=${record.pid} generation=${record.generation}\n`;
}

const STATE_LINE = /^state v1 counter=(\S+) next_deadline_ns=([0-9]{1,19}) period_ns=([0-9]{1,19}) pid=([0-9]{1,10}) generation=([0-9]{1,10})$/;

/** The record in `line` (without its LF), or undefined if it is not one. */
export function parseStateRecord(line: string): StateRecord | undefined {
  const match = STATE_LINE.exec(line);
  if (match === null) return undefined;
  const counter = parseCounter(match[1]!);
  if (counter === undefined) return undefined;
  return {
    counter,
    nextDeadlineNs: BigInt(match[2]!),
    periodNs: BigInt(match[3]!),
    pid: Number(match[4]),
    generation: Number(match[5]),
  };
}

export const formatConnectionRecord = (unread: Buffer): string =>
  `connection ${unread.length > 0 ? unread.toString('base64') : '-'}\n`;

/** The bytes in a connection record, or undefined if it is not one. */
export function parseConnectionRecord(line: string): Buffer | undefined {
  const match = /^connection (-|[A-Za-z0-9+/]+={0,2})$/.exec(line);
  if (match === null) return undefined;
  return match[1] === '-' ? Buffer.alloc(0) : Buffer.from(match[1]!, 'base64');
}

export const formatEndRecord = (connections: number): string => `end ${connections}\n`;

export function parseEndRecord(line: string): number | undefined {
  const match = /^end ([0-9]{1,9})$/.exec(line);
  return match === null ? undefined : Number(match[1]);
}

/** One line, whatever the reason says (newlines would end the record early). */
export const formatAbortRecord = (reason: string): string => `abort ${reason.replace(/[\r\n]+/g, ' ')}\n`;

/** The reason in an abort record, or undefined if it is not one. */
export function parseAbortRecord(line: string): string | undefined {
  return line.startsWith('abort ') ? line.slice('abort '.length) : line === 'abort' ? '' : undefined;
}
