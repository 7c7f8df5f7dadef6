// What a log line looks like, for both threads: the formats, and a logger
// that hands each formatted line to a writer. Where lines go is the caller's:
// the ticker thread queues them in the log ring (log-ring.ts), the main
// thread gives them to the LogWriter (src/supervisor/log-writer.ts), the one
// writer of stdout, which also writes out the ring. A writer that refuses a
// line (a full queue) costs that line, counted, and reported by the next line
// it takes, never the tick schedule or the server.
import fs from 'node:fs';
import type pinoModule from 'pino';

export type LogFormat = 'json' | 'pretty' | 'journal';
export const LOG_FORMATS: readonly LogFormat[] = ['json', 'pretty', 'journal'];

export type Level = 'debug' | 'info' | 'notice' | 'warn' | 'error';

export type Logger = Record<Level, (message: string) => void>;

/** sd-daemon(3) priority prefixes, read by journald from a stream. */
const JOURNAL_PRIORITY: Record<Level, number> = { error: 3, warn: 4, notice: 5, info: 6, debug: 7 };
const PRETTY_PREFIX: Record<Level, string> = { error: 'error: ', warn: 'warning: ', notice: '', info: '', debug: 'debug: ' };


/**
 * The format to use when none is asked for: journald's when stdout is the
 * stream systemd connected to the journal (JOURNAL_STREAM names its device and
 * inode), pino's JSON otherwise.
 */
export function defaultLogFormat(env: NodeJS.ProcessEnv = process.env): LogFormat {
  const stream = env.JOURNAL_STREAM;
  if (stream === undefined) return 'json';
  try {
    const stat = fs.fstatSync(1);
    return stream === `${stat.dev}:${stat.ino}` ? 'journal' : 'json';
  } catch {
    return 'json';
  }
}

/**
 * `write` is where the lines go (true when it took the line). Lines it
 * refused are counted, and the count is logged (warning) before the next
 * line it takes, with how many of them were warnings or errors (in the
 * ticker thread every other line is a tick: a reader can tell exactly which
 * tick lines are missing).
 */
export function createLogger(format: LogFormat, write: (text: string) => boolean, name = 'early-service'): Logger {
  const formatted = lineFormatter(format, name);
  let dropped = 0;
  let droppedWarnings = 0;
  const emit = (text: string, warning: boolean): void => {
    if (dropped > 0 && write(formatted.warn(droppedNotice(dropped, droppedWarnings)))) dropped = droppedWarnings = 0;
    if (write(text)) return;
    dropped++;
    if (warning) droppedWarnings++;
  };
  if (format === 'json') {
    // Loaded only for JSON: under systemd (journal) start-up skips its ~35 ms.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const pino = require('pino') as typeof pinoModule;
    const stream = { write: (text: string): void => emit(text, Number(/"level":(\d+)/.exec(text)?.[1]) >= PINO_LEVEL.warn) };
    const logger = pino({ name, level: 'debug', customLevels: { notice: 35 } }, stream);
    return byLevel((level) => (message) => logger[level](message));
  }
  return byLevel((level) => (message) => emit(formatted[level](message), level === 'warn' || level === 'error'));
}

function droppedNotice(count: number, warnings: number): string {
  const of = warnings === 0 ? '' : ` (${warnings} of them ${warnings === 1 ? 'a warning or an error' : 'warnings or errors'})`;
  return `${count} log lines dropped: the log queue was full${of}`;
}

/** One line per message, in the format's own way (for json, pino's fields: used for the drop notice). */
export function lineFormatter(format: LogFormat, name: string): Record<Level, (message: string) => string> {
  switch (format) {
    case 'journal':
      return byLevel((level) => (message) => `<${JOURNAL_PRIORITY[level]}>${message.replace(/\n/g, '\\n')}\n`);
    case 'pretty':
      return byLevel((level) => (message) => `${clock()} ${name}[${process.pid}]: ${PRETTY_PREFIX[level]}${message}\n`);
    case 'json':
      return byLevel((level) => (message) => `${JSON.stringify({ level: PINO_LEVEL[level], time: Date.now(), pid: process.pid, name, msg: message })}\n`);
  }
}

/** pino's level numbers, with early-service's notice at 35. */
const PINO_LEVEL: Record<Level, number> = { debug: 20, info: 30, notice: 35, warn: 40, error: 50 };

function byLevel<T>(make: (level: Level) => (message: string) => T): Record<Level, (message: string) => T> {
  return { debug: make('debug'), info: make('info'), notice: make('notice'), warn: make('warn'), error: make('error') };
}

function clock(): string {
  return new Date().toISOString().slice(11, 23);
}
