// A hostile or broken predecessor for the takeover tests: serves a socket
// path and answers a handoff request (pass_state_v1) the way the scenario
// says, through the real addon. Prints "ready" once it listens, and what the
// successor answered ("got commit", "got abort <reason>", "got end of
// connection").
//
//   node fake-donor.js SOCKET SCENARIO
//     valid               a well-formed handoff of its socket, counter 77
//     bound-elsewhere     a listening socket bound to SOCKET.other instead of its own
//     far-deadline        its next tick due in 292 years
//     regular-file        a regular file as a client connection
//     partial-connection  a client connection (the first one accepted) whose record
//                         line never ends, then it dies
//     newer-version       a later wire version's state record ("state v2 …", as a
//                         newer early-service would send)
import fs from 'node:fs';
import net from 'node:net';
import { addon } from '../src/supervisor/native';

const [socketPath, scenario] = process.argv.slice(2) as [string, string];
const PERIOD_NS = 10_000_000n;

const listenFd = addon.listenUnix(socketPath, 16);
const clients: net.Socket[] = [];

function fdOf(socket: net.Socket): number {
  return (socket as unknown as { _handle: { fd: number } })._handle.fd;
}

/** Sends a record; a successor that already gave up (EPIPE) is heard from through its "abort". */
function send(socket: net.Socket, line: string, fd = -1): void {
  const data = Buffer.from(fd >= 0 ? `\0${line}` : line, 'latin1');
  let offset = 0;
  try {
    while (offset < data.length) offset += addon.trySendMessage(fdOf(socket), data.subarray(offset), offset === 0 ? fd : -1);
  } catch {
    // The successor closed the connection.
  }
}

function stateLine(deadline = process.hrtime.bigint() + PERIOD_NS): string {
  return `state v1 counter=77 next_deadline_ns=${deadline} period_ns=${PERIOD_NS} pid=${process.pid} generation=1\n`;
}

function handOff(socket: net.Socket): void {
  switch (scenario) {
    case 'valid':
      send(socket, stateLine(), listenFd);
      send(socket, 'end 0\n');
      return;
    case 'bound-elsewhere':
      send(socket, stateLine(), addon.listenUnix(`${socketPath}.other`, 16));
      send(socket, 'end 0\n');
      return;
    case 'far-deadline':
      send(socket, stateLine(9_223_372_036_000_000_000n), listenFd);
      send(socket, 'end 0\n');
      return;
    case 'regular-file':
      send(socket, stateLine(), listenFd);
      send(socket, 'connection -\n', fs.openSync(__filename, 'r'));
      send(socket, 'end 1\n');
      return;
    case 'newer-version':
      send(socket, stateLine().replace('state v1 ', 'state v2 ').replace('\n', ' mode=x\n'), listenFd);
      send(socket, 'end 0\n');
      return;
    case 'partial-connection':
      send(socket, stateLine(), listenFd);
      send(socket, 'connection -', fdOf(clients[0]!));
      // Dies in the middle of the record: the successor keeps what came whole.
      process.exit(0);
  }
  throw new Error(`unknown scenario ${scenario}`);
}

const server = net.createServer({ allowHalfOpen: true }, (socket) => {
  let text = '';
  socket.on('data', (chunk: Buffer) => {
    text += chunk.toString('latin1');
    let end: number;
    while ((end = text.indexOf('\n')) >= 0) {
      const line = text.slice(0, end);
      text = text.slice(end + 1);
      if (line === 'pass_state_v1') handOff(socket);
      else if (line === 'get_counter') socket.write('77\n');
      else process.stdout.write(`got ${line}\n`);
    }
  });
  socket.on('end', () => process.stdout.write('got end of connection\n'));
  socket.on('error', () => undefined);
  clients.push(socket);
});
server.listen({ fd: listenFd }, () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => process.exit(0));
