// Runs the ticker (src/workers/ticker.ts) on one piscina thread and restarts
// it if that thread fails. The counter and the next deadline live in shared
// memory, so a restarted ticker carries on from where the failed one was.
// One ticker per process, whatever path the start-up takes: load() starts the
// thread once (holding, not ticking), start() lets it tick.
import path from 'node:path';
import type { Piscina } from 'piscina';
import { ADDON_PATH } from '../ipc/addon';
import { BUNDLED, BUNDLED_TICKER_TASK } from '../ipc/bundled';
import type { LogFormat, Logger } from '../ipc/log-line';
import type { SharedState } from '../ipc/shared-state';
import type { TickerTask } from '../workers/ticker';

const RESTART_DELAY_MS = 100;

export class TickerSupervisor {
  private pool: Piscina | undefined;
  private loading: Promise<void> | undefined;
  private running: Promise<void> = Promise.resolve();
  private stopping = false;
  /** The state page the thread mirrors into and queues its lines in (set before load()). */
  stateFd = -1;

  constructor(
    private readonly state: SharedState,
    private readonly task: Omit<TickerTask, 'buffer' | 'addonPath' | 'stateFd'> & { logFormat: LogFormat },
    private readonly log: Logger,
  ) {}

  /** Whether load() was called (the thread exists or is on its way). */
  get loaded(): boolean {
    return this.loading !== undefined;
  }

  /** Starts the ticker thread, holding; resolves once its loop runs. Only the first call does anything. */
  load(): Promise<void> {
    this.loading ??= this.createPool();
    return this.loading;
  }

  /**
   * Lets the ticker tick from `counter`, its first tick due at `firstDeadlineNs`
   * (see SharedState.start). Only after load().
   */
  start(counter: bigint, firstDeadlineNs: bigint, catchUpUntilNs = 0n): void {
    if (this.loading === undefined) throw new Error('the ticker thread was never loaded');
    this.state.start(counter, firstDeadlineNs, catchUpUntilNs);
  }

  private async createPool(): Promise<void> {
    if (this.stateFd < 0) throw new Error('the ticker needs its state page');
    // piscina is loaded here, after the server answers its first clients.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { Piscina: Pool } = require('piscina') as typeof import('piscina');
    this.pool = new Pool({
      // The bundle holds the ticker in memory (see src/supervisor/thread-source.ts).
      filename: BUNDLED ? BUNDLED_TICKER_TASK : path.join(__dirname, '..', 'workers', 'ticker.js'),
      minThreads: 1,
      maxThreads: 1,
      // The task holds its thread for the life of the process; piscina's own
      // Atomics signalling between tasks would never be used.
      atomics: 'disabled',
    });
    this.run();
    await this.state.tickerReady();
  }

  private run(): void {
    const task: TickerTask = { buffer: this.state.buffer, addonPath: ADDON_PATH, stateFd: this.stateFd, ...this.task };
    this.running = this.pool!.run(task).then(
      () => undefined,
      (error: unknown) => {
        if (this.stopping) return;
        this.log.error(`ticker thread failed (${error instanceof Error ? error.message : String(error)}); restarting it`);
        setTimeout(() => this.run(), RESTART_DELAY_MS);
      },
    );
  }

  /** Stops the ticker after any tick in progress has been logged. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.state.requestStop();
    // A thread still loading stops as soon as its loop runs.
    await this.loading;
    await this.running;
    await this.pool?.destroy();
  }
}
