// A worker thread that checks every ~0.2 ms that the socket path exists,
// counting the moments it does not. A thread of its own, so that the load
// the stress tool generates cannot make it look away.
import fs from 'node:fs';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

const INTERVAL_MS = 0.2;
// Int32 slots: [0] stop flag, [1] polls, [2] moments missing.
const STOP = 0;
const POLLS = 1;
const MISSING = 2;

if (!isMainThread && parentPort !== null) {
  const { buffer, socketPath } = workerData as { buffer: SharedArrayBuffer; socketPath: string };
  const slots = new Int32Array(buffer);
  while (Atomics.load(slots, STOP) === 0) {
    if (!fs.existsSync(socketPath)) Atomics.add(slots, MISSING, 1);
    Atomics.add(slots, POLLS, 1);
    Atomics.wait(slots, STOP, 0, INTERVAL_MS);
  }
}

export class PathPoller {
  private readonly slots = new Int32Array(new SharedArrayBuffer(12));
  private readonly worker: Worker;

  constructor(socketPath: string) {
    this.worker = new Worker(__filename, { workerData: { buffer: this.slots.buffer, socketPath } });
  }

  get polls(): number {
    return Atomics.load(this.slots, POLLS);
  }

  get missing(): number {
    return Atomics.load(this.slots, MISSING);
  }

  async stop(): Promise<void> {
    Atomics.store(this.slots, STOP, 1);
    Atomics.notify(this.slots, STOP);
    await new Promise((resolve) => this.worker.once('exit', resolve));
  }
}
