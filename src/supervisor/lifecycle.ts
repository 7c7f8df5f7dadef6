// The lifecycle of one early-service process, top to bottom: how it starts,
// what it serves, how it ends. Every guarantee in the README is a statement
// about these transitions, so they live here and nowhere else; the roles
// (takeover.ts, handoff-donor.ts, listener.ts, server.ts, the ticker's
// supervisor, the state saver) are its parts.
//
//   starting ─┬─ --takeover_existing_socket ─► taking-over ─┬─ commit ─────────► serving
//             │                                             └─ nobody answers ─┐
//             └────────────────────────────────────────────► starting-fresh ◄─┘
//   starting-fresh ─ listening ─► serving
//   serving ─ handoff request ─► donating ─┬─ commit ──────────► handed-off ─► exit 0
//                                          └─ refused/rollback ─► serving
//   serving ─ SIGTERM/SIGINT ─► stopping ─► (final save, drain) ─► exit 0
//
// What each event does in each phase:
//
//   phase           SIGTERM / SIGINT                     handoff request
//   starting,       noted; acted on once the start is    queued: served once serving
//   starting-fresh  done (serving, then stopping)
//   taking-over     before the commit: everything is     (not serving yet)
//                   given back, exit 0; after: stop
//   serving         stopping                             donating
//   donating        noted; after a commit: exit (the     "error: handoff in progress"
//                   successor serves); after a
//                   rollback: stopping
//   stopping,       ignored (already ending)             "error: stopping, retry"
//   handed-off
//
// The ticker thread is loaded once per process, whatever path leads to
// serving. Side effects that outlive the process happen on transitions only,
// in one order: the state file is saved once serving (never while frozen), its
// last save is the exact value at the stop, and a donor's saves are all on
// disk before it freezes for a handoff.
import type { Config } from './cli';
import type { Logger } from '../ipc/log-line';
import { REPLY_HANDOFF_IN_PROGRESS, REPLY_NOT_AUTHORIZED, REPLY_STOPPING } from '../ipc/protocol';
import { FROZEN, type SharedState } from '../ipc/shared-state';
import type { HandoffAuthorization } from './authorization';
import type { Connection } from './connection';
import { injectFault } from './faults';
import type { HandoffDonor } from './handoff-donor';
import { openListener } from './listener';
import type { Server } from './server';
import type { StateFile } from './state-file';
import type { StateSaver } from './state-saver';
import type { StatusReporter } from './status-reporter';
import { HandoffError, NoPredecessorError, type Takeover, takeOver } from './takeover';
import type { TickerSupervisor } from './ticker-supervisor';

/** How long a fresh start serves clients before it loads the ticker thread. */
const TICKER_START_DELAY_MS = 10;
/** How long a connection of an ending process may take to send its last request. */
const DRAIN_GRACE_MS = 100;
/** How long clients of an ending process get to read their last answers. */
const DRAIN_TIMEOUT_MS = 2000;

export type Phase =
  | 'starting' | 'taking-over' | 'starting-fresh' | 'serving' | 'donating' | 'stopping' | 'handed-off';

export interface Parts {
  config: Config;
  log: Logger;
  state: SharedState;
  ticker: TickerSupervisor;
  server: Server;
  donor: HandoffDonor;
  authorization: HandoffAuthorization | undefined;
  stateFile: StateFile | undefined;
  saver: StateSaver;
  reporter: StatusReporter | undefined;
}

interface HandoffRequest {
  connection: Connection;
  form: 'seed' | 'extended';
  pid: number;
}

export class Lifecycle {
  private phase: Phase = 'starting';
  /** The first stop signal received; acted on where the table above says. */
  private stopSignal: NodeJS.Signals | undefined;
  private pendingHandoff: HandoffRequest | undefined;
  /** Wakes the serving loop when a stop or a request arrives. */
  private wake: (() => void) | undefined;
  /** Handoffs this process's state has been through. */
  private generation = 0;

  constructor(private readonly parts: Parts) {
    parts.server.onHandoffRequest = (connection, form) => this.onHandoffRequest(connection, form);
  }

  /** The phase, for tests and the status line. */
  get current(): Phase {
    return this.phase;
  }

  get handoffGeneration(): number {
    return this.generation;
  }

  /** SIGTERM or SIGINT: the process is to end (see the table). */
  requestStop(signal: NodeJS.Signals): void {
    if (this.stopSignal !== undefined) return;
    this.stopSignal = signal;
    this.wake?.();
  }

  /** Runs the process's life; resolves with its exit status. */
  async run(): Promise<number> {
    const started = await this.start();
    if (started !== 'serving') return started;
    return this.serve();
  }

