// Typed binding to the native addon (src/ipc/native/early_service.c).
// Loaded once per thread, at start-up: after switch-root its file may no
// longer exist (see loadAddon).
import path from 'node:path';
import { BUNDLED } from './bundled';

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
  /** A datagram socket connected to `address` ('@…' = abstract namespace). */
  connectDatagram(address: string): number;
  sendDatagram(fd: number, data: Buffer): void;
  /** An O_PATH descriptor that keeps naming the directory after switch-root. */
  openDirectory(directory: string): number;
  /** The owner's uid of `name` in the directory `dirFd` (symbolic links not followed). */
  ownerAt(dirFd: number, name: string): number;
  setNonBlocking(fd: number): void;
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

/**
 * The addon's file: next to the bundle in an install tree, in node-gyp's
 * build/Release when running tsc's output (dist/src/ipc).
 */
export const ADDON_PATH = BUNDLED
  ? path.join(__dirname, 'early_service.node')
  : path.join(__dirname, '..', '..', '..', 'build', 'Release', 'early_service.node');

/**
 * Loads the addon with dlopen under exactly this name. A worker thread that
 * starts after switch-root, when the file is gone, passes the same string:
 * the dynamic loader finds the library already loaded under that name and
 * never looks for the file (require() would, and fail).
 */
export function loadAddon(file: string = ADDON_PATH): Addon {
  const module = { exports: {} };
  process.dlopen(module, file);
  return module.exports as Addon;
}
