// How log lines reach stdout, for both threads. Writes are synchronous (a line
// is on its way before the next instruction; the ticker cannot yield to an
// asynchronous writer anyway), and never throw: a full non-blocking pipe or a
// closed stdout costs the line, never the counter or the server.
import fs from 'node:fs';
import type pinoModule from 'pino';

export type LogFormat = 'json' | 'pretty' | 'journal';
export const LOG_FORMATS: readonly LogFormat[] = ['json', 'pretty', 'journal'];

export type Level = 'debug' | 'info' | 'notice' | 'warn' | 'error';

export type Logger = Record<Level, (message: string) => void>;

/** sd-daemon(3) priority prefixes, read by journald from a stream. */
const JOURNAL_PRIORITY: Record<Level, number> = { error: 3, warn: 4, notice: 5, info: 6, debug: 7 };
const PRETTY_PREFIX: Record<Level, string> = { error: 'error: ', warn: 'warning: ', notice: '', info: '', debug: 'debug: ' };

export function writeStdout(text: string): void {
  try {
    fs.writeSync(1, text);
  } catch {
    // EAGAIN (stdout is a full non-blocking pipe) or EPIPE (nobody reads):
    // the line is lost, nothing else.
  }
}

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

/** `write` is where the lines go: stdout, unless a caller only wants to warm the code up. */
export function createLogger(format: LogFormat, name = 'early-service', write = writeStdout): Logger {
  switch (format) {
    case 'journal':
      return byLevel((level) => (message) =>
        write(`<${JOURNAL_PRIORITY[level]}>${message.replace(/\n/g, '\\n')}\n`));
    case 'pretty':
      return byLevel((level) => (message) =>
        write(`${clock()} ${name}[${process.pid}]: ${PRETTY_PREFIX[level]}${message}\n`));
    case 'json': {
      // Loaded only for JSON: under systemd (journal) start-up skips its ~35 ms.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const pino = require('pino') as typeof pinoModule;
      const logger = pino(
        { name, level: 'debug', customLevels: { notice: 35 } },
        { write },
      );
      return byLevel((level) => (message) => logger[level](message));
    }
  }
}

function byLevel(make: (level: Level) => (message: string) => void): Logger {
  return { debug: make('debug'), info: make('info'), notice: make('notice'), warn: make('warn'), error: make('error') };
}

function clock(): string {
  return new Date().toISOString().slice(11, 23);
}