  // --- starting ---------------------------------------------------------------

  /** Ends in `serving`, or with an exit status. */
  private async start(): Promise<'serving' | number> {
    const { config, log, ticker } = this.parts;
    if (config.socketPath === undefined) {
      log.info('Not listening on a UNIX socket.');
      await ticker.load();
      ticker.start(this.resumeValue(), process.hrtime.bigint() + config.periodNs);
      this.parts.saver.start();
      this.parts.reporter?.ready('ticking, not listening on a socket');
      return 'serving';
    }
    if (config.takeoverExistingSocket) {
      const outcome = await this.takeOver(config.socketPath);
      if (outcome !== 'fresh') return outcome;
    }
    return this.startFresh(config.socketPath);
  }

  /**
   * Takes the socket and state over from the process serving the path; the
   * ticker is loaded first, so that the predecessor stops ticking only once
   * this process can go on at once.
   */
  private async takeOver(socketPath: string): Promise<'serving' | 'fresh' | number> {
    const { config, log, ticker } = this.parts;
    this.phase = 'taking-over';
    await ticker.load();
    if (this.stopSignal !== undefined) return this.stoppedBeforeServing();
    log.notice(`Reading starting position and taking ownership of socket ${socketPath}`);
    injectFault('before-request', log);
    let received: Takeover;
    try {
      received = takeOver({
        socketPath, timeoutMs: config.handoffTimeoutMs, periodNs: config.periodNs, allowedUids: config.handoffAllowedUids,
      });
    } catch (error) {
      if (!(error instanceof NoPredecessorError) || config.takeoverRequired) throw error;
      log.warn(`${error.message}; starting fresh`);
      return 'fresh';
    }
    log.notice(`Successfully received file descriptor for ${socketPath}`);
    injectFault('after-receive', log);
    // A stop that arrived during the synchronous takeover (systemd's start
    // timeout, a stop of the unit) reaches JavaScript only now: two loop
    // turns, since the first check phase may come before any poll phase.
    await nextLoopTurn();
    await nextLoopTurn();
    if (this.stopSignal !== undefined && received.abandon(`stopped by ${this.stopSignal}`)) {
      log.notice(`Stopped by ${this.stopSignal} during the takeover; the predecessor serves on`);
      this.parts.reporter?.stopping('stopped during the takeover; the predecessor serves on');
      await ticker.stop();
      return 0;
    }
    if (!received.commit()) throw new HandoffError('the predecessor took its socket back before this process could commit');
    injectFault('after-commit', log);
    this.serveReceived(received);
    return 'serving';
  }

  /** From the commit on, everything received is this process's to serve. */
  private serveReceived(received: Takeover): void {
    const { config, log, ticker, server } = this.parts;
    const now = process.hrtime.bigint();
    // The predecessor's grid goes on; its points due during the handoff are owed ticks.
    ticker.start(received.counter, received.state?.nextDeadlineNs ?? now + config.periodNs, now);
    server.serve(received.listenFd);
    this.parts.authorization?.readOwner();
    for (const { fd, unread } of received.connections) server.adopt(fd, unread);
    const from = received.sender?.pid ?? received.state?.pid;
    if (received.state !== undefined) {
      this.generation = received.state.generation;
      log.info(`Took over from pid ${received.state.pid} at counter ${received.counter} ` +
        `with ${received.connections.length} client connections (handoff #${this.generation}` +
        `${received.partial ? ', partial: the predecessor died during it' : ''})`);
      if (received.state.periodNs !== config.periodNs) {
        log.notice(`The tick period changes at this handoff: ${Number(received.state.periodNs) / 1e6} ms ` +
          `(pid ${received.state.pid}) -> ${config.timerDelayMs} ms`);
      }
    }
    this.parts.saver.start();
    this.parts.reporter?.ready(`serving; took over from ${from === undefined ? 'a predecessor' : `pid ${from}`}`);
  }

  private async startFresh(socketPath: string): Promise<'serving' | number> {
    const { config, log, ticker, server, state } = this.parts;
    this.phase = 'starting-fresh';
    if (this.stopSignal !== undefined) return this.stoppedBeforeServing();
    const counter = this.resumeValue();
    server.serve(openListener(socketPath));
    this.parts.authorization?.readOwner();
    log.notice(`Listening on UNIX socket ${socketPath}`);
    // Clients may set the counter before the ticker runs; the value resumed is the start.
    state.set(counter);
    this.parts.reporter?.ready('serving; started fresh');
    if (!ticker.loaded) {
      // Clients come as soon as READY=1 is out (systemd starts the units that
      // wait for it): answer them first. Loading piscina and starting its
      // thread blocks this thread for ~15 ms, which a client arriving then would wait.
      await new Promise((resolve) => setTimeout(resolve, TICKER_START_DELAY_MS));
    }
    await ticker.load();
    // Clients may have set the counter while the ticker thread started.
    ticker.start(state.load(), process.hrtime.bigint() + config.periodNs);
    this.parts.saver.start();
    return 'serving';
  }

