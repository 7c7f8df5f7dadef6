// The command line, spelled as the seed (GOption) spells it, plus kebab-case
// aliases. Bad values end the process with one `error: …` line and status 1
// (commander's own behaviour), before anything is started.
import { Command, InvalidArgumentError, Option } from 'commander';
import { LOG_FORMATS, type LogFormat, defaultLogFormat } from '../ipc/log-line';

export interface Config {
  timerDelayMs: number;
  /** The tick period, rounded to whole nanoseconds. */
  periodNs: bigint;
  /** How long before each deadline the ticker stops sleeping and spins. */
  spinNs: bigint;
  socketPath: string | undefined;
  surviveSystemdKillSignal: boolean;
  takeoverExistingSocket: boolean;
  /** Without a predecessor, exit 1 (the seed's behaviour) instead of starting fresh. */
  takeoverRequired: boolean;
  logFormat: LogFormat;
  handoffTimeoutMs: number;
  /** Besides root, our own uid and the socket file's owner. */
  handoffAllowedUids: number[];
  /** Where the counter is saved, and resumed from when there is no predecessor. */
  stateFile: string | undefined;
  stateSaveIntervalMs: number;
  /** Past this many open client connections, a new one is refused. */
  maxConnections: number;
  /** Keep the listening socket and the state page in systemd's fd store, and resume from them. */
  fdStore: boolean;
  /** How many seconds of tick lines the log queue holds while stdout does not take them. */
  logQueueSeconds: number;
  /** Started by `reload` as the successor of this pid: it becomes the unit's main process. */
  reloadOf: number | undefined;
}

export const MIN_TIMER_DELAY_MS = 0.01;
export const MAX_TIMER_DELAY_MS = 86_400_000;
/** sun_path holds 108 bytes, one of them the terminating NUL. */
const MAX_SOCKET_PATH_BYTES = 107;

// Long options are defined with the seed's underscores; these spellings are
// rewritten to them before parsing.
const KEBAB_ALIASES: Record<string, string> = {
  '--timer-delay-ms': '--timer_delay_ms',
  '--server-socket-path': '--server_socket_path',
  '--survive-systemd-kill-signal': '--survive_systemd_kill_signal',
  '--takeover-existing-socket': '--takeover_existing_socket',
};

export function normalizeAliases(args: readonly string[]): string[] {
  const out: string[] = [];
  for (const [index, arg] of args.entries()) {
    if (arg === '--') return out.concat(args.slice(index));
    const [name, ...value] = arg.split('=');
    const canonical = KEBAB_ALIASES[name];
    out.push(canonical === undefined ? arg : [canonical, ...value].join('='));
  }
  return out;
}

const DECIMAL_MS = /^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$/;

function parseTimerDelay(text: string): number {
  const value = Number(text);
  if (!DECIMAL_MS.test(text) || !(value >= MIN_TIMER_DELAY_MS && value <= MAX_TIMER_DELAY_MS)) {
    throw new InvalidArgumentError(
      `expected milliseconds from ${MIN_TIMER_DELAY_MS} to ${MAX_TIMER_DELAY_MS}, decimals allowed (e.g. 100 or 0.5).`);
  }
  return value;
}

function parseSocketPath(text: string): string {
  if (text.length === 0 || text.includes('\0') || Buffer.byteLength(text) > MAX_SOCKET_PATH_BYTES) {
    throw new InvalidArgumentError(`expected a file path of 1 to ${MAX_SOCKET_PATH_BYTES} bytes.`);
  }
  return text;
}

function collectUid(text: string, previous: number[]): number[] {
  if (!/^[0-9]{1,10}$/.test(text) || Number(text) > 0xfffffffe) throw new InvalidArgumentError('expected a numeric uid.');
  return [...previous, Number(text)];
}

function parseTimeout(text: string): number {
  const value = Number(text);
  if (!/^[0-9]+$/.test(text) || value < 1 || value > 3_600_000) {
    throw new InvalidArgumentError('expected whole milliseconds from 1 to 3600000.');
  }
  return value;
}

function parseSpin(text: string): number {
  const value = Number(text);
  if (!/^[0-9]+$/.test(text) || value > 1_000_000) throw new InvalidArgumentError('expected whole microseconds from 0 to 1000000.');
  return value;
}

/**
 * The default spin: a quarter period, at most 200 us, for periods of 2 ms
 * and below; none above, where a late wake-up matters less than the CPU.
 */
export function defaultSpinNs(periodNs: bigint): bigint {
  if (periodNs > 2_000_000n) return 0n;
  return periodNs / 4n < 200_000n ? periodNs / 4n : 200_000n;
}

function parseMaxConnections(text: string): number {
  const value = Number(text);
  if (!/^[0-9]+$/.test(text) || value < 1 || value > 65_536) throw new InvalidArgumentError('expected a number from 1 to 65536.');
  return value;
}

function parseQueueSeconds(text: string): number {
  const value = Number(text);
  if (!DECIMAL_MS.test(text) || !(value >= 0.01 && value <= 3600)) throw new InvalidArgumentError('expected seconds from 0.01 to 3600.');
  return value;
}

function parsePid(text: string): number {
  if (!/^[1-9][0-9]{0,9}$/.test(text)) throw new InvalidArgumentError('expected a process id.');
  return Number(text);
}

