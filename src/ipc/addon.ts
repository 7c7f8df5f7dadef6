// Typed binding to the native addon (src/ipc/native/early_service.c).
// Loaded once per thread, at start-up: after switch-root its file may no
// longer exist (see loadAddon).
import path from 'node:path';
import { BUNDLED } from './bundled';

/** One recvmsg(2): its bytes, the descriptors that came with them, and who sent them. */
export interface ReceivedMessage {
  data: Buffer;
  /** They belong to the last segment of `data` (see receiveMessage in the addon). */
  fds: number[];
  /** The kernel dropped descriptors that did not fit (MSG_CTRUNC: too many, or EMFILE). */
  truncated: boolean;
  /** The sending process, from SCM_CREDENTIALS (with setPassCredentials); -1 when unknown. */
  pid: number;
  uid: number;
  gid: number;
}

export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

export interface Addon {
  listenUnix(socketPath: string, backlog: number): number;
  /** listen(2) again: only the backlog of a listening socket changes. */
  setBacklog(fd: number, backlog: number): void;
  connectUnix(socketPath: string, timeoutMs: number): number;
  /** A datagram socket connected to `address` ('@…' = abstract namespace). */
  connectDatagram(address: string): number;
  sendDatagram(fd: number, data: Buffer): void;
  /** One datagram carrying descriptors (SCM_RIGHTS). */
  sendDatagramWithFds(fd: number, data: Buffer, fds: number[]): void;
  /** BARRIER=1 on a notify socket: whether PID 1 processed what was sent before it, within the timeout. */
  notifyBarrier(fd: number, timeoutMs: number): boolean;
  /** A close-on-exec memfd of `size` bytes, sealed against resizing. */
  memfdCreate(name: string, size: number): number;
  /** null when fd is not a regular file; else whether it is a memfd, its size, and whether resizing is sealed. */
  memfdInfo(fd: number): { memfd: boolean; size: number; sealed: boolean } | null;
  /** An ArrayBuffer over a shared mapping of the file (not a SharedArrayBuffer: use Atomics, never wait). */
  mapShared(fd: number, size: number): ArrayBuffer;
  /** An O_PATH descriptor that keeps naming the directory after switch-root. */
  openDirectory(directory: string): number;
  /** The owner's uid of `name` in the directory `dirFd` (symbolic links not followed). */
  ownerAt(dirFd: number, name: string): number;
  writeAll(fd: number, data: Buffer, timeoutMs: number): void;
  /** One NUL-like byte carrying one descriptor, as GIO's g_unix_connection_send_fd(). */
  sendFd(socketFd: number, fdToSend: number, byte: number, timeoutMs: number): void;
  /** Never blocks: the bytes sent (0 when the buffer is full); `fdToSend` (or -1) rides on the first. */
  trySendMessage(socketFd: number, data: Buffer, fdToSend: number): number;
  /** One recvmsg(2) of up to `maxBytes`; null at end of stream. */
  receiveMessage(socketFd: number, maxBytes: number, timeoutMs: number): ReceivedMessage | null;
  /** SO_PASSCRED: receiveMessage() then tells who sent each message. */
  setPassCredentials(fd: number): void;
  /** The credentials the peer had when it connected (for a client: those of the listening process). */
  peerCredentials(fd: number): PeerCredentials;
  /** A descriptor of the process itself, readable once it has exited (a zombie included). */
  pidfdOpen(pid: number): number;
  /** Whether `fd` becomes readable within the timeout. */
  waitReadable(fd: number, timeoutMs: number): boolean;
  /** The address a UNIX socket is bound to ('@name' when abstract, '' when unbound). */
  socketName(fd: number): string;
  shutdownRead(fd: number): void;
  dup(fd: number): number;
  close(fd: number): void;
  isListeningUnixStream(fd: number): boolean;
  isConnectedUnixStream(fd: number): boolean;
  setTimerSlack(nanoseconds: number): void;
  /** Unmaps the executable's clean read-only pages (start-up's code and snapshot); KiB unmapped. */
  trimExecutablePages(): number;
  ignoreSignal(signal: number): void;
  /**
   * Accepts on `listenFd` and answers get_counter in C from `counter[0]`; any
   * other line hands the connection to `escalate` (src/ipc/native/fast_path.c).
   * limits: [the most connections in all, how many JavaScript serves now].
   */
  fastPathStart(listenFd: number, counter: BigInt64Array,
    escalate: (fd: number, unread: Buffer, unwritten: Buffer) => void, limits: Int32Array): void;
  /** Stops accepting and hands every connection served in C to `escalate`. */
  fastPathStop(): void;
  fastPathConnections(): number;
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
