// In the bundle, the worker thread's whole program (piscina's worker code and
// the ticker) is a string inside the main bundle, put there by
// scripts/bundle.ts. piscina's `new Worker(file)` is routed here, so every
// thread it starts, a respawn after switch-root included, runs from memory:
// the initrd's files are deleted at switch-root, and the install tree can be
// replaced by an upgrade at any time.
import type { WorkerOptions } from 'node:worker_threads';

declare const EARLY_SERVICE_THREAD_SOURCE: string;

export function threadArguments(_file: string | URL, options: WorkerOptions): [string, WorkerOptions] {
  return [EARLY_SERVICE_THREAD_SOURCE, { ...options, eval: true }];
}
