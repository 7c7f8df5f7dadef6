// The bundle's worker program answers piscina's "load the task module named
// X" from memory. piscina's worker code does `require(filename)`; the bundler
// (scripts/bundle.ts) routes that call here, so a thread spawned after
// switch-root, when the install tree may be gone, never reads a file.
import { BUNDLED_TICKER_TASK } from '../ipc/bundled';
import runTicker from './ticker';

export function requireTask(id: string): unknown {
  // piscina takes a module's export named "default", or a module that is a function.
  if (id === BUNDLED_TICKER_TASK) return runTicker;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(id);
}
