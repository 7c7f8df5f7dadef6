// A worker thread that checks every ~0.2 ms that the socket path exists,
// counting the moments it does not. A thread of its own, so that the load
// the stress tool generates cannot make it look away. Its code is passed as
// text, so it runs the same from tsc's output and from the bundle.
import { Worker } from 'node:worker_threads';

// Int32 slots: [0] stop flag, [1] polls, [2] moments missing; then the
// times (Date.now()) of the first MISS_TIMES moments missing, as Float64.
const POLLS = 1;
const MISSING = 2;
const MISS_TIMES = 65536;

function poll(): void {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const fs = require('node:fs') as typeof import('node:fs');
  const { workerData } = require('node:worker_threads') as typeof import('node:worker_threads');
  /* eslint-enable @typescript-eslint/no-require-imports */
  const { buffer, socketPath } = workerData as { buffer: SharedArrayBuffer; socketPath: string };
  const slots = new Int32Array(buffer, 0, 4);
  const times = new Float64Array(buffer, 16);
  while (Atomics.load(slots, 0) === 0) {
    if (!fs.existsSync(socketPath)) {
      const index = Atomics.add(slots, 2, 1);
      if (index < times.length) times[index] = Date.now();
    }
    Atomics.add(slots, 1, 1);
    Atomics.wait(slots, 0, 0, 0.2);
  }
}

export class PathPoller {
  private readonly buffer = new SharedArrayBuffer(16 + MISS_TIMES * 8);
  private readonly slots = new Int32Array(this.buffer, 0, 4);
  private readonly worker: Worker;

  constructor(socketPath: string) {
    this.worker = new Worker(`(${poll.toString()})()`, { eval: true, workerData: { buffer: this.buffer, socketPath } });
  }

  get polls(): number {
    return Atomics.load(this.slots, POLLS);
  }

  get missing(): number {
    return Atomics.load(this.slots, MISSING);
  }

  /** When the path was missing (the first 65536 moments: a long campaign's restarts each make a few). */
  get missingAt(): number[] {
    return [...new Float64Array(this.buffer, 16).subarray(0, Math.min(this.missing, MISS_TIMES))];
  }

  async stop(): Promise<void> {
    Atomics.store(this.slots, 0, 1);
    Atomics.notify(this.slots, 0);
    await new Promise((resolve) => this.worker.once('exit', resolve));
  }
}
