// The installable build (dist/bundle, from `npm run build`) after its files
// are gone, as the initrd's are after switch-root: commands, a crash of the
// ticker thread and a handoff in both roles must all still work.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test, waitUntilStopped } from './harness';
import { BUNDLE, type Service, findGap, request, startService, startServing, tempDir } from './helpers';

/** A copy of the install tree, as dracut would put it into an initrd. */
function installTree(dir: string, name: string): string {
  const tree = path.join(dir, name);
  fs.cpSync(path.dirname(BUNDLE), tree, { recursive: true });
  return path.join(tree, 'early-service.js');
}

function removeTree(main: string): void {
  fs.rmSync(path.dirname(main), { recursive: true });
}

/** The process's open descriptors that lead into `dir` (from /proc). */
function descriptorsInto(pid: number, dir: string): string[] {
  return fs.readdirSync(`/proc/${pid}/fd`)
    .map((fd) => { try { return fs.readlinkSync(`/proc/${pid}/fd/${fd}`); } catch { return ''; } })
    .filter((target) => target.startsWith(dir));
}

async function crashTicker(service: Service, after: number): Promise<void> {
  service.child.kill('SIGUSR2');
  await service.waitForLine(/^ticker thread failed \(.*\); restarting it$/);
  // Ticking goes on, from memory: the thread's code is not on disk any more.
  const before = service.ticks().length;
  await service.waitForLine(new RegExp(`^${service.ticks().at(-1)! + BigInt(after)}$`));
  assert.ok(service.ticks().length > before);
}

test('the bundle runs on with its install tree deleted: commands, a ticker crash, a handoff as donor and as successor', async (t) => {
  assert.ok(fs.existsSync(BUNDLE), `${BUNDLE} is missing: run npm run build`);
  const dir = tempDir(t);
  const sock = path.join(dir, 'sock');
  const faults = { EARLY_SERVICE_FAULT: 'ticker-exit' };

  const firstMain = installTree(dir, 'tree-1');
  const first = await startServing(sock, ['-d', '20'], faults, firstMain);
  t.after(() => first.stop());
  await first.waitForLine(/^3$/);
  removeTree(firstMain);
  assert.deepEqual(descriptorsInto(first.pid, dir + '/tree-1'), []);

  assert.match(await request(sock, 'get_counter\n'), /^[0-9]+\n$/);
  assert.match(await request(sock, 'set_counter 500\n'), /^previous value [0-9]+\n$/);
  assert.equal(await request(sock, 'nonsense\n'), 'Invalid command\n');
  await first.waitForLine(/^502$/);
  await crashTicker(first, 3);

  // Successor role: it stops itself before asking; its tree goes meanwhile.
  const secondMain = installTree(dir, 'tree-2');
  const second = startService(['-s', sock, '-d', '20', '--takeover_existing_socket'],
    { EARLY_SERVICE_FAULT: 'stop-before-request' }, secondMain);
  t.after(() => second.stop());
  await second.waitForLine(/^fault injection: stopping before request$/);
  await waitUntilStopped(second.pid);
  removeTree(secondMain);
  second.child.kill('SIGCONT');
  await second.waitForLine(/^Took over from pid /);
  // Donor role: the first instance handed off from a deleted tree.
  assert.equal((await first.exited).code, 0);
  await second.waitForLine(new RegExp(`^${first.ticks().at(-1)! + 3n}$`));

  const all = [...first.ticks(), ...second.ticks()];
  const fromSet = all.slice(all.indexOf(500n));
  assert.equal(findGap(fromSet), undefined, 'ticks consecutive from set_counter on, across the ticker crash and the handoff');
  assert.match(await request(sock, 'get_counter\n'), /^[0-9]+\n$/);
});

test('a respawned ticker thread runs from memory in a successor with a deleted tree too', async (t) => {
  const dir = tempDir(t);
  const sock = path.join(dir, 'sock');
  const first = await startServing(sock, ['-d', '20'], {}, installTree(dir, 'tree-1'));
  t.after(() => first.stop());
  const secondMain = installTree(dir, 'tree-2');
  const second = startService(['-s', sock, '-d', '20', '--takeover_existing_socket'], { EARLY_SERVICE_FAULT: 'ticker-exit' }, secondMain);
  t.after(() => second.stop());
  await second.waitForLine(/^Took over from pid /);
  removeTree(secondMain);
  await second.waitForLine(new RegExp(`^${first.ticks().at(-1)! + 2n}$`));
  await crashTicker(second, 3);
  assert.equal(findGap([...first.ticks(), ...second.ticks()]), undefined);
});

test('the stress tool ships inside the bundle and runs a checked handoff chain', () => {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  const run = spawnSync(process.execPath, [BUNDLE, 'stress', '--handoffs', '2', '--clients', '2', '-d', '50'],
    { encoding: 'utf8', env, timeout: 60_000 });
  assert.equal(run.status, 0, run.stdout + run.stderr);
  assert.match(run.stdout, /handoffs\s+2 \(successors killed on purpose: 0\)/);
  assert.match(run.stdout, /stress: OK, no violation/);
});
