// The service under a chaos campaign: its processes, which one serves, and
// what the campaign did to them and when, so that the analysis can tell a
// broken guarantee from a consequence of the fault (a crash loses the ticks
// and writes since the last save, and clients are refused until a restart).
//
// The campaign plays systemd's part: when no process serves any more (a
// crash, a stop), it starts one the way the rootfs unit does
// (--takeover_existing_socket with the state file), as Restart= would.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Instance, type InstanceOptions, type ProcessSample } from './instance';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** How a process came to serve, which says what its first tick may be. */
export type Start =
  /** The campaign's first process: from 0. */
  | 'first'
  /** Took the state over from a predecessor: the next value exactly. */
  | 'takeover'
  /** Fresh, after its predecessor saved its last value at a stop: the next value exactly. */
  | 'after-stop'
  /** Fresh, after a crash: from the state file, i.e. back by up to one save interval. */
  | 'after-crash'
  /** Fresh, after a crash and a destroyed state file: from 0. */
  | 'after-lost-file';

export interface Member {
  instance: Instance;
  /** Decided when it first serves. */
  start: Start | undefined;
  /** Not a process of the service (a fault's own, on another socket): not part of its history. */
  aside: boolean;
}

/** A signal the campaign sent to a process that might have been serving. */
interface Sent {
  member: Member;
  signal: NodeJS.Signals;
  at: number;
}

export interface Window {
  /** When the signal that ended the server was sent. */
  from: number;
  to: number;
  why: string;
  /** A crash loses what was not saved yet; a stop saves everything. */
  by: 'stop' | 'crash';
}

export class World {
  readonly members: Member[] = [];
  /** When clients may be refused and acknowledged writes lost (a crash until the restart serves). */
  readonly windows: Window[] = [];
  readonly violations: Array<{ kind: string; what: string }> = [];
  /** The process serving now. */
  server!: Member;
  /** Set by a fault that destroyed the state file: the next fresh start may begin at 0. */
  stateFileLost = false;
  restarts = 0;
  private sent: Sent[] = [];
  private lastSettled = Date.now();
  private sampleBaseline: ProcessSample | undefined;

  constructor(
    readonly socketPath: string,
    readonly stateFile: string,
    readonly args: string[],
    readonly handoffTimeoutMs: number,
  ) {}

  /** Starts the first process and waits until it serves. */
  async begin(): Promise<void> {
    const first = this.spawn(['-s', this.socketPath, ...this.args], {});
    first.start = 'first';
    await first.instance.waitForLine(/^Listening on UNIX socket /);
    this.server = first;
  }

  /** A process that takes over from whoever serves (or starts fresh if nobody does), as the rootfs unit does. */
  successor(options: InstanceOptions = {}, extra: string[] = []): Member {
    return this.spawn(['-s', this.socketPath, '--takeover_existing_socket', ...this.args, ...extra], options);
  }

  spawn(args: string[], options: InstanceOptions, aside = false): Member {
    const member: Member = { instance: new Instance(args, options), start: undefined, aside };
    this.members.push(member);
    return member;
  }

  /** The processes of the service (not those a fault ran aside). */
  get service(): Member[] {
    return this.members.filter((m) => !m.aside);
  }

  /**
   * Sends `signal` to a process and remembers it: if that ends a process
   * that served (and had not handed over), the service was down from this
   * moment until the next process served, a consequence of the fault.
   */
  signal(member: Member, signal: NodeJS.Signals): void {
    if (process.env.EARLY_SERVICE_CHAOS_TRACE === '1') process.stderr.write(`${Date.now()} ${signal} to pid ${member.instance.pid}\n`);
    this.sent.push({ member, signal, at: Date.now() });
    member.instance.kill(signal);
  }

