// SPDX-License-Identifier: Apache-2.0
/* Small statistics and timing helpers shared by the scenarios. */

/** Summary of repeated measurements of one quantity. */
export interface Summary {
  median: number;
  min: number;
  max: number;
  runs: number;
}

/** Median; the mean of the two middle values for an even count. */
export function median(xs: readonly number[]): number {
  const n = xs.length;
  if (n === 0) return Number.NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(n / 2);
  return n % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Nearest-rank percentile (p in 0..100) of unsorted samples; NaN when empty. */
export function percentile(xs: ArrayLike<number>, p: number): number {
  const n = xs.length;
  if (n === 0) return Number.NaN;
  const sorted = Float64Array.from(xs as ArrayLike<number>).sort();
  const rank = Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1));
  return sorted[rank] as number;
}

export function summarize(xs: readonly number[]): Summary {
  return {
    median: median(xs),
    min: Math.min(...xs),
    max: Math.max(...xs),
    runs: xs.length,
  };
}

/** Monotonic clock in nanoseconds. */
export function nowNs(): bigint {
  return process.hrtime.bigint();
}

/** Seconds elapsed since `start` (from nowNs()). */
export function secondsSince(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/** Yields to the event loop (timers, I/O, immediates run). */
export function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** The cost of one `process.hrtime.bigint()` pair, in ns (median of 200k). */
export function timerOverheadNs(): number {
  const n = 200_000;
  const samples = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    samples[i] = Number(process.hrtime.bigint() - t0);
  }
  return percentile(samples, 50);
}

/** Runs `fn` `rounds` times with its index and returns the results (sequentially). */
export async function repeat<T>(rounds: number, fn: (round: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let r = 0; r < rounds; r++) out.push(await fn(r));
  return out;
}

/** Rotates `items` by `round` so that no variant always runs first. */
export function rotate<T>(items: readonly T[], round: number): T[] {
  const k = round % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}
