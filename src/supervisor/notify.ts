// sd_notify(3) for Type=notify units: READY=1, STATUS=, STOPPING=1 and
// WATCHDOG=1, as datagrams to $NOTIFY_SOCKET. Without it, nothing is sent.
//
// The socket is connected once, at start-up, through the addon, for paths and
// abstract ('@…') addresses alike. A connected socket keeps reaching systemd
// after switch-root, when the initrd instance sees an empty root and the path
// /run/systemd/notify no longer resolves for it: that is exactly when it has
// to say STOPPING=1. (Sending to the path each time, as node-unix-socket's
// DgramSocket.sendTo does, fails there with ENOENT.)
import { isSystemError } from '../ipc/addon';
import type { Logger } from '../ipc/log-line';
import { addon } from './native';

export class Notifier {
  private failures = 0;

  private constructor(private readonly fd: number, private readonly log: Logger) {}

  /** The notifier $NOTIFY_SOCKET asks for, or undefined when there is none. */
  static fromEnvironment(log: Logger, env: NodeJS.ProcessEnv = process.env): Notifier | undefined {
    const address = env.NOTIFY_SOCKET;
    if (address === undefined || address === '') return undefined;
    if (!address.startsWith('/') && !address.startsWith('@')) {
      log.warn(`NOTIFY_SOCKET=${address} is neither a path nor an abstract address; not notifying systemd`);
      return undefined;
    }
    try {
      return new Notifier(addon.connectDatagram(address), log);
    } catch (error) {
      log.warn(`cannot reach NOTIFY_SOCKET ${address} (${describe(error)}); not notifying systemd`);
      return undefined;
    }
  }

  ready(status: string): void {
    this.send(`READY=1\nSTATUS=${status}`);
  }

  status(status: string): void {
    this.send(`STATUS=${status}`);
  }

  stopping(status: string): void {
    this.send(`STOPPING=1\nSTATUS=${status}`);
  }

  watchdog(): void {
    this.send('WATCHDOG=1');
  }

  private send(message: string): void {
    try {
      addon.sendDatagram(this.fd, Buffer.from(message));
      this.failures = 0;
    } catch (error) {
      // Logged once per run of failures: a stuck PID 1 must not flood the log.
      if (this.failures++ === 0) this.log.warn(`sd_notify failed (${describe(error)})`);
    }
  }
}

function describe(error: unknown): string {
  return isSystemError(error) ? error.code : error instanceof Error ? error.message : String(error);
}

/**
 * The watchdog interval systemd expects pings at ($WATCHDOG_USEC), in ms, or
 * undefined when it expects none (unset, malformed, or meant for another pid).
 */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv = process.env, pid = process.pid): number | undefined {
  const usec = env.WATCHDOG_USEC;
  if (usec === undefined || !/^[1-9][0-9]{0,15}$/.test(usec)) return undefined;
  if (env.WATCHDOG_PID !== undefined && env.WATCHDOG_PID !== String(pid)) return undefined;
  return Number(usec) / 1000;
}
