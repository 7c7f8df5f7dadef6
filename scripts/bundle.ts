// `npm run build`, second step: the self-contained install tree in dist/bundle.
//
//   early-service.js     the main thread's code, all modules in one file, with
//                        the worker thread's program inside it as a string
//   early_service.node   the addon (from node-gyp's build/Release)
//   early-service        launcher: runs the bundle with node
//
// After start-up the daemon never opens a file of this tree again: modules
// are in the one file read at exec, the addon is dlopen()ed once per thread
// under a name the loader already knows, and worker threads (a piscina
// respawn after switch-root too) run from the string. Two lines of piscina
// are rerouted for that (see the plugin below); the build fails if piscina
// no longer has them.
import fs from 'node:fs';
import Module from 'node:module';
import path from 'node:path';
import vm from 'node:vm';
import * as esbuild from 'esbuild';

const ROOT = path.resolve(__dirname, '..', '..');
const OUT = path.join(ROOT, 'dist', 'bundle');
const PISCINA = path.join(ROOT, 'node_modules', 'piscina', 'dist');

const common: esbuild.BuildOptions = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  write: false,
  // Smaller and faster to parse; identifiers stay, for readable stack traces.
  minifyWhitespace: true,
  minifySyntax: true,
  define: { EARLY_SERVICE_BUNDLED: 'true' },
  logLevel: 'warning',
  // pino's transports would need files; early-service never uses them.
  logOverride: { 'require-resolve-not-external': 'silent' },
};

/** Replaces `from` with `to` in one module of piscina; throws if `from` is not there exactly once. */
function reroute(file: string, from: string, to: string): esbuild.Plugin {
  return {
    name: `reroute ${path.basename(file)}`,
    setup(build) {
      build.onLoad({ filter: new RegExp(`${escape(file)}$`) }, async (args) => {
        const source = await fs.promises.readFile(args.path, 'utf8');
        if (source.split(from).length !== 2) {
          throw new Error(`${args.path}: expected "${from}" exactly once; piscina changed, update scripts/bundle.ts`);
        }
        return { contents: source.replace(from, to), loader: 'js' };
      });
    },
  };
}

/** main.ts reads the version from ../../../package.json, a path that is right from dist/src/supervisor. */
const packageJson: esbuild.Plugin = {
  name: 'package.json',
  setup(build) {
    build.onResolve({ filter: /\/package\.json$/ }, () => ({ path: path.join(ROOT, 'package.json') }));
  },
};

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

async function bundleText(options: esbuild.BuildOptions): Promise<string> {
  const result = await esbuild.build({ ...common, ...options });
  return result.outputFiles![0]!.text;
}

/**
 * The program as a string in a small loader, with V8's code cache for it made
 * now: start-up then deserializes the compiled top level instead of compiling
 * ~350 KiB of JavaScript (about 7 ms here). A Node.js other than the one that
 * built it rejects the cache, and the program is compiled as usual. Still
 * one file, read once.
 */
function withCodeCache(program: string): string {
  const wrapped = Module.wrap(program);
  const cache = new vm.Script(wrapped, { filename: 'early-service.js' }).createCachedData();
  const check = new vm.Script(wrapped, { filename: '/elsewhere/early-service.js', cachedData: cache });
  if (check.cachedDataRejected === true) throw new Error('V8 rejected the code cache it just made');
  return [
    "'use strict';",
    '// early-service, bundled by scripts/bundle.ts. The program is the string below; the code cache made',
    '// with it lets V8 skip compiling it (a different Node.js rejects the cache and compiles as usual).',
    "const { Script } = require('node:vm');",
    "const { wrap } = require('node:module');",
    `const PROGRAM = ${JSON.stringify(program)};`,
    `const CODE_CACHE = '${cache.toString('base64')}';`,
    "new Script(wrap(PROGRAM), { filename: __filename, cachedData: Buffer.from(CODE_CACHE, 'base64') })",
    '  .runInThisContext()(exports, require, module, __filename, __dirname);',
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  // The worker thread's program: piscina's worker code, which loads the task
  // module by name; that name is answered from memory.
  const inMemoryTasks = path.join(ROOT, 'src', 'workers', 'in-memory-tasks.ts');
  const threadSource = await bundleText({
    // Loaded by piscina only for a niceIncrement, which early-service does not set.
    external: ['@napi-rs/nice'],
    stdin: { contents: `require(${JSON.stringify(path.join(PISCINA, 'worker.js'))});`, resolveDir: ROOT, loader: 'js' },
    plugins: [reroute(path.join(PISCINA, 'worker.js'), 'require(s)',
      `require(${JSON.stringify(inMemoryTasks)}).requireTask(s)`)],
  });

  // The main thread: piscina starts its threads from the string above.
  const threadArguments = path.join(ROOT, 'src', 'supervisor', 'thread-source.ts');
  const mainSource = await bundleText({
    entryPoints: [path.join(ROOT, 'src', 'supervisor', 'main.ts')],
    define: { ...common.define, EARLY_SERVICE_THREAD_SOURCE: JSON.stringify(threadSource) },
    plugins: [packageJson, reroute(path.join(PISCINA, 'worker_pool', 'index.js'),
      'new node_worker_threads_1.Worker(filename, workerOpts)',
      `new node_worker_threads_1.Worker(...require(${JSON.stringify(threadArguments)}).threadArguments(filename, workerOpts))`)],
  });

  fs.rmSync(OUT, { recursive: true, force: true });
  fs.mkdirSync(OUT, { recursive: true });
  fs.writeFileSync(path.join(OUT, 'early-service.js'), withCodeCache(mainSource.replace(/^#!.*\n/, '')));
  fs.copyFileSync(path.join(ROOT, 'build', 'Release', 'early_service.node'), path.join(OUT, 'early_service.node'));
  fs.writeFileSync(path.join(OUT, 'early-service'), [
    '#!/bin/sh',
    '# Runs the bundled early-service with the node on PATH (EARLY_SERVICE_NODE overrides it).',
    '# The systemd units exec node directly instead, for an argv[0] of "@early-service".',
    'here=$(dirname "$(readlink -f "$0")")',
    '# Node and allocator settings as in the units (docs/BENCHMARKS.md, "RSS").',
    'MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-2} exec "${EARLY_SERVICE_NODE:-node}" --max-semi-space-size=1 --single-threaded-gc "$here/early-service.js" "$@"',
    '',
  ].join('\n'), { mode: 0o755 });
  const kib = (file: string): string => `${(fs.statSync(path.join(OUT, file)).size / 1024).toFixed(0)} KiB`;
  console.log(`bundle: ${path.relative(ROOT, OUT)}/early-service.js ${kib('early-service.js')} ` +
    `(worker program ${(threadSource.length / 1024).toFixed(0)} KiB inside), early_service.node ${kib('early_service.node')}`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