  /**
   * After a fault: waits until every process has settled (serving, or gone),
   * restarts the service if nobody serves, and checks that exactly one
   * process serves and answers.
   */
  async settle(kind: string): Promise<void> {
    const deadline = Date.now() + 4 * this.handoffTimeoutMs + 20_000;
    // A process told to end (SIGKILL, or SIGTERM, which a handoff may defer) ends.
    for (const { member } of this.sent.filter((x) => x.signal === 'SIGKILL' || x.signal === 'SIGTERM')) {
      while (member.instance.alive && Date.now() < deadline) await sleep(10);
    }
    // Everything else started has either come to serve or ended.
    for (;;) {
      // A successor still taking over, a donor still draining its last clients.
      const undecided = this.service.filter((m) => m.instance.alive && !this.serves(m));
      if (undecided.length === 0) break;
      if (Date.now() > deadline) {
        this.violation(kind, `pid ${undecided.map((m) => m.instance.pid).join(', ')} neither serve nor exit`);
        for (const m of undecided) m.instance.kill('SIGKILL');
        break;
      }
      await sleep(20);
    }
    let serving = this.service.filter((m) => m.instance.alive && this.serves(m));
    // Which signals ended a process that served, or held a takeover's state,
    // without handing it over: the service was down since the first of them.
    const ended = this.sent.filter(({ member, signal }) => (signal === 'SIGKILL' || signal === 'SIGTERM') &&
      !member.instance.alive && this.held(member) && !this.handedOver(member));
    this.sent = [];
    let down = ended.length === 0 ? undefined : { since: Math.min(...ended.map((e) => e.at)),
      by: ended.some((e) => e.signal !== 'SIGTERM') ? 'crash' as const : 'stop' as const };
    if (serving.length === 0) {
      if (down === undefined) {
        this.violation(kind, 'nobody serves any more, and no fault ended the server');
        down = { since: this.lastSettled, by: 'crash' };
      }
      // Nobody serves: the campaign restarts the service, as systemd would.
      const restarted = this.successor();
      this.restarts++;
      await restarted.instance.waitForLine(/^(Listening on UNIX socket |Took over from pid )/, 30_000).catch(() => undefined);
      serving = this.service.filter((m) => m.instance.alive && this.serves(m));
    }
    // A donor says it handed over a moment after its successor says it took over.
    for (let wait = Date.now() + 5000; serving.length > 1 && Date.now() < wait; await sleep(20)) {
      serving = this.service.filter((m) => m.instance.alive && this.serves(m));
    }
    if (serving.length !== 1) {
      this.violation(kind, `${serving.length} processes serve (pids ${serving.map((m) => m.instance.pid).join(', ')})`);
    }
    const server = serving[serving.length - 1];
    if (server === undefined) return;
    if (server.start === undefined) server.start = this.startOf(server, down?.by);
    this.server = server;
    // It answers.
    const reply = await ask(this.socketPath, 'get_counter\n', 5000).catch((error: Error) => error.message);
    if (!/^-?[0-9]+\n$/.test(reply)) this.violation(kind, `get_counter answered '${reply.trim()}' after the fault`);
    if (down !== undefined) this.windows.push({ from: down.since, to: Date.now() + 500, why: kind, by: down.by });
    if (process.env.EARLY_SERVICE_CHAOS_TRACE === '1') {
      process.stderr.write(`${Date.now()} members: ${this.service.map((m) => `${m.instance.pid}:${m.instance.alive ? 'alive' : 'dead'}` +
        `${this.serves(m) ? ':serving' : ''}:${m.instance.lines.slice(-1)[0] ?? ''}`).join(' | ')}\n`);
      if (down !== undefined) process.stderr.write(`${Date.now()} down since ${down.since} (${down.by})\n`);
    }
    this.lastSettled = Date.now();
    // The processes that are done end (a donor drains its last clients for up to 2 s); nobody else runs a ticker.
    for (const m of this.service) {
      for (const until = Date.now() + 5000; m !== server && m.instance.alive && Date.now() < until;) await sleep(20);
      if (m === server || !m.instance.alive) continue;
      this.violation(kind, `pid ${m.instance.pid} still runs and does not serve`);
      m.instance.kill('SIGKILL');
    }
  }

