// A worker thread that checks every ~0.2 ms that the socket path exists,
// counting the moments it does not. A thread of its own, so that the load
// the stress tool generates cannot make it look away. Its code is passed as
// text, so it runs the same from tsc's output and from the bundle.
import { Worker } from 'node:worker_threads';

// Int32 slots: [0] stop flag, [1] polls, [2] moments missing.
const POLLS = 1;
const MISSING = 2;

function poll(): void {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const fs = require('node:fs') as typeof import('node:fs');
  const { workerData } = require('node:worker_threads') as typeof import('node:worker_threads');
  /* eslint-enable @typescript-eslint/no-require-imports */
  const { buffer, socketPath } = workerData as { buffer: SharedArrayBuffer; socketPath: string };
  const slots = new Int32Array(buffer);
  while (Atomics.load(slots, 0) === 0) {
    if (!fs.existsSync(socketPath)) Atomics.add(slots, 2, 1);
    Atomics.add(slots, 1, 1);
    Atomics.wait(slots, 0, 0, 0.2);
  }
}

export class PathPoller {
  private readonly slots = new Int32Array(new SharedArrayBuffer(12));
  private readonly worker: Worker;

  constructor(socketPath: string) {
    this.worker = new Worker(`(${poll.toString()})()`, { eval: true, workerData: { buffer: this.slots.buffer, socketPath } });
  }

  get polls(): number {
    return Atomics.load(this.slots, POLLS);
  }

  get missing(): number {
    return Atomics.load(this.slots, MISSING);
  }

  async stop(): Promise<void> {
    Atomics.store(this.slots, 0, 1);
    Atomics.notify(this.slots, 0);
    await new Promise((resolve) => this.worker.once('exit', resolve));
  }
}
