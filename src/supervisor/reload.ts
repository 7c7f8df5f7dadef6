// Live reload: the serving process hands everything over to a fresh process
// of the installed program (an upgraded package's new code included), which
// takes over exactly as at boot and becomes the unit's main process.
//
//   systemctl reload early-service
//     -> ExecReload= `early-service reload -s SOCKET` (runClient below): asks
//        the serving process, waits for the outcome, exits 0 or 1
//     -> the serving process (lifecycle.ts, phase `reloading`) says
//        RELOADING=1, starts the successor (startSuccessor below, a child of
//        PID 1) and serves its handoff request like any other
//     -> on the commit: MAINPID=<successor> and BARRIER=1, so that PID 1 has
//        moved the unit's main process before this one exits; then "main
//        <pid>" to the successor, which only now says READY=1 (ending the
//        reload), pings the watchdog and fills the fd store: until then PID 1
//        would refuse its notifications (NotifyAccess=main)
//     -> otherwise (the successor failed, refused or timed out) this process
//        serves on, says READY=1, and the reload fails.
import { spawn } from 'node:child_process';
import net from 'node:net';
import { processState } from '../ipc/proc';

/** The words of a successor's command line: ours, as a takeover of our socket, for us. */
export function successorArgs(ours: readonly string[], pid: number): string[] {
  const args: string[] = [];
  for (let i = 0; i < ours.length; i++) {
    if (ours[i] === '--reload-of') { i++; continue; }
    if (ours[i]!.startsWith('--reload-of=')) continue;
    args.push(ours[i]!);
  }
  if (!args.includes('--takeover_existing_socket') && !args.includes('--takeover-existing-socket')) args.push('--takeover_existing_socket');
  // It must take over from us: if we are gone, it does not start fresh.
  if (!args.includes('--takeover-required')) args.push('--takeover-required');
  return [...args, '--reload-of', String(pid)];
}

/**
 * Starts the successor: the same node, the same program file (read anew: an
 * upgrade's code), our arguments; our stdout and stderr (the journal's
 * stream) and environment, without WATCHDOG_PID (naming us, it would make the
 * successor never ping). Resolves with its pid.
 *
 * It is started through `sh -c '… &'`, which exits at once: the successor is
 * an orphan, a child of PID 1, before it asks for anything. systemd then
 * supervises it as its own child once it is the main process: it waits for
 * it to exit at a stop (SIGTERM, then TimeoutStopSec=) and reads its exit
 * status. A main process that is not PID 1's child is "alien" to systemd,
 * which SIGKILLs it right after the SIGTERM of a stop or restart, before it
 * can save its last value (seen on 252 and 257).
 */
export function startSuccessor(): Promise<number> {
  const env = { ...process.env };
  delete env.WATCHDOG_PID;
  const command = [process.execPath, ...process.execArgv, process.argv[1]!, ...successorArgs(process.argv.slice(2), process.pid)];
  return new Promise((resolve, reject) => {
    // Our stdout (the journal's stream) reaches it as fd 3 of the shell, whose own stdout tells its pid.
    const shell = spawn('/bin/sh', ['-c', '"$@" </dev/null >&3 3>&- & echo $!', 'sh', ...command], {
      stdio: ['ignore', 'pipe', 'inherit', 1], env,
    });
    let out = '';
    shell.stdout!.on('data', (chunk: Buffer) => { out += chunk.toString(); });
    shell.once('error', reject);
    shell.once('close', (code) => {
      const pid = Number(out.trim());
      if (code === 0 && Number.isInteger(pid) && pid > 0) resolve(pid);
      else reject(new Error(`/bin/sh could not start it (status ${code}, said '${out.trim()}')`));
    });
  });
}

/** Resolves once `pid` has exited (it is not our child: PID 1 reaps it). */
export async function exitOf(pid: number): Promise<void> {
  for (;;) {
    const state = processState(pid);
    if (state === undefined || state === 'Z' || state === 'X') return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Waits on the connection to the predecessor (kept open after the commit)
 * for its "main <pid>" line: then the unit's main process is this one. An end
 * of the connection, or the timeout, ends the wait too (an older predecessor
 * says nothing).
 */
export function awaitMainLine(control: number, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = new net.Socket({ fd: control, readable: true, writable: false });
    let text = '';
    const done = (line: string | undefined): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(line);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      const end = text.indexOf('\n');
      if (end >= 0) done(text.slice(0, end));
    });
    socket.on('end', () => done(undefined));
    socket.on('error', () => done(undefined));
  });
}

/**
 * `early-service reload -s SOCKET`, the unit's ExecReload=: asks the process
 * serving SOCKET to hand over to a fresh process and prints its answer;
 * exit status 0 once the successor serves, 1 when the reload failed (the
 * old process serves on) or nobody answered.
 */
export async function runClient(args: readonly string[]): Promise<number> {
  const socketIndex = args.findIndex((a) => a === '-s' || a === '--server_socket_path' || a === '--server-socket-path');
  const socketPath = socketIndex >= 0 ? args[socketIndex + 1] : undefined;
  const timeoutIndex = args.indexOf('--timeout');
  const timeoutMs = timeoutIndex >= 0 ? Number(args[timeoutIndex + 1]) : 120_000;
  if (socketPath === undefined || !(timeoutMs > 0)) {
    process.stderr.write('usage: early-service reload -s SOCKET [--timeout MS]\n');
    return 2;
  }
  const reply = await new Promise<string>((resolve) => {
    const socket = net.createConnection(socketPath);
    let text = '';
    const timer = setTimeout(() => { socket.destroy(); resolve(`error: no answer within ${timeoutMs} ms`); }, timeoutMs);
    socket.on('connect', () => socket.write('reload\n'));
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (text.includes('\n')) { clearTimeout(timer); socket.destroy(); resolve(text.slice(0, text.indexOf('\n'))); }
    });
    socket.on('error', (error) => { clearTimeout(timer); resolve(`error: ${error.message}`); });
    socket.on('end', () => { clearTimeout(timer); resolve(text.length > 0 ? text : 'error: the server closed the connection'); });
  });
  process.stdout.write(`${reply}\n`);
  return reply.startsWith('reloaded') ? 0 : 1;
}
