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

  /** RELOADING=1 with MONOTONIC_USEC= (systemd >= 253 wants it; 252 ignores it): a reload began. */
  reloading(status: string): void {
    const usec = process.hrtime.bigint() / 1000n;
    this.send(`RELOADING=1\nMONOTONIC_USEC=${usec}\nSTATUS=${status}`);
  }

  /** Hands the unit's main process to `pid`; true once PID 1 processed it (BARRIER=1). */
  mainPid(pid: number, timeoutMs: number): boolean {
    this.send(`MAINPID=${pid}`);
    return this.barrier(timeoutMs);
  }

  /** Whether PID 1 processed every notification sent so far, within the timeout. */
  barrier(timeoutMs: number): boolean {
    try {
      return addon.notifyBarrier(this.fd, timeoutMs);
    } catch (error) {
      this.log.warn(`sd_notify BARRIER=1 failed (${describe(error)})`);
      return false;
    }
  }

  /** Gives PID 1 `fd` to keep under `name` (FDSTORE=1): it comes back on a restart of the unit. */
  store(name: string, fd: number): void {
    try {
      addon.sendDatagramWithFds(this.fd, Buffer.from(`FDSTORE=1\nFDNAME=${name}\nFDPOLL=0`), [fd]);
    } catch (error) {
      this.log.warn(`cannot store ${name} in systemd's fd store (${describe(error)})`);
    }
  }

  /** Asks PID 1 to close and forget the descriptors it keeps under `name`. */
  unstore(name: string): void {
    this.send(`FDSTOREREMOVE=1\nFDNAME=${name}`);
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
