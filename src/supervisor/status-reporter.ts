// What systemd is told while the service runs: the STATUS= line (`systemctl
// status` shows it) with the counter, this instance's role and where the
// handoff stands, refreshed every second, and WATCHDOG=1 pings while the
// ticker thread keeps its schedule. A stuck ticker gets no ping, so systemd's
// watchdog (WatchdogSec=) restarts the service.
import fs from 'node:fs';
import { FROZEN, type SharedState } from '../ipc/shared-state';
import type { Notifier } from './notify';

const STATUS_INTERVAL_MS = 1000;

/** Where this instance runs: systemd's own test for an initrd is /etc/initrd-release. */
export function detectRole(): 'initrd' | 'rootfs' {
  return fs.existsSync('/etc/initrd-release') ? 'initrd' : 'rootfs';
}

export class StatusReporter {
  private handoff = 'no handoff yet';
  private timers: NodeJS.Timeout[] = [];

  constructor(
    private readonly notifier: Notifier,
    private readonly state: SharedState,
    private readonly role: string,
    private readonly watchdogMs: number | undefined,
  ) {}

  /** READY=1 with the status; from the first on, status and watchdog run by themselves. */
  ready(handoff?: string): void {
    if (handoff !== undefined) this.handoff = handoff;
    this.notifier.ready(this.text());
    // At once: a process that became the main one by a handoff (a reload)
    // inherits the watchdog's clock from its predecessor's last ping, which
    // may be most of an interval old.
    this.pingIfOnSchedule();
    if (this.timers.length > 0) return;
    this.timers.push(setInterval(() => this.notifier.status(this.text()), STATUS_INTERVAL_MS).unref());
    // A third of the interval (sd_watchdog_enabled(3) advises at most half): a
    // busy machine may delay a timer by a second without a missed watchdog.
    if (this.watchdogMs !== undefined) this.timers.push(setInterval(() => this.pingIfOnSchedule(), this.watchdogMs / 3).unref());
  }

  /**
   * WATCHDOG=1, if the ticker is on schedule. It may be behind by half an
   * interval before it counts as stuck: more than a respawn of its thread
   * takes, less than systemd waits.
   */
  private pingIfOnSchedule(): void {
    if (this.watchdogMs === undefined) return;
    const toleranceNs = BigInt(Math.round(this.watchdogMs * 1e6 / 2));
    if (this.state.tickerOnSchedule(process.hrtime.bigint(), toleranceNs)) this.notifier.watchdog();
  }

  /** RELOADING=1: a reload began; READY=1 (ready(), here or from the successor) ends it. */
  reloading(text: string): void {
    this.handoff = text;
    this.notifier.reloading(this.text());
  }

  /** A new handoff state, told at once. */
  handoffState(text: string): void {
    this.handoff = text;
    this.notifier.status(this.text());
  }

  /** STOPPING=1; no status or ping after it. */
  stopping(text: string): void {
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    this.notifier.stopping(`${this.role} instance; ${text}`);
  }

  private text(): string {
    const counter = this.state.load();
    return `counter ${counter === FROZEN ? 'held for the handoff' : counter}; ${this.role} instance; ${this.handoff}`;
  }
}
