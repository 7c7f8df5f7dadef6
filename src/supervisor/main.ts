#!/usr/bin/env node
// early-service: the supervisor (main thread). It owns the listening socket,
// the connections and the handoff; the ticker thread owns the tick schedule.
import './process-title';
import { type Config, parseCli } from './cli';
import { addon } from './native';
import { createLogger, type Logger, makeStdoutNonBlocking } from '../ipc/log-line';
import { FROZEN, SharedState } from '../ipc/shared-state';
import { HandoffAuthorization } from './authorization';
import { HandoffDonor } from './handoff-donor';
import { HandoffError, type Takeover, takeOver } from './takeover';
import { StartupError, openListener } from './listener';
import { Server } from './server';
import { Notifier, watchdogIntervalMs } from './notify';
import { StateFile } from './state-file';
import { StatusReporter, detectRole } from './status-reporter';
import { TickerSupervisor } from './ticker-supervisor';

/** How long a fresh start serves clients before it starts the ticker thread. */
const TICKER_START_DELAY_MS = 10;
/** How long a connection of a stopping process may take to send its last request. */
const DRAIN_GRACE_MS = 100;
/** How long clients of a stopping process get to read their last answers. */
const DRAIN_TIMEOUT_MS = 2000;

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { version } = require('../../../package.json') as { version: string };

async function main(): Promise<void> {
  if (process.argv[2] === 'stress') {
    // The stress tool ships with the service; it is loaded only when asked for.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    await (require('../stress/stress') as typeof import('../stress/stress')).main(process.argv.slice(3));
    return;
  }
  const config = parseCli(process.argv.slice(2), version);
  makeStdoutNonBlocking((fd) => addon.setNonBlocking(fd));
  const log = createLogger(config.logFormat);
  try {
    await run(config, log);
  } catch (error) {
    if (!(error instanceof StartupError || error instanceof HandoffError)) throw error;
    log.error(error.message);
    process.exit(1);
  }
}

