// The seed's handoff between two real processes, under client load.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from './harness';
import { addon } from '../src/supervisor/native';
import {
  Client, NotDelivered, type Service, findGap, request, sleep, startService, startServing, tempDir,
} from './helpers';

/** Polls the socket path every 0.5 ms; counts the moments it was missing. */
function watchPath(sock: string): { stop(): number } {
  let missing = 0;
  let running = true;
  const loop = async () => {
    while (running) {
      if (!fs.existsSync(sock)) missing++;
      await new Promise((resolve) => setTimeout(resolve, 0.5));
    }
  };
  void loop();
  return { stop: () => { running = false; return missing; } };
}

interface Load {
  stop(): Promise<{ answered: number; failed: string[]; retried: number; acknowledged: Array<[bigint, bigint]> }>;
}

/**
 * Clients that keep the socket busy: `fresh` ones open a connection per
 * get_counter, `persistent` ones keep theirs (reconnecting when the server
 * ends it) and, with `writer`, set strictly increasing values.
 */
function applyLoad(sock: string, options: { fresh: number; persistent: number; writer?: boolean }): Load {
  let running = true;
  let answered = 0;
  let retried = 0;
  const failed: string[] = [];
  /** [value set, previous value answered], in order. */
  const acknowledged: Array<[bigint, bigint]> = [];
  let nextValue = 1_000_000_000n;

  const fresh = async () => {
    while (running) {
      try {
        const reply = await request(sock, 'get_counter\n');
        if (/^-?\d+\n$/.test(reply)) answered++;
        else failed.push(`fresh: ${JSON.stringify(reply)}`);
      } catch (error) {
        failed.push(`fresh: ${(error as Error).message}`);
      }
    }
  };
  const persistent = async (writer: boolean) => {
    let client: Client | undefined;
    while (running) {
      try {
        client ??= await Client.connect(sock);
        if (writer) {
          const value = nextValue;
          nextValue += 1_000_000_000n;
          const reply = await client.ask(`set_counter ${value}`);
          if (reply.startsWith('previous value ')) acknowledged.push([value, BigInt(reply.slice(15))]);
          else if (reply !== 'error: handing off, retry') failed.push(`writer: ${reply}`);
          await sleep(15);
        } else {
          const reply = await client.ask('get_counter');
          if (/^-?\d+$/.test(reply)) answered++;
          else failed.push(`persistent: ${reply}`);
        }
      } catch (error) {
        // The old server ended the connection between requests, or refused
        // bytes sent after it stopped reading: neither loses a request.
        if (error instanceof NotDelivered) retried++;
        else if (client === undefined || !client.closed) failed.push(`persistent: ${(error as Error).message}`);
        else if ((error as Error).message !== 'connection closed') failed.push(`persistent: ${(error as Error).message}`);
        client?.close();
        client = undefined;
      }
    }
    client?.close();
  };
  const tasks = [
    ...Array.from({ length: options.fresh }, fresh),
    ...Array.from({ length: options.persistent }, () => persistent(false)),
    ...(options.writer ? [persistent(true)] : []),
  ];
  return {
    async stop() {
      running = false;
      await Promise.all(tasks);
      return { answered, failed, retried, acknowledged };
    },
  };
}

async function handOff(sock: string, old: Service, extra: string[]): Promise<Service> {
  const successor = startService(['-s', sock, '--takeover_existing_socket', ...extra]);
  await successor.waitForLine(/^Successfully received file descriptor for /);
  assert.deepEqual(await old.exited, { code: 0, signal: null }, `old process: ${old.lines.slice(-5).join('\n')}`);
  return successor;
}

test('a handoff under load: nothing refused, nothing unanswered, ticks continuous', async (t) => {
  const sock = path.join(tempDir(t), 's.sock');
  const old = await startServing(sock, ['-d', '10', '--survive_systemd_kill_signal']);
  t.after(() => old.stop());
  const cmdline = fs.readFileSync(`/proc/${old.pid}/cmdline`, 'latin1');
  assert.equal(cmdline[0], '@', cmdline);

  const watch = watchPath(sock);
  const load = applyLoad(sock, { fresh: 3, persistent: 3 });
  await sleep(300);
  const successor = await handOff(sock, old, ['-d', '10']);
  t.after(() => successor.stop());
  await sleep(300);
  const result = await load.stop();
  const missing = watch.stop();

  assert.deepEqual(result.failed, []);
  // Between two early-service processes, client connections are handed over:
  // not one request even needed a retry.
  assert.equal(result.retried, 0);
  assert.ok(result.answered > 50, `only ${result.answered} answers`);
  assert.equal(missing, 0, 'the socket path was missing');
  assert.ok(fs.statSync(sock).isSocket());

  const oldTicks = old.ticks();
  const newTicks = successor.ticks();
  assert.ok(oldTicks.length > 5 && newTicks.length > 5);
  assert.equal(findGap(oldTicks), undefined);
  assert.equal(findGap(newTicks), undefined);
  assert.equal(newTicks[0], oldTicks[oldTicks.length - 1] + 1n, 'the first new tick does not follow the last old one');
  assert.ok(old.lines.includes('Passing file descriptor for ' + sock + ' to other process'));
  assert.ok(old.lines.includes('Returning counter to client and terminating the process'));
  assert.ok(successor.lines.includes('Reading starting position and taking ownership of socket ' + sock));
});

