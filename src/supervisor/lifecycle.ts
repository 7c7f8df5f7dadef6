// The lifecycle of one early-service process, top to bottom: how it starts,
// what it serves, how it ends. Every guarantee in the README is a statement
// about these transitions, so they live here and nowhere else; the roles
// (takeover.ts, handoff-donor.ts, reload.ts, listener.ts, server.ts,
// fd-store.ts, the ticker's supervisor, the state saver) are its parts.
//
//   starting ─┬─ systemd handed back the socket ──────────────► resuming ─────────► serving
//             ├─ --takeover_existing_socket ─► taking-over ─┬─ commit ───────────► serving
//             │                                             └─ nobody answers ─┐
//             │                     (or it is stopping: once it has exited)    │
//             └────────────────────────────────────────────► starting-fresh ◄─┘──► serving
//   serving ─ handoff request ─► donating ─┬─ commit ──────────► handed-off ─► exit 0
//                                          └─ refused/rollback ─► serving
//   serving ─ reload request ─► reloading (a successor of ours starts and asks)
//                                  └─► donating ─┬─ commit: MAINPID, BARRIER ─► handed-off ─► exit 0
//                                                └─ otherwise: READY=1 ──────► serving
//   serving ─ SIGTERM/SIGINT ─► stopping ─► (final save, drain) ─► exit 0
//
// What each event does in each phase:
//
//   phase             SIGTERM / SIGINT                     handoff or reload request
//   starting,         noted; acted on once serving         queued: served once serving
//   starting-fresh,   (then stopping)
//   resuming
//   taking-over       before the commit: everything is     (not serving yet)
//                     given back, exit 0; after: stop
//   serving           stopping                             donating / reloading
//   reloading,        noted; after a commit: exit (the     "error: handoff in progress"
//   donating          successor serves); otherwise:        (a reload takes only its own
//                     stopping                             successor's request)
//   stopping,         ignored (already ending)             "error: stopping, retry"
//   handed-off
//
// The ticker thread is loaded once per process, whatever path leads to
// serving. Side effects that outlive the process happen on transitions only,
// in one order: the state file is saved once serving (never while frozen), its
// last save is the exact value at the stop, and a donor's saves are all on
// disk before it freezes for a handoff; the fd store is filled once this
// process is the unit's main process and serves.
import type { Config } from './cli';
import type { Logger } from '../ipc/log-line';
import { REPLY_HANDOFF_IN_PROGRESS, REPLY_NOT_AUTHORIZED, REPLY_STOPPING } from '../ipc/protocol';
import { FROZEN, type SharedState } from '../ipc/shared-state';
import { type Page, type PageState, createPage, readPage } from '../ipc/state-page';
import type { HandoffAuthorization } from './authorization';
import type { Connection } from './connection';
import { injectFault } from './faults';
import { type Inherited, LISTENER, STATE } from './fd-store';
import type { HandoffDonor } from './handoff-donor';
import type { LogWriter } from './log-writer';
import { openListener } from './listener';
import { addon } from './native';
import type { Notifier } from './notify';
import { awaitMainLine, exitOf, startSuccessor } from './reload';
import type { Server } from './server';
import type { StateFile } from './state-file';
import type { StateSaver } from './state-saver';
import type { StatusReporter } from './status-reporter';
import { HandoffError, NoPredecessorError, type Takeover, takeOver } from './takeover';
import type { TickerSupervisor } from './ticker-supervisor';
import type { Timeline } from './timeline';

