// Typed binding to the native addon (src/ipc/native/early_service.c).
// Loaded once, at start-up: after switch-root its file may no longer exist.
import path from 'node:path';

export interface ReceivedFd {
  /** The one data byte that carried the descriptors (GIO sends a NUL). */
  byte: number;
  fds: number[];
  /** The kernel dropped descriptors that did not fit (MSG_CTRUNC). */
  truncated: boolean;
}

export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

export interface Addon {
  listenUnix(socketPath: string, backlog: number): number;
  connectUnix(socketPath: string, timeoutMs: number): number;
  writeAll(fd: number, data: Buffer, timeoutMs: number): void;
  readLine(fd: number, maxBytes: number, timeoutMs: number): Buffer;
  sendFd(socketFd: number, fdToSend: number, byte: number, timeoutMs: number): void;
  /** null when the peer closed the connection without sending anything. */
  receiveFd(socketFd: number, timeoutMs: number): ReceivedFd | null;
  peerCredentials(fd: number): PeerCredentials;
  shutdownRead(fd: number): void;
  dup(fd: number): number;
  close(fd: number): void;
  isListeningUnixStream(fd: number): boolean;
  setTimerSlack(nanoseconds: number): void;
}

/** Errors thrown by the addon carry errno's name, like Node's own. */
export interface SystemError extends Error {
  code: string;
  syscall: string;
}

export function isSystemError(error: unknown, code?: string): error is SystemError {
  return error instanceof Error && typeof (error as SystemError).code === 'string' &&
    (code === undefined || (error as SystemError).code === code);
}

// The build writes the addon to <package root>/build/Release; this file is
// compiled to <package root>/dist/src/ipc.
const addonPath = path.join(__dirname, '..', '..', '..', 'build', 'Release', 'early_service.node');

// eslint-disable-next-line @typescript-eslint/no-require-imports
export const addon: Addon = require(addonPath) as Addon;
