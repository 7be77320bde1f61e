// SPDX-License-Identifier: Apache-2.0
/* Small statistics helpers for the demo summary. */

/** The q-quantile (0..1) of a list of numbers, nearest-rank; NaN for an empty list. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

export const fmtMs = (ms: number): string => (Number.isNaN(ms) ? 'n/a' : `${ms.toFixed(0)} ms`);