async function run(config: Config, log: Logger): Promise<void> {
  const state = new SharedState();
  const ticker = new TickerSupervisor(state,
    { periodNs: config.periodNs, spinNs: config.spinNs, logFormat: config.logFormat }, log);
  const server = new Server(state, log);
  const notifier = Notifier.fromEnvironment(log);
  const reporter = notifier && new StatusReporter(notifier, state, detectRole(), watchdogIntervalMs());
  const stateFile = config.stateFile === undefined ? undefined : new StateFile(config.stateFile);
  const saveState = (value: bigint): Promise<void> =>
    stateFile?.save(value, (message) => log.error(message)) ?? Promise.resolve();
  // The ticker thread waits until it is told to start, once it runs: its
  // first tick comes one period after this moment, not late by its start-up.
  const startTicking = (counter: bigint, firstDeadlineNs = process.hrtime.bigint() + config.periodNs): void => {
    state.start(counter, firstDeadlineNs);
    if (stateFile !== undefined) {
      void saveState(counter);
      setInterval(() => {
        const value = state.load();
        if (value !== FROZEN) void saveState(value);
      }, config.stateSaveIntervalMs).unref();
    }
  };

  let finishing = false;
  const finish = async (why: string, exitCode = 0): Promise<never> => {
    finishing = true;
    reporter?.stopping(why);
    await server.drain(DRAIN_GRACE_MS, DRAIN_TIMEOUT_MS);
    await ticker.stop();
    log.info(why);
    process.exit(exitCode);
  };

  let takingOver = false;
  let stopDuringTakeover: NodeJS.Signals | undefined;
  const stop = (signal: NodeJS.Signals): void => {
    if (takingOver) {
      stopDuringTakeover = signal;
      return;
    }
    if (finishing || donor?.inProgress) return;
    finishing = true;
    const last = state.freeze();
    server.setCapturedValue(last);
    if (config.socketPath !== undefined) addon.close(server.stopAccepting());
    // The last value goes to disk before the process ends; a failure is logged.
    void saveState(last).then(() => finish(`Stopped by ${signal}; the counter was ${last}`));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  injectTickerFault(state, log);

  // With no predecessor to take over from, the saved counter (if any) is where to go on from.
  const resumeValue = (): bigint => {
    if (stateFile === undefined) return state.load();
    const saved = stateFile.load();
    switch (saved.kind) {
      case 'loaded':
        log.notice(`Resuming from ${stateFile.file}: counter ${saved.counter} (saved ${saved.saved})`);
        return saved.counter;
      case 'missing':
        log.info(`No saved counter in ${stateFile.file} yet; starting from ${state.load()}`);
        return state.load();
      case 'rejected':
        log.warn(`Ignoring ${stateFile.file}: ${saved.reason}; starting from ${state.load()}`);
        return state.load();
    }
  };

  let donor: HandoffDonor | undefined;
  const socketPath = config.socketPath;
  if (socketPath === undefined) {
    log.info('Not listening on a UNIX socket.');
    const counter = resumeValue();
    await ticker.start();
    startTicking(counter);
    reporter?.ready('ticking, not listening on a socket');
    return;
  }

  let generation = 0;
  const authorization = new HandoffAuthorization(socketPath, config.handoffAllowedUids);
  donor = new HandoffDonor({
    server, state, log, socketPath, timeoutMs: config.handoffTimeoutMs, periodNs: config.periodNs,
    authorization,
    generation: () => generation,
    onHandedOff: () => finish('Handed off; exiting'),
    onProgress: (text) => reporter?.handoffState(text),
  });
  server.onHandoffRequest = (connection, form) => donor?.handle(connection, form);

  if (config.takeoverExistingSocket) {
    // Until the commit, a stop leaves everything to the predecessor (below).
    takingOver = true;
    // Start the ticker first, so the predecessor stops ticking only once this
    // process is ready to go on at once.
    await ticker.start();
    log.notice(`Reading starting position and taking ownership of socket ${socketPath}`);
    injectFault('before-request', log);
    let received: Takeover | undefined;
    try {
      received = takeOver(socketPath, config.handoffTimeoutMs);
    } catch (error) {
      if (!(error instanceof HandoffError) || config.takeoverRequired) throw error;
      log.warn(`${error.message}; starting fresh`);
    }
    if (received !== undefined) {
      log.notice(`Successfully received file descriptor for ${socketPath}`);
      injectFault('after-receive', log);
      // A stop asked for while the takeover ran (systemd's start timeout, or a
      // stop of the unit) is delivered by the event loop: let it run, and
      // rather than commit and then stop, leave the predecessor serving.
      // Two turns: the first check phase may come before any poll phase, and
      // signals caught meanwhile are handed to JavaScript in a poll phase.
      await nextLoopTurn();
      await nextLoopTurn();
      takingOver = false;
      if (stopDuringTakeover !== undefined && received.abandon()) {
        log.notice(`Stopped by ${stopDuringTakeover} during the takeover; the predecessor serves on`);
        reporter?.stopping('stopped during the takeover; the predecessor serves on');
        await ticker.stop();
        process.exit(0);
      }
      if (stopDuringTakeover !== undefined) setImmediate(() => stop(stopDuringTakeover!));
      if (!received.commit()) throw new HandoffError('the predecessor took its socket back before this process could commit');
      injectFault('after-commit', log);
      // Continue the predecessor's tick grid when it told us where it was.
      startTicking(received.counter, received.state?.nextDeadlineNs);
      server.serve(received.listenFd);
      authorization.readOwner();
      for (const { fd, unread } of received.connections) server.adopt(fd, unread);
      const from = received.state === undefined ? 'a predecessor' : `pid ${received.state.pid}`;
      if (received.state !== undefined) {
        generation = received.state.generation;
        log.info(`Took over from pid ${received.state.pid} at counter ${received.counter} ` +
          `with ${received.connections.length} client connections (handoff #${generation}` +
          `${received.partial ? ', partial: the predecessor died during it' : ''})`);
      }
      reporter?.ready(`serving; took over from ${from}`);
      return;
    }
  }

  takingOver = false;
  if (stopDuringTakeover !== undefined) {
    log.notice(`Stopped by ${stopDuringTakeover} before serving`);
    await ticker.stop();
    process.exit(0);
  }
  const counter = resumeValue();
  server.serve(openListener(socketPath));
  authorization.readOwner();
  log.notice(`Listening on UNIX socket ${socketPath}`);
  // Clients may set the counter before the ticker runs; the value resumed is the start.
  state.set(counter);
  reporter?.ready('serving; started fresh');
  // Clients come as soon as READY=1 is out (systemd starts the units that
  // wait for it): answer them first. Loading piscina and starting its thread
  // blocks this thread for ~15 ms, which a client arriving then would wait.
  await new Promise((resolve) => setTimeout(resolve, TICKER_START_DELAY_MS));
  await ticker.start();
  // Clients may have set the counter while the ticker thread started.
  startTicking(state.load());
}

function nextLoopTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Fault injection for the handoff tests and the stress tool: with
 * EARLY_SERVICE_FAULT=stop-<point>, this process stops itself (SIGSTOP) at
 * that point of a takeover, for the caller to kill it there.
 */
function injectFault(point: 'before-request' | 'after-receive' | 'after-commit', log: Logger): void {
  if (process.env.EARLY_SERVICE_FAULT !== `stop-${point}`) return;
  log.notice(`fault injection: stopping ${point.replace('-', ' ')}`);
  process.kill(process.pid, 'SIGSTOP');
}

/** EARLY_SERVICE_FAULT=ticker-exit|ticker-hang: on SIGUSR2, the ticker thread crashes or hangs. */
function injectTickerFault(state: SharedState, log: Logger): void {
  const fault = process.env.EARLY_SERVICE_FAULT;
  if (fault !== 'ticker-exit' && fault !== 'ticker-hang') return;
  process.on('SIGUSR2', () => {
    log.notice(`fault injection: ${fault}`);
    state.injectTickerFault(fault === 'ticker-exit' ? 'exit' : 'hang');
  });
}

void main();
