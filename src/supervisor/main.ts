#!/usr/bin/env node
// early-service: the supervisor (main thread). It owns the listening socket,
// the connections and the handoff; the ticker thread owns the tick schedule.
import os from 'node:os';
import './process-title';
import { addon } from './native';
import { type Config, parseCli } from './cli';
import { createLogger, type Logger, lineFormatter } from '../ipc/log-line';
import { SharedState } from '../ipc/shared-state';
import { HandoffAuthorization } from './authorization';
import { injectTickerFault } from './faults';
import { takeInherited } from './fd-store';
import { HandoffDonor } from './handoff-donor';
import { Lifecycle } from './lifecycle';
import { LogWriter } from './log-writer';
import { HandoffError } from './takeover';
import { StartupError } from './listener';
import { Server } from './server';
import { Notifier, watchdogIntervalMs } from './notify';
import { runClient as runReloadClient } from './reload';
import { StateFile } from './state-file';
import { StateSaver } from './state-saver';
import { StatusReporter, detectRole } from './status-reporter';
import { TickerSupervisor } from './ticker-supervisor';
import { Timeline } from './timeline';

// Node 20 opens its inspector (a debugger on 127.0.0.1:9229: code execution
// for any local user who reaches the port) on SIGUSR1, from a handler of its
// own that a JavaScript listener does not replace, and has no option to turn
// that off (later versions have --disable-sigusr1). SIGUSR1 means nothing to
// early-service: ignore it, as the first thing this process does.
addon.ignoreSignal(os.constants.signals.SIGUSR1);

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { version } = require('../../../package.json') as { version: string };

async function main(): Promise<void> {
  const startTimeline = Timeline.sinceProcessStart();
  startTimeline.mark('modules loaded');
  if (process.argv[2] === 'stress') {
    // The stress tool ships with the service; it is loaded only when asked for.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    await (require('../stress/stress') as typeof import('../stress/stress')).main(process.argv.slice(3));
    return;
  }
  if (process.argv[2] === 'reload') {
    // The unit's ExecReload=: asks the serving process to hand over to a fresh one.
    process.exitCode = await runReloadClient(process.argv.slice(3));
    return;
  }
  const config = parseCli(process.argv.slice(2), version);
  // The one writer of stdout; the ticker's lines reach it through the state page's log queue.
  const warn = lineFormatter(config.logFormat, 'early-service').warn;
  const writer = new LogWriter(process.stdout, (count) => warn(`${count} log lines dropped: stdout did not take them`));
  const log = createLogger(config.logFormat, (text) => writer.write(text));
  let status: number;
  try {
    status = await run(config, log, writer, startTimeline);
  } catch (error) {
    if (!(error instanceof StartupError || error instanceof HandoffError)) throw error;
    log.error(error.message);
    await writer.flush(2000);
    status = 1;
  }
  process.exit(status);
}

async function run(config: Config, log: Logger, writer: LogWriter, startTimeline: Timeline): Promise<number> {
  const state = new SharedState();
  const ticker = new TickerSupervisor(state,
    { periodNs: config.periodNs, spinNs: config.spinNs, logFormat: config.logFormat }, log);
  const server = new Server(state, log, config.maxConnections);
  // First, before anything could start a process that would inherit them.
  const inherited = takeInherited(config.socketPath);
  const notifier = Notifier.fromEnvironment(log);
  const reporter = notifier && new StatusReporter(notifier, state, detectRole(), watchdogIntervalMs());
  const stateFile = config.stateFile === undefined ? undefined : new StateFile(config.stateFile);
  const socketPath = config.socketPath ?? '';
  let lifecycle: Lifecycle | undefined;
  const donor = new HandoffDonor({
    server, state, log, socketPath, timeoutMs: config.handoffTimeoutMs, periodNs: config.periodNs,
    generation: () => lifecycle?.handoffGeneration ?? 0,
    flushLog: (timeoutMs) => writer.flush(timeoutMs),
  });
  lifecycle = new Lifecycle({
    config, log, state, ticker, server, donor, stateFile, notifier, reporter, inherited, writer, startTimeline,
    authorization: config.socketPath === undefined ? undefined
      : new HandoffAuthorization(config.socketPath, config.handoffAllowedUids),
    saver: new StateSaver(stateFile, state, config.stateSaveIntervalMs, log),
  });
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => lifecycle!.requestStop(signal));
  injectTickerFault(state, log);
  return lifecycle.run();
}

void main();
