// The counter's range: a signed 64-bit integer, one value of which (FROZEN,
// -2^63) is reserved to mark the state as captured for a handoff.
export const FROZEN = -(2n ** 63n);
export const COUNTER_MIN = FROZEN + 1n;
export const COUNTER_MAX = 2n ** 63n - 1n;
