// Creates the listening socket at start-up, in the addon rather than with
// server.listen(path): libuv unlinks a path it bound when that server closes,
// which would delete the socket a successor is serving on.
import fs from 'node:fs';
import { isSystemError } from '../ipc/addon';
import { addon } from './native';

export const LISTEN_BACKLOG = 1024;
const PROBE_TIMEOUT_MS = 200;

export class StartupError extends Error {}

/**
 * Binds `socketPath`, replacing a stale socket file that nobody serves, but
 * never one that a live server answers on, and never a file that is not a
 * socket. Returns the listening fd.
 */
export function openListener(socketPath: string): number {
  let stat: fs.Stats | undefined;
  try {
    stat = fs.lstatSync(socketPath);
  } catch (error) {
    if (!isSystemError(error, 'ENOENT')) throw error;
  }
  if (stat !== undefined) {
    if (!stat.isSocket()) {
      throw new StartupError(`${socketPath} exists and is not a socket; refusing to replace it`);
    }
    if (isServed(socketPath)) {
      throw new StartupError(
        `another server is answering on ${socketPath}; refusing to take it (use --takeover_existing_socket)`);
    }
    fs.unlinkSync(socketPath);
  }
  try {
    return addon.listenUnix(socketPath, LISTEN_BACKLOG);
  } catch (error) {
    if (isSystemError(error)) throw new StartupError(`cannot listen on ${socketPath}: ${error.message}`);
    throw error;
  }
}

/** Whether a server accepts connections on the socket file. */
function isServed(socketPath: string): boolean {
  try {
    addon.close(addon.connectUnix(socketPath, PROBE_TIMEOUT_MS));
    return true;
  } catch (error) {
    if (isSystemError(error, 'ECONNREFUSED')) return false;
    // A full backlog (timed out) is a live server too.
    if (isSystemError(error, 'ETIMEDOUT')) return true;
    if (isSystemError(error)) throw new StartupError(`cannot probe ${socketPath}: ${error.message}`);
    throw error;
  }
}
