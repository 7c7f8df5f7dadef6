// When the counter goes to the state file (--state-file): once serving,
// right away and then every interval when it changed; never while a handoff
// holds the state; and last, the exact value at a stop. At most one save is
// in flight at a time (StateFile queues them), and a donor's saves are all
// on disk before it hands over, so a successor's first save can never be
// overtaken by an older value.
import type { Logger } from '../ipc/log-line';
import { FROZEN, type SharedState } from '../ipc/shared-state';
import type { StateFile } from './state-file';

export class StateSaver {
  private timer: NodeJS.Timeout | undefined;
  private started = false;

  constructor(
    private readonly file: StateFile | undefined,
    private readonly state: SharedState,
    private readonly intervalMs: number,
    private readonly log: Logger,
  ) {}

  /** Saves now, then every interval. */
  start(): void {
    this.started = true;
    this.saveCurrent();
    this.resume();
  }

  /** No new save starts until resume() (a handoff is about to freeze the state). */
  pause(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  resume(): void {
    if (this.file === undefined || !this.started || this.timer !== undefined) return;
    this.timer = setInterval(() => this.saveCurrent(), this.intervalMs).unref();
  }

  /** Resolves once no save is in flight. */
  idle(): Promise<void> {
    return this.file?.idle() ?? Promise.resolve();
  }

  /** The last save: `value` exactly, after every save before it. */
  async final(value: bigint): Promise<void> {
    this.pause();
    this.started = false;
    await this.file?.save(value, (message) => this.log.error(message));
  }

  private saveCurrent(): void {
    const value = this.state.load();
    if (value !== FROZEN) void this.file?.save(value, (message) => this.log.error(message));
  }
}