  /** With no predecessor to take over from, the saved counter (if any) is where to go on from. */
  private resumeValue(): bigint {
    const { stateFile, state, log } = this.parts;
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
  }

  private async stoppedBeforeServing(): Promise<number> {
    this.parts.log.notice(`Stopped by ${this.stopSignal} before serving`);
    await this.parts.ticker.stop();
    return 0;
  }

  // --- serving ----------------------------------------------------------------

  /** Serves until a stop or a committed handoff ends the process. */
  private async serve(): Promise<number> {
    this.phase = 'serving';
    for (;;) {
      if (this.stopSignal !== undefined) return this.stop(this.stopSignal);
      const request = this.pendingHandoff;
      if (request !== undefined) {
        this.pendingHandoff = undefined;
        if (await this.donate(request)) return this.endHandedOff();
        continue;
      }
      await new Promise<void>((resolve) => { this.wake = resolve; });
      this.wake = undefined;
    }
  }

  /** A handoff request, answered at once where the phase decides it (see the table). */
  private onHandoffRequest(connection: Connection, form: 'seed' | 'extended'): void {
    const { server, authorization } = this.parts;
    const check = authorization?.check(connection.fd);
    if (check !== undefined && !check.allowed) {
      server.logThrottled('handoff refused', 'warn', `handoff refused: pid ${check.peer.pid} (uid ${check.peer.uid}) is not authorized`);
      connection.release(REPLY_NOT_AUTHORIZED);
      return;
    }
    switch (this.phase) {
      case 'stopping':
      case 'handed-off':
        connection.release(REPLY_STOPPING);
        return;
      case 'donating':
        connection.release(REPLY_HANDOFF_IN_PROGRESS);
        return;
      default:
        if (this.pendingHandoff !== undefined || this.stopSignal !== undefined) {
          connection.release(this.stopSignal !== undefined ? REPLY_STOPPING : REPLY_HANDOFF_IN_PROGRESS);
          return;
        }
        this.pendingHandoff = { connection, form, pid: check?.peer.pid ?? 0 };
        this.wake?.();
    }
  }

  /** serving -> donating -> handed-off (true) or back to serving (false). */
  private async donate(request: HandoffRequest): Promise<boolean> {
    const { saver, donor, log, reporter } = this.parts;
    this.phase = 'donating';
    reporter?.handoffState(`handing off to pid ${request.pid}`);
    // Every save on disk before the freeze: the successor's first save must come last.
    saver.pause();
    await saver.idle();
    const donation = await donor.donate(request.connection, request.form);
    if (donation.outcome === 'committed') {
      this.phase = 'handed-off';
      log.info(`Handed over counter ${donation.captured} and ${donation.connections} client connections`);
      return true;
    }
    if (donation.outcome === 'refused') log.warn(`handoff refused: ${donation.why}`);
    saver.resume();
    this.phase = 'serving';
    reporter?.handoffState(`serving; the last handoff was ${donation.outcome === 'refused' ? 'refused' : 'rolled back'} (${donation.why})`);
    return false;
  }

  // --- ending -----------------------------------------------------------------

  /** serving -> stopping: the last value saved exactly, the clients answered, exit 0. */
  private async stop(signal: NodeJS.Signals): Promise<number> {
    const { server, state, saver, reporter } = this.parts;
    this.phase = 'stopping';
    if (server.listeningFd >= 0) server.stopAccepting();
    const last = state.freeze();
    server.setCapturedValue(last, REPLY_STOPPING);
    const why = `Stopped by ${signal}; the counter was ${last}`;
    reporter?.stopping(why);
    injectFault('stopping', this.parts.log);
    if (last !== FROZEN) await saver.final(last);
    await this.finish(why);
    return 0;
  }

  /** handed-off: the successor serves; the clients left here get their answers, exit 0. */
  private async endHandedOff(): Promise<number> {
    this.parts.reporter?.stopping('Handed off; exiting');
    await this.finish('Handed off; exiting');
    return 0;
  }

  private async finish(why: string): Promise<void> {
    await this.parts.server.drain(DRAIN_GRACE_MS, DRAIN_TIMEOUT_MS);
    await this.parts.ticker.stop();
    this.parts.log.info(why);
  }
}

function nextLoopTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
