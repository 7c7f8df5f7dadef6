// Lines that clients can trigger (an unknown command, a refused handoff, a
// set_counter, a refused connection) are throttled per kind: at most
// PER_SECOND of a kind are logged in each second, the rest counted and
// reported once ("… N more suppressed") when the next second's first line of
// that kind comes, or after a second of quiet. A flood from one client then
// costs a few lines a second, never the tick lines (journald's rate limit
// counts every line of the unit) nor a full pipe.
import type { Level, Logger } from '../ipc/log-line';

const PER_SECOND = 20;

interface Window {
  start: number;
  logged: number;
  suppressed: number;
  level: Level;
  flush: NodeJS.Timeout | undefined;
}

export class LogThrottle {
  private readonly windows = new Map<string, Window>();

  constructor(private readonly log: Logger, private readonly perSecond = PER_SECOND) {}

  /** Logs `message` at `level` unless `kind` is over its budget for this second. */
  line(kind: string, level: Level, message: string): void {
    const now = Date.now();
    let window = this.windows.get(kind);
    if (window === undefined || now - window.start >= 1000) {
      if (window !== undefined) this.report(kind, window);
      window = { start: now, logged: 0, suppressed: 0, level, flush: undefined };
      this.windows.set(kind, window);
    }
    if (window.logged < this.perSecond) {
      window.logged++;
      this.log[level](message);
      return;
    }
    window.suppressed++;
    // Reported even if no later line of this kind comes.
    window.flush ??= setTimeout(() => {
      this.report(kind, window!);
      this.windows.delete(kind);
    }, 1000 - (now - window.start)).unref();
  }

  private report(kind: string, window: Window): void {
    clearTimeout(window.flush);
    window.flush = undefined;
    if (window.suppressed > 0) this.log.warn(`${window.suppressed} more '${kind}' messages were not logged (more than ${this.perSecond} a second)`);
    window.suppressed = 0;
  }
}
