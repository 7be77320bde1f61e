// SPDX-License-Identifier: Apache-2.0
/* Time under a test's control. */

/** A clock a test moves by hand: `now()` for code that takes a clock, `set`/`advance` to move it. */
export interface ManualClock {
  now(): number;
  set(ms: number): void;
  advance(ms: number): void;
}

export function manualClock(start = 0): ManualClock {
  let t = start;
  return {
    now: () => t,
    set: (ms) => {
      t = ms;
    },
    advance: (ms) => {
      t += ms;
    },
  };
}

/**
 * A sleeper that records the delays asked for and returns at once; `onSleep` runs before it
 * returns (e.g. to bring a server back).
 */
export function recordingSleeper(onSleep?: (ms: number, call: number) => void | Promise<void>): {
  delays: number[];
  sleep: (ms: number) => Promise<void>;
} {
  const delays: number[] = [];
  return {
    delays,
    async sleep(ms: number) {
      delays.push(ms);
      await onSleep?.(ms, delays.length);
    },
  };
}
