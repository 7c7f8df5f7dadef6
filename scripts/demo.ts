// `npm run demo`: the seed's story on this machine, without root or a reboot.
// An "initrd" instance starts on a socket in a temporary directory; a client
// talks to it; a "root filesystem" instance takes the socket and the counter
// over while clients keep connecting; the log is printed as journalctl would
// show it, annotated like the seed's. Exits non-zero if an invariant broke.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

// The build that gets installed: the single-file bundle.
const MAIN = path.join(__dirname, '..', 'bundle', 'early-service.js');
const DELAY_MS = 100;

interface Instance {
  unit: string;
  child: ChildProcess;
  ticks: bigint[];
  exited: Promise<number | null>;
}

const say = (text: string): void => { process.stdout.write(`    # ${text}\n`); };

function start(unit: string, args: string[]): Instance {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  const child = spawn(process.execPath, [MAIN, '--log-format', 'journal', '-d', String(DELAY_MS), ...args],
    { stdio: ['ignore', 'pipe', 'inherit'], env });
  const instance: Instance = {
    unit, child, ticks: [],
    exited: new Promise((resolve) => child.on('exit', (code) => resolve(code))),
  };
  let rest = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    const lines = (rest + chunk.toString()).split('\n');
    rest = lines.pop() ?? '';
    for (const raw of lines) {
      const line = raw.replace(/^<\d>/, '');
      if (/^-?\d+$/.test(line)) instance.ticks.push(BigInt(line));
      const time = new Date().toTimeString().slice(0, 8);
      process.stdout.write(`    ${time} localhost ${unit}[${child.pid}]: ${line}\n`);
    }
  });
  return instance;
}

function ask(socketPath: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(socketPath, () => socket.write(`${command}\n`));
    let reply = '';
    socket.on('data', (d) => {
      reply += d.toString();
      if (reply.endsWith('\n')) { socket.destroy(); resolve(reply.trimEnd()); }
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(reply.trimEnd()));
  });
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(predicate: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (predicate()) return;
    await sleep(25);
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'early-service-demo-'));
  const socketPath = path.join(dir, 'early-service.sock');
  const problems: string[] = [];

  say('early-service-initrd.service is started inside the initrd.');
  const initrd = start('early-service-initrd', ['-s', socketPath, '--survive_systemd_kill_signal']);
  await waitFor(() => initrd.ticks.length >= 5, 'the initrd instance');
  const title = fs.readFileSync(`/proc/${initrd.child.pid}/cmdline`, 'latin1').split('\0')[0];
  say(`Its command line now starts with '@' (${title.split(' ')[0]}), so systemd spares it at switch-root.`);
  say(`A client: set_counter 100 -> "${await ask(socketPath, 'set_counter 100')}"`);
  await waitFor(() => initrd.ticks.length >= 10, 'more ticks');

  say('early-service.service is started from the root filesystem and takes the socket over,');
  say('while a client keeps connecting to the socket every 2 ms.');
  let polling = true;
  let answered = 0;
  const failures: string[] = [];
  let missing = 0;
  const poller = (async () => {
    while (polling) {
      if (!fs.existsSync(socketPath)) missing++;
      try {
        if (/^-?\d+$/.test(await ask(socketPath, 'get_counter'))) answered++;
        else failures.push('empty reply');
      } catch (error) {
        failures.push((error as Error).message);
      }
      await sleep(2);
    }
  })();
  const rootfs = start('early-service', ['-s', socketPath, '--takeover_existing_socket']);
  const oldCode = await initrd.exited;
  say(`early-service-initrd.service: exited with status ${oldCode}.`);
  await waitFor(() => rootfs.ticks.length >= 5, 'the root filesystem instance');
  polling = false;
  await poller;
  say('Only the version started from the root filesystem is now running.');
  say(`During the handoff: ${answered} requests answered, ${failures.length} failed; ` +
    `the socket path was missing ${missing} times.`);
  say(`get_counter -> ${await ask(socketPath, 'get_counter')}`);
  rootfs.child.kill('SIGTERM');
  await rootfs.exited;

  const lastOld = initrd.ticks[initrd.ticks.length - 1];
  const firstNew = rootfs.ticks[0];
  say(`Last initrd tick ${lastOld}, first root filesystem tick ${firstNew}.`);
  if (oldCode !== 0) problems.push(`the initrd instance exited with ${oldCode}`);
  if (firstNew !== lastOld + 1n) problems.push('the ticks are not consecutive across the handoff');
  if (failures.length > 0) problems.push(`failed requests: ${failures.join(', ')}`);
  if (missing > 0) problems.push('the socket path went missing');
  fs.rmSync(dir, { recursive: true, force: true });
  if (problems.length > 0) {
    process.stderr.write(`demo: FAILED: ${problems.join('; ')}\n`);
    process.exit(1);
  }
  say('OK: no tick lost or repeated, no request failed, the socket path never missing.');
}

main().catch((error: Error) => {
  process.stderr.write(`demo: ${error.message}\n`);
  process.exit(1);
});