  /**
   * The serving process's descriptors, threads and memory against the first
   * sample taken. The least of three samples: a save in flight holds a file
   * open for a moment.
   */
  async checkResources(kind: string): Promise<void> {
    const samples: ProcessSample[] = [];
    for (let i = 0; i < 3; i++) {
      try {
        samples.push(this.server.instance.sample());
      } catch {
        return;
      }
      await sleep(30);
    }
    // A save in flight holds the state file's directory or temporary file open
    // for a moment; dropping start-up's pages reads the process's own smaps.
    const stateDir = path.dirname(this.stateFile);
    for (const sample of samples) {
      const kept = sample.otherKinds.filter((k) => !k.startsWith(stateDir) && !k.startsWith('/proc/'));
      sample.otherFds -= sample.otherKinds.length - kept.length;
      sample.otherKinds = kept;
    }
    const sample = samples.reduce((a, b) => (b.otherFds < a.otherFds ? b : a));
    const baseline = this.sampleBaseline ??= sample;
    // A process that has not saved yet has no thread pool (4 threads); a second ticker is one more.
    if (sample.threads > baseline.threads) {
      this.violation(kind, `threads ${sample.threads}, a fresh process has ${baseline.threads}`);
    }
    if (sample.otherFds > baseline.otherFds) {
      const extra = [...sample.otherKinds];
      for (const known of baseline.otherKinds) extra.splice(extra.indexOf(known) >>> 0, extra.includes(known) ? 1 : 0);
      this.violation(kind, `${sample.otherFds} descriptors that are not sockets, a fresh process has ${baseline.otherFds} (more: ${extra.join(', ')})`);
    }
    if (sample.rssKiB > baseline.rssKiB + 40 * 1024) {
      this.violation(kind, `RSS ${(sample.rssKiB / 1024).toFixed(1)} MiB, a fresh process has ${(baseline.rssKiB / 1024).toFixed(1)} MiB`);
    }
  }

  violation(kind: string, what: string): void {
    this.violations.push({ kind, what });
  }

  /** Ends every process the campaign started. */
  async end(): Promise<void> {
    for (const m of this.members) {
      if (m.instance.alive) m.instance.kill('SIGTERM');
    }
    await Promise.race([Promise.all(this.members.filter((m) => !m.instance.unreaped).map((m) => m.instance.exited)), sleep(15_000)]);
    for (const m of this.members) {
      m.instance.kill('SIGKILL');
      if (m.instance.unreaped) m.instance.child.kill('SIGKILL');
    }
  }

  /** Whether it serves (fresh or after a takeover) and has not ended. */
  serves(m: Member): boolean {
    return this.served(m) && !m.instance.lines.some((l) => l === 'Handed off; exiting' || l.startsWith('Stopped by ') ||
      l.startsWith('Handed over counter '));
  }

  /** Whether it served, or received a predecessor's state (it may have committed before it said so). */
  private held(m: Member): boolean {
    return this.served(m) || m.instance.lines.some((l) => l.startsWith('Successfully received file descriptor'));
  }

  /** Whether it served at some point. */
  private served(m: Member): boolean {
    return m.instance.lines.some((l) => l.startsWith('Listening on UNIX socket ') || l.startsWith('Took over from pid '));
  }

  /** Whether it handed its state over (its end was no loss). */
  private handedOver(m: Member): boolean {
    return m.instance.lines.some((l) => l.startsWith('Handed over counter '));
  }

  private startOf(m: Member, downBy: 'stop' | 'crash' | undefined): Start {
    if (m.instance.lines.some((l) => l.startsWith('Took over from pid '))) return 'takeover';
    if (this.stateFileLost) {
      this.stateFileLost = false;
      return 'after-lost-file';
    }
    return downBy === 'stop' ? 'after-stop' : 'after-crash';
  }
}

/** One request on a fresh connection; rejects on error or timeout. */
export function ask(socketPath: string, text: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(socketPath);
    let data = '';
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`no answer in ${timeoutMs} ms`)); }, timeoutMs);
    socket.on('connect', () => socket.write(text));
    socket.on('data', (chunk: Buffer) => {
      data += chunk.toString('latin1');
      if (data.includes('\n')) { clearTimeout(timer); socket.destroy(); resolve(data); }
    });
    socket.on('error', (error) => { clearTimeout(timer); reject(error); });
    socket.on('end', () => { clearTimeout(timer); resolve(data); });
  });
}

/** Whether the state file parses: a valid file after every fault is a guarantee. */
export function stateFileText(file: string): string | undefined {
  try {
    const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    try {
      if (!fs.fstatSync(fd).isFile()) return undefined;
      return fs.readFileSync(fd, 'utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return undefined;
  }
}