function parseSaveInterval(text: string): number {
  const value = Number(text);
  if (!/^[0-9]+$/.test(text) || value < 10 || value > 3_600_000) {
    throw new InvalidArgumentError('expected whole milliseconds from 10 to 3600000.');
  }
  return value;
}

export function buildProgram(version: string): Command {
  return new Command('early-service')
    .description('Ticks a counter and serves it on a UNIX socket; hands both over from the initrd instance ' +
      'to the root-filesystem instance without losing a tick or a client.')
    .version(version, '-V, --version')
    .helpOption('-h, --help', 'show this help')
    .option('-d, --timer_delay_ms <ms>', 'timer delay in milliseconds (alias --timer-delay-ms)', parseTimerDelay, 100)
    .option('-s, --server_socket_path <path>',
      'server UNIX domain socket path to listen on (alias --server-socket-path)', parseSocketPath)
    .option('--survive_systemd_kill_signal',
      "set argv[0][0] to '@' when running in initrd (alias --survive-systemd-kill-signal)", false)
    .option('--takeover_existing_socket',
      'perform socket handoff from initrd to root filesystem (alias --takeover-existing-socket)', false)
    .option('--takeover-required', 'with --takeover_existing_socket: exit 1 when no predecessor hands over, '
      + 'instead of starting fresh', false)
    .addOption(new Option('--log-format <format>', 'log format; default: journal under systemd, json otherwise')
      .choices(LOG_FORMATS))
    .addOption(new Option('--handoff-timeout <ms>', 'how long a handoff step may take before it is abandoned')
      .argParser(parseTimeout).default(5000))
    .addOption(new Option('--handoff-allow-uid <uid>',
      'also obey handoff requests from this uid (repeatable; root, our own uid and the socket owner always may)')
      .argParser(collectUid).default([]))
    .addOption(new Option('--timer-spin <us>', 'spin (use the CPU) this long before each tick instead of '
      + 'sleeping, for accuracy; default: a quarter period up to 200 at periods up to 2 ms, else 0').argParser(parseSpin))
    .addOption(new Option('--state-file <path>', 'save the counter here (atomically) and resume from it '
      + 'when starting with no predecessor'))
    .addOption(new Option('--state-save-interval <ms>', 'with --state-file: save a changed counter this often')
      .argParser(parseSaveInterval).default(1000))
    .addOption(new Option('--max-connections <n>', 'refuse client connections past this many open ones '
      + '("error: too many connections")').argParser(parseMaxConnections).default(1000))
    .addOption(new Option('--log-queue <seconds>', 'how many seconds of tick lines wait for stdout (journald) '
      + 'before lines are dropped (counted and reported)').argParser(parseQueueSeconds).default(5))
    .option('--fd-store', "under systemd: keep the listening socket and the counter (a memfd) in the unit's fd store "
      + '(FileDescriptorStoreMax=), and resume from them when systemd restarts the unit', false)
    .addOption(new Option('--reload-of <pid>', 'internal: the successor a reload started (see `early-service reload`)')
      .argParser(parsePid).hideHelp())
    .addHelpText('after', '\nThe stress tool that ships with it: early-service stress --help')
    .allowExcessArguments(false);
}

interface RawOptions {
  timer_delay_ms: number;
  server_socket_path?: string;
  survive_systemd_kill_signal: boolean;
  takeover_existing_socket: boolean;
  takeoverRequired: boolean;
  logFormat?: LogFormat;
  handoffTimeout: number;
  handoffAllowUid: number[];
  stateFile?: string;
  stateSaveInterval: number;
  timerSpin?: number;
  maxConnections: number;
  fdStore: boolean;
  reloadOf?: number;
  logQueue: number;
}

/** Parses `args` (without node and the script); exits the process on errors. */
export function parseCli(args: readonly string[], version: string): Config {
  const program = buildProgram(version);
  program.parse(normalizeAliases(args), { from: 'user' });
  const options = program.opts<RawOptions>();
  if (options.takeover_existing_socket && options.server_socket_path === undefined) {
    program.error('error: --takeover_existing_socket needs -s, --server_socket_path');
  }
  if (options.takeoverRequired && !options.takeover_existing_socket) {
    program.error('error: --takeover-required goes with --takeover_existing_socket');
  }
  const periodNs = BigInt(Math.round(options.timer_delay_ms * 1e6));
  return {
    timerDelayMs: options.timer_delay_ms,
    periodNs,
    spinNs: options.timerSpin === undefined ? defaultSpinNs(periodNs) : BigInt(options.timerSpin) * 1000n,
    socketPath: options.server_socket_path,
    surviveSystemdKillSignal: options.survive_systemd_kill_signal,
    takeoverExistingSocket: options.takeover_existing_socket,
    takeoverRequired: options.takeoverRequired,
    logFormat: options.logFormat ?? defaultLogFormat(),
    handoffTimeoutMs: options.handoffTimeout,
    handoffAllowedUids: options.handoffAllowUid,
    stateFile: options.stateFile,
    stateSaveIntervalMs: options.stateSaveInterval,
    maxConnections: options.maxConnections,
    fdStore: options.fdStore,
    logQueueSeconds: options.logQueue,
    reloadOf: options.reloadOf,
  };
}
