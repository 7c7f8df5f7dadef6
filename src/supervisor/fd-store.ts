// systemd's fd store, the receiving end: on a restart of the unit (a crash
// with Restart=, a watchdog abort, `systemctl restart`) PID 1 hands back what
// the previous process stored (LISTEN_FDS, LISTEN_FDNAMES, LISTEN_PID, from
// fd 3 on, as sd_listen_fds(3) reads them): the listening socket ("listener")
// and the state page ("state"). Each is checked like a descriptor received
// in a handoff before it is used; anything else is closed.
//
// The storing end is Notifier.store(); the lifecycle stores once serving.
import path from 'node:path';
import { addon } from './native';

export const LISTENER = 'listener';
export const STATE = 'state';
const FIRST_FD = 3;

export interface Inherited {
  listener?: number;
  state?: number;
  /** What was handed back but not used, and why (for the log). */
  refused: string[];
}

/**
 * Takes the descriptors PID 1 passed to this process, if any, and removes
 * the variables, so that no process started from here believes they are its
 * own. `socketPath`: the address the listener must be bound to.
 */
export function takeInherited(socketPath: string | undefined, env: NodeJS.ProcessEnv = process.env): Inherited {
  const count = Number(env.LISTEN_FDS ?? '0');
  const forUs = env.LISTEN_PID === String(process.pid);
  const names = (env.LISTEN_FDNAMES ?? '').split(':');
  delete env.LISTEN_FDS;
  delete env.LISTEN_PID;
  delete env.LISTEN_FDNAMES;
  const inherited: Inherited = { refused: [] };
  if (!forUs || !Number.isInteger(count) || count <= 0 || count > 64) return inherited;
  for (let i = 0; i < count; i++) {
    const fd = FIRST_FD + i;
    const name = names[i] ?? 'unknown';
    const why = refusal(fd, name, socketPath);
    if (why === undefined && name === LISTENER && inherited.listener === undefined) inherited.listener = fd;
    else if (why === undefined && name === STATE && inherited.state === undefined) inherited.state = fd;
    else {
      inherited.refused.push(`${name} (fd ${fd}): ${why ?? 'a second one'}`);
      try {
        addon.close(fd);
      } catch {
        // Not open after all.
      }
    }
  }
  return inherited;
}

/** Why `fd` stored as `name` is not usable, or undefined. The state page's content is checked by readPage(). */
function refusal(fd: number, name: string, socketPath: string | undefined): string | undefined {
  try {
    if (name === LISTENER) {
      if (socketPath === undefined) return 'this process serves no socket (-s)';
      if (!addon.isListeningUnixStream(fd)) return 'not a listening UNIX stream socket';
      const bound = addon.socketName(fd);
      if (bound !== socketPath && !(bound.startsWith('/') && bound === path.resolve(socketPath))) {
        return `bound to '${bound}', not to ${socketPath}`;
      }
      return undefined;
    }
    if (name === STATE) return addon.memfdInfo(fd)?.memfd === true ? undefined : 'not a memfd';
    return 'not a name early-service stores';
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}
