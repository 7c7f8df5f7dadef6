// The clients of a stress run: fresh connections (one request each) and
// persistent ones (many requests, one at a time), reading and writing.
// Every request is accounted for: answered, refused ("error: handing off,
// retry": the server asks for it to be sent again), or failed, by kind.
import net from 'node:net';
import type { RequestTimes } from './handoff-phases';

const REQUEST_TIMEOUT_MS = 10_000;
/** Written values are this far apart: far more than ticks add between two writes. */
export const WRITE_SPACING = 1_000_000n;

export type FailureKind = 'connect refused' | 'connection reset' | 'closed unanswered' | 'timeout' | 'bad reply';

export interface LoadResult {
  answered: number;
  retried: number;
  failures: Map<FailureKind, number>;
  failureSamples: string[];
  /** When each failure happened (Date.now()), for a caller that knows when failures were to be expected. */
  failureTimes: Array<{ kind: FailureKind; at: number; detail: string }>;
  /** Each acknowledged write: the value set, the previous value the server reported, and when (Date.now()). */
  writes: Array<{ value: bigint; previous: bigint; at: number }>;
  /** Every value a client tried to set, acknowledged or not. */
  attempted: Set<bigint>;
  /** Each answered request: when it began (its connect, for a fresh connection) and how long its answer took. */
  times: RequestTimes;
}

export class Load {
  private running = true;
  private readonly tasks: Array<Promise<void>> = [];
  readonly result: LoadResult = {
    answered: 0, retried: 0, failures: new Map(), failureSamples: [], failureTimes: [], writes: [], attempted: new Set(),
    times: { startNs: [], latencyMs: [] },
  };
  private nextValue = 1_000_000_000_000n;

  /**
   * Client i: persistent when i is even, a fresh connection per request when
   * odd; i % 4 >= 2 writes. `recordTimes`: keep each answer's timing (result.times).
   */
  constructor(private readonly socketPath: string, clients: number, private readonly recordTimes = false) {
    for (let i = 0; i < clients; i++) {
      const writer = i % 4 >= 2;
      this.tasks.push(i % 2 === 0 ? this.persistent(writer) : this.fresh(writer));
    }
  }

  get requests(): number {
    let failed = 0;
    for (const count of this.result.failures.values()) failed += count;
    return this.result.answered + this.result.retried + failed;
  }

  get failed(): number {
    return this.requests - this.result.answered - this.result.retried;
  }

  async stop(): Promise<LoadResult> {
    this.running = false;
    await Promise.all(this.tasks);
    return this.result;
  }

  private command(writer: boolean): { line: string; value?: bigint } {
    if (!writer) return { line: 'get_counter' };
    const value = this.nextValue;
    this.nextValue += WRITE_SPACING;
    this.result.attempted.add(value);
    return { line: `set_counter ${value}`, value };
  }

  private account(reply: string, value: bigint | undefined, startedNs: bigint): void {
    if (reply === 'error: handing off, retry' || reply === 'error: stopping, retry') {
      this.result.retried++;
    } else if (value === undefined ? /^-?\d+$/.test(reply) : /^previous value -?\d+$/.test(reply)) {
      this.result.answered++;
      if (this.recordTimes) {
        this.result.times.startNs.push(Number(startedNs));
        this.result.times.latencyMs.push(Number(process.hrtime.bigint() - startedNs) / 1e6);
      }
      if (value !== undefined) this.result.writes.push({ value, previous: BigInt(reply.slice(15)), at: Date.now() });
    } else {
      this.fail('bad reply', JSON.stringify(reply));
    }
  }

  private fail(kind: FailureKind, detail: string): void {
    this.result.failures.set(kind, (this.result.failures.get(kind) ?? 0) + 1);
    this.result.failureTimes.push({ kind, at: Date.now(), detail });
    if (this.result.failureSamples.length < 20) this.result.failureSamples.push(`${kind}: ${detail}`);
  }

  private async fresh(writer: boolean): Promise<void> {
    while (this.running) {
      const { line, value } = this.command(writer);
      const started = process.hrtime.bigint();
      try {
        const connection = await Connection.open(this.socketPath);
        try {
          this.account(await connection.ask(line), value, started);
        } finally {
          connection.close();
        }
      } catch (error) {
        this.fail(classify(error), (error as Error).message);
      }
    }
  }

  private async persistent(writer: boolean): Promise<void> {
    let connection: Connection | undefined;
    while (this.running) {
      const { line, value } = this.command(writer);
      const started = process.hrtime.bigint();
      try {
        // A connection the server ended between two requests lost nothing: reconnect.
        if (connection?.broken) connection = undefined;
        connection ??= await Connection.open(this.socketPath);
        this.account(await connection.ask(line), value, started);
      } catch (error) {
        this.fail(classify(error), (error as Error).message);
        connection?.close();
        connection = undefined;
      }
    }
    connection?.close();
  }
}

class RequestError extends Error {
  constructor(readonly kind: FailureKind, message: string) {
    super(message);
  }
}

function classify(error: unknown): FailureKind {
  if (error instanceof RequestError) return error.kind;
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ECONNREFUSED' || code === 'ENOENT' || code === 'EAGAIN') return 'connect refused';
  return 'connection reset';
}

/** One client connection, one request at a time. */
class Connection {
  private buffer = '';
  private pending: { resolve: (line: string) => void; reject: (error: Error) => void } | undefined;
  private failure: Error | undefined;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk) => {
      this.buffer += chunk.toString('latin1');
      const end = this.buffer.indexOf('\n');
      if (end >= 0 && this.pending !== undefined) {
        const line = this.buffer.slice(0, end);
        this.buffer = this.buffer.slice(end + 1);
        const { resolve } = this.pending;
        this.pending = undefined;
        resolve(line);
      }
    });
    const fail = (error: Error): void => {
      this.failure ??= error;
      const pending = this.pending;
      this.pending = undefined;
      pending?.reject(this.failure);
    };
    socket.on('error', (error) => fail(new RequestError('connection reset', error.message)));
    socket.on('end', () => fail(new RequestError('closed unanswered', 'the server closed the connection')));
  }

  static open(socketPath: string): Promise<Connection> {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection(socketPath);
      socket.once('connect', () => {
        socket.removeListener('error', reject);
        resolve(new Connection(socket));
      });
      socket.once('error', reject);
    });
  }

  get broken(): boolean {
    return this.failure !== undefined;
  }

  ask(line: string): Promise<string> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending = undefined;
        reject(new RequestError('timeout', `no answer to ${line} in ${REQUEST_TIMEOUT_MS} ms`));
      }, REQUEST_TIMEOUT_MS);
      this.pending = {
        resolve: (reply) => { clearTimeout(timer); resolve(reply); },
        reject: (error) => { clearTimeout(timer); reject(error); },
      };
      this.socket.write(`${line}\n`);
    });
  }

  close(): void {
    this.socket.destroy();
  }
}