/** How long after it starts serving (its ticker thread runs by then) a process drops its start-up pages (see serve()). */
const TRIM_DELAY_MS = 250;
/** How long a fresh start serves clients before it loads the ticker thread. */
const TICKER_START_DELAY_MS = 10;
/** How long a connection of an ending process may take to send its last request. */
const DRAIN_GRACE_MS = 100;
/** How long clients of an ending process get to read their last answers. */
const DRAIN_TIMEOUT_MS = 2000;
/** How long a reload's successor may take to start and ask (node's start under QEMU without KVM: 15-40 s). */
const RELOAD_START_TIMEOUT_MS = 90_000;
/** How long the last log lines may take to reach stdout before the process ends. */
const LOG_FLUSH_TIMEOUT_MS = 2000;
/** How long PID 1 may take to process MAINPID= (BARRIER=1), and a successor to hear about it. */
const MAIN_PID_TIMEOUT_MS = 5000;

export type Phase = 'starting' | 'resuming' | 'taking-over' | 'starting-fresh' | 'serving' | 'reloading' |
  'donating' | 'stopping' | 'handed-off';

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
  /** The one writer of stdout. */
  writer: LogWriter;
  notifier: Notifier | undefined;
  reporter: StatusReporter | undefined;
  /** What systemd's fd store handed back to this process (fd-store.ts). */
  inherited: Inherited;
  /** This process's moments since its start (node ready, modules loaded), for a takeover's timing line. */
  startTimeline: Timeline;
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
  private pendingReload: Connection | undefined;
  /** During a reload: the successor's pid, whose request alone is served, and where it goes. */
  private reloadSuccessor: { pid: number; arrived: (request: HandoffRequest) => void } | undefined;
  /** Wakes the serving loop when a stop or a request arrives. */
  private wake: (() => void) | undefined;
  /** Handoffs this process's state has been through. */
  private generation = 0;
  /** The state page (state-page.ts): the counter's mirror and the log queue. */
  private page: Page | undefined;
  /** A committed donation's moments, completed by the process's end. */
  private donorTimeline: Timeline | undefined;

  constructor(private readonly parts: Parts) {
    parts.server.onHandoffRequest = (connection, form) => this.onRequest(connection, { form });
    parts.server.onReloadRequest = (connection) => this.onRequest(connection, 'reload');
  }

  /** The phase, for tests and the status line. */
  get current(): Phase {
    return this.phase;
  }

  get handoffGeneration(): number {
    return this.generation;
  }

  private readonly flushLog = (timeoutMs: number): Promise<void> => this.parts.writer.flush(timeoutMs);

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
    const { config, log, ticker, inherited } = this.parts;
    for (const refused of inherited.refused) log.warn(`systemd's fd store handed back ${refused}; not used`);
    if (config.socketPath === undefined) {
      log.info('Not listening on a UNIX socket.');
      this.usePage(this.newPage(0n, 0n));
      await ticker.load();
      ticker.start(this.resumeValue(), process.hrtime.bigint() + config.periodNs);
      this.parts.saver.start();
      await this.ready('ticking, not listening on a socket');
      return 'serving';
    }
    if (inherited.listener !== undefined) return this.resume(config.socketPath, inherited.listener);
    if (config.takeoverExistingSocket) {
      const outcome = await this.takeOver(config.socketPath);
      if (outcome !== 'fresh') return outcome;
    }
    return this.startFresh(config.socketPath);
  }

  /**
   * systemd restarted the unit and handed back what it kept: the listening
   * socket (clients waited in its backlog meanwhile) and the state page, from
   * which the counter and the tick grid go on exactly.
   */
  private async resume(socketPath: string, listenFd: number): Promise<'serving' | number> {
    const { config, log, ticker, server, state, inherited } = this.parts;
    this.phase = 'resuming';
    const now = process.hrtime.bigint();
    const page = inherited.state === undefined ? undefined : readPage(addon, inherited.state, now);
    let from: PageState | undefined;
    if (page?.kind === 'ok') {
      from = page.state;
      // Its log queue first: lines the predecessor had not written out yet.
      this.usePage(page.page);
      log.notice(`Resuming on ${socketPath} from systemd's fd store: counter ${from.counter} (pid ${from.pid}'s state)`);
    } else {
      if (inherited.state !== undefined) addon.close(inherited.state);
      const why = page?.kind === 'rejected' ? `the state kept there is not believed (${page.reason})` : 'no state was kept';
      log.warn(`Resuming on ${socketPath} from systemd's fd store, but ${why}`);
    }
    const counter = from?.counter ?? this.resumeValue();
    state.set(counter);
    server.serve(listenFd);
    this.parts.authorization?.readOwner();
    if (from === undefined) this.usePage(this.newPage(counter, now + config.periodNs));
    await ticker.load();
    // The grid goes on; its points during the restart's downtime are skipped ("missed ticks").
    const firstDeadline = from !== undefined && from.periodNs === config.periodNs ? from.nextDeadlineNs : now + config.periodNs;
    ticker.start(state.load(), firstDeadline);
    this.parts.saver.start();
    await this.ready('serving; resumed from systemd\'s fd store');
    // The listener is in the store already; a new page replaces the refused one.
    if (from === undefined) this.store(STATE);
    return 'serving';
  }

  /**
   * Takes the socket and state over from the process serving the path; the
   * ticker is loaded first, so that the predecessor stops ticking only once
   * this process can go on at once.
   */
  private async takeOver(socketPath: string): Promise<'serving' | 'fresh' | number> {
    const { config, log, ticker, startTimeline } = this.parts;
    this.phase = 'taking-over';
    this.usePage(this.newPage(0n, 0n));
    await ticker.load();
    startTimeline.mark('ticker ready');
    if (this.stopSignal !== undefined) return this.stoppedBeforeServing();
    log.notice(`Reading starting position and taking ownership of socket ${socketPath}`);
    await injectFault('before-request', log, this.flushLog);
    let received: Takeover;
    try {
      received = takeOver({
        socketPath, timeoutMs: config.handoffTimeoutMs, periodNs: config.periodNs, allowedUids: config.handoffAllowedUids,
        keepControl: config.reloadOf !== undefined, mark: (moment) => startTimeline.mark(moment),
      });
    } catch (error) {
      if (!(error instanceof NoPredecessorError) || config.takeoverRequired) throw error;
      if (error.endingPid !== undefined && !await processEnded(error.endingPid, config.handoffTimeoutMs)) {
        log.warn(`${error.message}, and pid ${error.endingPid} did not end within ${config.handoffTimeoutMs} ms`);
      }
      // Only now: an ending predecessor's last save is on disk once it has exited.
      log.warn(`${error.message}; starting fresh`);
      return 'fresh';
    }
    log.notice(`Successfully received file descriptor for ${socketPath}`);
    await injectFault('after-receive', log, this.flushLog);
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
    startTimeline.mark('committed');
    await injectFault('after-commit', log, this.flushLog);
    await this.serveReceived(received);
    return 'serving';
  }

  /** From the commit on, everything received is this process's to serve. */
  private async serveReceived(received: Takeover): Promise<void> {
    const { config, log, ticker, server } = this.parts;
    const now = process.hrtime.bigint();
    // The predecessor's grid goes on; its points due during the handoff are owed ticks.
    ticker.start(received.counter, received.state?.nextDeadlineNs ?? now + config.periodNs, now);
    server.serve(received.listenFd);
    this.parts.authorization?.readOwner();
    for (const { fd, unread } of received.connections) server.adopt(fd, unread);
    this.parts.startTimeline.mark('serving');
    const from = received.sender?.pid ?? received.state?.pid;
    if (received.state !== undefined) {
      this.generation = received.state.generation;
      log.info(`Took over from pid ${received.state.pid} at counter ${received.counter} ` +
        `with ${received.connections.length} client connections (handoff #${this.generation}` +
        `${received.partial ? ', partial: the predecessor died during it' : ''})`);
      log.info(`Handoff timing (ms since this process started): ${this.parts.startTimeline.format()}`);
      if (received.state.periodNs !== config.periodNs) {
        log.notice(`The tick period changes at this handoff: ${Number(received.state.periodNs) / 1e6} ms ` +
          `(pid ${received.state.pid}) -> ${config.timerDelayMs} ms`);
      }
    }
    this.parts.saver.start();
    if (config.reloadOf !== undefined) {
      // A reload's successor: PID 1 takes its notifications once the
      // predecessor has made it the main process ("main <pid>").
      const main = received.control === undefined ? undefined
        : await awaitMainLine(received.control, MAIN_PID_TIMEOUT_MS + 1000);
      if (main !== `main ${process.pid}`) log.warn(`the predecessor did not confirm this process as the unit's main process (${main ?? 'no word'})`);
    }
    await this.ready(`serving; took over from ${from === undefined ? 'a predecessor' : `pid ${from}`}`);
    this.store(LISTENER, STATE);
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
    await this.ready('serving; started fresh');
    if (!ticker.loaded) {
      this.usePage(this.newPage(counter, 0n));
      // Clients come as soon as READY=1 is out (systemd starts the units that
      // wait for it): answer them first. Loading piscina and starting its
      // thread blocks this thread for ~15 ms, which a client arriving then would wait.
      await new Promise((resolve) => setTimeout(resolve, TICKER_START_DELAY_MS));
    }
    await ticker.load();
    // Clients may have set the counter while the ticker thread started.
    ticker.start(state.load(), process.hrtime.bigint() + config.periodNs);
    this.parts.saver.start();
    this.store(LISTENER, STATE);
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

  /**
   * READY=1 (and STATUS=): units ordered after this one start now. The lines
   * logged so far go out first, so that the journal tells the start in order.
   */
  private async ready(status: string): Promise<void> {
    await this.parts.writer.flush(100);
    this.parts.reporter?.ready(status);
  }

  /** A new state page (a memfd) with a log queue of --log-queue seconds of ticks. */
  private newPage(counter: bigint, nextDeadlineNs: bigint): Page {
    const { config } = this.parts;
    const lines = Math.ceil(config.logQueueSeconds * 1e9 / Number(config.periodNs));
    // A tick line: "<6>" and up to 20 digits; pino's JSON: about 110 bytes.
    const perLine = config.logFormat === 'json' ? 128 : 32;
    return createPage(addon, { counter, nextDeadlineNs, periodNs: config.periodNs, pid: process.pid }, lines * perLine);
  }

  /**
   * The page this process mirrors its counter into and queues its log lines
   * in: the ticker thread maps it at its start, so this comes before load().
   */
  private usePage(page: Page): void {
    if (this.page !== undefined) return;
    const { state, ticker, writer } = this.parts;
    this.page = page;
    state.attachMirror(page.slots);
    ticker.stateFd = page.fd;
    writer.attach(page.ring, state);
  }

  /** Puts what is named into systemd's fd store (replacing what a predecessor kept there). */
  private store(...names: Array<typeof LISTENER | typeof STATE>): void {
    const notifier = this.parts.notifier;
    if (!this.parts.config.fdStore || notifier === undefined) return;
    for (const name of names) {
      const fd = name === LISTENER ? this.parts.server.listeningFd : this.page?.fd;
      if (fd === undefined || fd < 0) continue;
      notifier.unstore(name);
      notifier.store(name, fd);
    }
  }

  // --- serving ----------------------------------------------------------------

  /** Serves until a stop, a committed handoff or a reload ends the process. */
  private async serve(): Promise<number> {
    this.phase = 'serving';
    // Start-up is over (the ticker thread runs): node's bootstrap code and the
    // start-up snapshot it deserialised, twice (main thread and ticker), are
    // paged in and will not run again. Dropping their mappings takes RSS down
    // by ~20 MiB; what is still used is mapped back from the page cache at its
    // next use (docs/BENCHMARKS.md, "RSS after dropping start-up's pages").
    setTimeout(trimStartUpPages, TRIM_DELAY_MS).unref();
    for (;;) {
      if (this.stopSignal !== undefined) return this.stop(this.stopSignal);
      const reload = this.pendingReload;
      if (reload !== undefined) {
        this.pendingReload = undefined;
        if (await this.reload(reload)) return this.endHandedOff();
        continue;
      }
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

  /** A handoff or reload request, answered at once where the phase decides it (see the table). */
  private onRequest(connection: Connection, what: { form: 'seed' | 'extended' } | 'reload'): void {
    const { server, authorization } = this.parts;
    const check = authorization?.check(connection.fd);
    const kind = what === 'reload' ? 'reload' : 'handoff';
    if (check !== undefined && !check.allowed) {
      server.logThrottled(`${kind} refused`, 'warn', `${kind} refused: pid ${check.peer.pid} (uid ${check.peer.uid}) is not authorized`);
      connection.release(REPLY_NOT_AUTHORIZED);
      return;
    }
    const pid = check?.peer.pid ?? 0;
    if (this.phase === 'stopping' || this.phase === 'handed-off' || this.stopSignal !== undefined) {
      connection.release(REPLY_STOPPING);
      return;
    }
    // During a reload, the successor's own request is the one awaited.
    const successor = this.reloadSuccessor;
    if (this.phase === 'reloading' && what !== 'reload' && successor !== undefined && pid === successor.pid) {
      this.reloadSuccessor = undefined;
      successor.arrived({ connection, form: what.form, pid });
      return;
    }
    const busy = this.phase === 'donating' || this.phase === 'reloading' ||
      this.pendingHandoff !== undefined || this.pendingReload !== undefined;
    if (busy) {
      connection.release(REPLY_HANDOFF_IN_PROGRESS);
      return;
    }
    if (what === 'reload') this.pendingReload = connection;
    else this.pendingHandoff = { connection, form: what.form, pid };
    this.wake?.();
  }

  /** serving -> donating -> handed-off (true) or back to serving (false). */
  private async donate(request: HandoffRequest, afterCommit?: () => string): Promise<boolean> {
    const { saver, donor, log, reporter } = this.parts;
    this.phase = 'donating';
    reporter?.handoffState(`handing off to pid ${request.pid}`);
    // Every save on disk before the freeze: the successor's first save must come last.
    saver.pause();
    await saver.idle();
    const donation = await donor.donate(request.connection, request.form, afterCommit);
    if (donation.outcome === 'committed') {
      this.phase = 'handed-off';
      this.donorTimeline = donation.timeline;
      log.info(`Handed over counter ${donation.captured} and ${donation.connections} client connections`);
      return true;
    }
    if (donation.outcome === 'refused') log.warn(`handoff refused: ${donation.why}`);
    saver.resume();
    this.phase = 'serving';
    reporter?.handoffState(`serving; the last handoff was ${donation.outcome === 'refused' ? 'refused' : 'rolled back'} (${donation.why})`);
    return false;
  }

  /**
   * serving -> reloading: starts a successor of the installed program and
   * hands over to it; the requester hears the outcome. True once handed off.
   */
  private async reload(requester: Connection): Promise<boolean> {
    const { log, reporter, notifier } = this.parts;
    this.phase = 'reloading';
    reporter?.reloading('reloading: starting a successor');
    let pid: number;
    try {
      pid = await startSuccessor();
    } catch (error) {
      return this.reloadFailed(requester, `cannot start a successor: ${error instanceof Error ? error.message : String(error)}`);
    }
    const asked = new Promise<HandoffRequest>((arrived) => { this.reloadSuccessor = { pid, arrived }; });
    log.notice(`Reloading: started pid ${pid} to take over`);
    const exited = exitOf(pid).then(() => `pid ${pid} exited before taking over`);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve(`pid ${pid} did not ask within ${RELOAD_START_TIMEOUT_MS / 1000} s`), RELOAD_START_TIMEOUT_MS);
    });
    const first = await Promise.race([asked, exited, timedOut]);
    clearTimeout(timer);
    this.reloadSuccessor = undefined;
    let why = typeof first === 'string' ? first : undefined;
    if (typeof first !== 'string') {
      const committed = await this.donate(first, () => {
        // Before this process exits, PID 1 must know its new main process.
        if (notifier !== undefined && !notifier.mainPid(pid, MAIN_PID_TIMEOUT_MS)) {
          log.warn(`PID 1 did not confirm MAINPID=${pid} within ${MAIN_PID_TIMEOUT_MS} ms`);
        }
        return `main ${pid}\n`;
      });
      if (committed) {
        requester.release(`reloaded: pid ${pid} serves\n`);
        return true;
      }
      why = 'the handoff did not complete (see the log)';
    }
    // The successor failed: it ends, this process serves on, the reload fails.
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // Gone already.
    }
    return this.reloadFailed(requester, why ?? 'unknown');
  }

  private reloadFailed(requester: Connection, why: string): false {
    this.phase = 'serving';
    this.parts.log.warn(`reload failed, still serving: ${why}`);
    requester.release(`error: reload failed: ${why}; pid ${process.pid} serves on\n`);
    this.parts.reporter?.ready(`serving; the last reload failed (${why})`);
    return false;
  }

  // --- ending -----------------------------------------------------------------

  /** serving -> stopping: the last value saved exactly, the clients answered, exit 0. */
  private async stop(signal: NodeJS.Signals): Promise<number> {
    const { server, state, saver, reporter } = this.parts;
    this.phase = 'stopping';
    const last = state.freeze();
    server.setCapturedValue(last, REPLY_STOPPING);
    const why = `Stopped by ${signal}; the counter was ${last}`;
    reporter?.stopping(why);
    await injectFault('stopping', this.parts.log, this.flushLog);
    if (last !== FROZEN) await saver.final(last);
    // Only once the last value is on disk: a successor that finds the socket
    // refusing starts fresh from the file at once, while one that reaches
    // this process meanwhile is told "stopping" and waits for it to end.
    if (server.listeningFd >= 0) server.stopAccepting();
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
    const timeline = this.donorTimeline;
    // Both at once: the counter is frozen already (no tick can come from here
    // any more), so the thread's teardown need not wait for the last clients.
    await Promise.all([
      this.parts.server.drain(DRAIN_GRACE_MS, DRAIN_TIMEOUT_MS).then(() => timeline?.mark('drained')),
      this.parts.ticker.stop().then(() => timeline?.mark('ticker stopped')),
    ]);
    timeline?.mark('ended');
    this.parts.log.info(why);
    if (timeline !== undefined) this.parts.log.info(`Handoff timing (ms since the request): ${timeline.format()}`);
    // Every line queued goes out before the process does (bounded: a reader that never reads loses them).
    await this.parts.writer.flush(LOG_FLUSH_TIMEOUT_MS);
  }
}

/**
 * Best effort: reading /proc/self/smaps needs a descriptor, and the table
 * may be full (EMFILE) just then; the next try comes a while later.
 */
function trimStartUpPages(triesLeft = 3): void {
  try {
    addon.trimExecutablePages();
  } catch {
    if (triesLeft > 1) setTimeout(() => trimStartUpPages(triesLeft - 1), 10 * TRIM_DELAY_MS).unref();
  }
}

/** Whether `pid` has exited (a zombie counts) within `timeoutMs`; polled, so that signals are still handled meanwhile. */
async function processEnded(pid: number, timeoutMs: number): Promise<boolean> {
  let pidfd: number;
  try {
    pidfd = addon.pidfdOpen(pid);
  } catch {
    return true; // ESRCH: gone and reaped already (or no pidfd here: go on, as the probe decides).
  }
  try {
    for (const until = Date.now() + timeoutMs; Date.now() < until; await new Promise((resolve) => setTimeout(resolve, 10))) {
      if (addon.waitReadable(pidfd, 0)) return true;
    }
    return addon.waitReadable(pidfd, 0);
  } finally {
    addon.close(pidfd);
  }
}

function nextLoopTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