test('chained handoffs with a writer: no acknowledged write and no tick lost', async (t) => {
  const sock = path.join(tempDir(t), 's.sock');
  const services: Service[] = [await startServing(sock, ['-d', '2'])];
  t.after(async () => { for (const s of services) await s.stop(); });
  const watch = watchPath(sock);
  const load = applyLoad(sock, { fresh: 2, persistent: 2, writer: true });
  for (let i = 0; i < 8; i++) {
    await sleep(150);
    services.push(await handOff(sock, services[services.length - 1], ['-d', '2']));
  }
  await sleep(150);
  const result = await load.stop();
  assert.equal(watch.stop(), 0, 'the socket path was missing');
  assert.deepEqual(result.failed, []);
  assert.equal(result.retried, 0);

  // Values written are 10^9 apart and far above what ticks add between two
  // writes, so the previous value each write reports must descend from the
  // write acknowledged before it (plus some ticks), whichever process held it.
  const writes = result.acknowledged;
  assert.ok(writes.length > 20, `only ${writes.length} writes`);
  const lost = writes.slice(1).filter(([, previous], i) => previous < writes[i][0] || previous >= writes[i][0] + 1_000_000_000n);
  assert.deepEqual(lost, [], 'a write acknowledged before these was lost');
  // The ticks of all the processes, in order, form one sequence in which each
  // value is the one before plus one, or a value a client set.
  const all = services.flatMap((s) => s.ticks());
  const written = new Set(writes.map(([value]) => value));
  const breaks = all.flatMap((v, i) => (i > 0 && v !== all[i - 1] + 1n && !written.has(v) ? [`${all[i - 1]} -> ${v}`] : []));
  assert.deepEqual(breaks, [], 'ticks lost or repeated');
  for (let i = 1; i < services.length; i++) assert.ok(services[i].ticks().length > 10, `process ${i} hardly ticked`);
});

test('without a predecessor the successor starts fresh, or exits 1 with --takeover-required', async (t) => {
  const dir = tempDir(t);
  const sock = path.join(dir, 'none.sock');
  const required = startService(['-s', sock, '--takeover_existing_socket', '--takeover-required']);
  assert.equal((await required.exited).code, 1);
  assert.ok(required.lines.some((l) => /nobody answers on .*none\.sock/.test(l)), required.lines.join('\n'));
  assert.equal(fs.existsSync(sock), false);

  const fresh = startService(['-s', sock, '--takeover_existing_socket', '-d', '60000']);
  t.after(() => fresh.stop());
  await fresh.waitForLine(/^Listening on UNIX socket /);
  assert.ok(fresh.lines.some((l) => /nobody answers on .*none\.sock: .*; starting fresh$/.test(l)), fresh.lines.join('\n'));
  assert.equal(await request(sock, 'get_counter\n'), '0\n');
});

test('a second handoff request while one is under way is told so', async (t) => {
  const sock = path.join(tempDir(t), 's.sock');
  const old = await startServing(sock, ['-d', '60000', '--handoff-timeout', '3000']);
  t.after(() => old.stop());
  const b = await Client.connect(sock);
  assert.equal(await b.ask('get_counter'), '0');
  // B holds more of an unfinished line than a handoff carries over: it stays
  // with the old process, which keeps answering it during the handoff.
  b.send('x'.repeat(2000));
  await sleep(100);
  // A successor that asks and then never commits: the handoff stays under
  // way (frozen) until the deadline.
  let a = addon.connectUnix(sock, 1000);
  t.after(() => { if (a >= 0) addon.close(a); });
  addon.writeAll(a, Buffer.from('pass_state_v1\n'), 1000);
  await old.waitForLine(/^Passing file descriptor for /);
  assert.equal(await b.ask(''), 'Invalid command');
  assert.equal(await b.ask('pass_state_and_terminate'), 'error: handoff in progress');
  assert.equal(await b.ask('pass_state_v1'), 'error: handoff in progress');
  assert.equal(await b.ask('get_counter'), '0', 'frozen: the captured value is served');
  assert.equal(await b.ask('set_counter 5'), 'error: handing off, retry');
  // It gives up: the old process takes everything back and serves on, B's connection too.
  addon.close(a);
  a = -1;
  await old.waitForLine(/^handoff rolled back, still serving: /);
  assert.equal(await b.ask('set_counter 5'), 'previous value 0');
  assert.equal(old.child.exitCode, null);
  b.close();
});

