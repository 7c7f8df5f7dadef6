// Which build is running: the single-file bundle that gets installed
// (scripts/bundle.ts defines EARLY_SERVICE_BUNDLED), or tsc's output in dist/.
declare const EARLY_SERVICE_BUNDLED: boolean | undefined;

export const BUNDLED: boolean = typeof EARLY_SERVICE_BUNDLED !== 'undefined';

/**
 * The name under which the bundle's worker program holds the ticker task.
 * piscina asks for a task by file name; in the bundle no file exists, so this
 * name is answered from memory (src/workers/in-memory-tasks.ts).
 */
export const BUNDLED_TICKER_TASK = 'early-service:ticker';
