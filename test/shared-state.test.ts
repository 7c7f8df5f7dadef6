// The lock-free shared state: capture, set and ticks, on one thread.
import assert from 'node:assert/strict';
import { test } from './harness';
import { COUNTER_MAX, COUNTER_MIN, FROZEN, HOLD, RUN, STOP, SharedState } from '../src/ipc/shared-state';

test('a new state holds the ticker at 0 and takes sets until started', () => {
  const state = new SharedState();
  assert.equal(state.runState(), HOLD);
  assert.equal(state.set(5n), 0n);
  state.start(7n, 123n);
  assert.equal(state.runState(), RUN);
  assert.equal(state.load(), 7n);
  assert.equal(state.nextDeadline(), 123n);
});

/** A state started at 0, as the supervisor does once the ticker runs. */
function started(): SharedState {
  const state = new SharedState();
  state.start(0n, 0n);
  return state;
}

test('a tick logs the value, then increments it', () => {
  const state = started();
  const logged: bigint[] = [];
  assert.equal(state.tick((v) => logged.push(v)), true);
  assert.equal(state.tick((v) => logged.push(v)), true);
  assert.deepEqual(logged, [0n, 1n]);
  assert.equal(state.load(), 2n);
});

test('set returns the previous value in one step', () => {
  const state = started();
  assert.equal(state.set(41n), 0n);
  assert.equal(state.set(-3n), 41n);
  assert.equal(state.load(), -3n);
});

test('after freeze no tick happens and set changes nothing', () => {
  const state = started();
  state.set(10n);
  assert.equal(state.freeze(), 10n);
  assert.equal(state.tick(() => assert.fail('ticked while frozen')), false);
  assert.equal(state.set(99n), FROZEN);
  assert.equal(state.load(), FROZEN);
  state.unfreeze(10n);
  const logged: bigint[] = [];
  state.tick((v) => logged.push(v));
  assert.deepEqual(logged, [10n]);
});

test('the counter wraps past its maximum without ever becoming the frozen sentinel', () => {
  const state = started();
  state.set(COUNTER_MAX);
  const logged: bigint[] = [];
  state.tick((v) => logged.push(v));
  assert.deepEqual(logged, [COUNTER_MAX]);
  assert.equal(state.load(), COUNTER_MIN);
});

test('a set that lands between two ticks is what the next tick logs', () => {
  const state = started();
  const logged: bigint[] = [];
  let interfered = false;
  // The log callback runs after the CAS; simulate a set landing right after.
  state.tick((v) => {
    logged.push(v);
    if (!interfered) { interfered = true; state.set(500n); }
  });
  state.tick((v) => logged.push(v));
  assert.deepEqual(logged, [0n, 500n]);
});

test('a stop requested before the start stays a stop', () => {
  const state = new SharedState();
  state.requestStop();
  state.start(3n, 0n);
  assert.equal(state.runState(), STOP);
  assert.equal(state.load(), 0n);
});
